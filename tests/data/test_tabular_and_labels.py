"""Numeric/categorical columns, multi-label and regression labels, path templates and column-kind inference."""

import json

import numpy as np
import pytest
import tensorflow as tf

from mmzoo import data
from mmzoo.data import inference


def _manifest():
    return data.from_records([
        {"age": 31, "income": "52000.5", "city": "Oslo", "plan": "basic", "tags": "a|b", "price": 3.5},
        {"age": "40", "income": 61000, "city": "Lima", "plan": "pro", "tags": "b", "price": "1.25"},
        {"age": 22, "income": 18000, "city": "Oslo", "plan": "pro", "tags": "", "price": 2},
    ])


def test_numeric_and_categorical_columns_decode_in_a_pipeline():
    m = _manifest()
    numeric = data.NumericColumn(["age", "income"])
    categorical = data.CategoricalColumn.fit(["city", "plan"], m)
    assert categorical.cardinality == 3 + 3  # two values + unknown id, per column
    ds = data.make_dataset(m, {"numeric": numeric, "categorical": categorical}, label=data.RegressionLabel("price"),
                           batch_size=3)
    inputs, y = next(iter(ds))
    np.testing.assert_allclose(inputs["numeric"].numpy(), [[31, 52000.5], [40, 61000], [22, 18000]])
    ids = inputs["categorical"].numpy()
    assert ids[0, 0] == ids[2, 0] != ids[1, 0]  # same city, same id
    assert (ids[:, 1] > categorical.offsets[1]).all()  # plan ids live in the second column's range
    np.testing.assert_allclose(y.numpy(), [[3.5], [1.25], [2.0]])
    unknown = categorical.decode(tf.constant(["Pune\x1fbasic"])).numpy()
    assert unknown[0, 0] == categorical.offsets[0]  # a city never seen gets the column's unknown id


def test_numeric_column_names_bad_values_and_rejects_nan_at_decode():
    m = data.from_records([{"x": "12"}, {"x": "twelve"}, {"x": float("nan")}])
    column = data.NumericColumn("x")
    assert column.row_problem(m, 0) is None
    assert "'x'" in column.row_problem(m, 1) and "twelve" in column.row_problem(m, 1)
    assert column.row_problem(m, 2) is not None
    with pytest.raises(data.BadRowError, match="twelve"):
        data.make_dataset(m, {"n": column})
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        column.decode(tf.constant(["nan"]))


def test_multilabel_targets_and_unknown_labels_are_named():
    m = _manifest()
    label = data.MultiLabelColumn("tags")
    assert label.targets(m) == [[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match="'b'"):
        data.MultiLabelColumn("tags", classes=["a"]).targets(m)
    with pytest.raises(ValueError, match="price"):
        data.RegressionLabel("price").targets(data.from_records([{"price": "n/a"}]))


def test_image_column_path_template(shared_data):
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [json.loads(line) for line in f][:4]
    m = data.from_records(rows, base_dir=shared_data / "openmoji")
    column = data.ImageColumn("images/{hexcode}.png", (24, 24, 3))
    assert column.columns == ["hexcode"]
    ds = data.make_dataset(m, {"image": column}, batch_size=4)
    assert next(iter(ds))["image"].shape == (4, 24, 24, 3)
    missing = data.from_records([{"hexcode": "NOPE"}], base_dir=shared_data / "openmoji")
    with pytest.raises(data.BadRowError, match="NOPE.png"):
        data.make_dataset(missing, {"image": column})


def test_inference_of_kinds_and_label_tasks(shared_data):
    m = data.read_manifest(str(shared_data / "openmoji" / "openmoji.jsonl"))
    kinds = {c: inference.infer_kind(m, c)[0] for c in m.columns}
    assert kinds["annotation"] == "text" and kinds["tags"] == "text"
    assert kinds["hexcode"] == "ignore" and kinds["emoji"] == "ignore"
    assert kinds["group"] == "categorical"
    assert inference.infer_label_task(m, "group") == ("multiclass", "11 classes")
    small = _manifest()
    assert inference.infer_kind(small, "age")[0] == "numeric"
    assert inference.infer_label_task(small, "tags")[0] == "multilabel"
    assert inference.infer_label_task(small, "price")[0] == "regression"
    assert inference.infer_kind(data.from_records([{"f": "a.wav"}, {"f": "b.WAV"}]), "f")[0] == "audio"
    with pytest.raises(ValueError, match="single class"):
        inference.infer_label_task(data.from_records([{"y": "a"}, {"y": "a"}]), "y")
