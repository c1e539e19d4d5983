"""The export reads task, class names and threshold from the model's head (never from an activation's name)."""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, heads

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper importable
import serving_fixtures as fx

SHAPE = (28, 28, 1)


def _image_model(head):
    keras.utils.set_random_seed(0)
    return mmzoo.compose([branches.image_cnn(SHAPE, filters=(4,), name="image")], head=head, hidden=(8,))


def _with_head(model, **fields):
    """A copy of ``model`` (same weights) whose HeadActivation config has ``fields`` changed."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"].endswith("HeadActivation"):
            layer["config"].update(fields)
    copy = keras.Model.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


@pytest.fixture(scope="module")
def real_images():
    pngs, _ = fx.mnist_pngs(8)
    column = mmzoo.data.ImageColumn("image", SHAPE)
    return pngs, np.stack([column.decode_bytes(tf.constant(b)).numpy() for b in pngs])


def _median_threshold(probabilities):
    """A threshold inside the predictions' range that decides differently from 0.5 (checked)."""
    threshold = float(np.median(probabilities))
    assert 0 < threshold < 1
    assert ((probabilities >= threshold) != (probabilities >= 0.5)).any(), "precondition: the threshold must matter"
    return threshold


def test_multilabel_export_predicts_the_label_set_by_the_heads_threshold(real_images, tmp_path):
    pngs, x = real_images
    names = ["red", "green", "blue"]
    base = _image_model(heads.multilabel(3, class_names=names))
    threshold = _median_threshold(keras.ops.convert_to_numpy(base({"image": x})))
    model = _with_head(base, threshold=threshold)
    assert heads.from_model(model).threshold == threshold

    served = mmzoo.load(mmzoo.export(model, str(tmp_path / "ml")))
    assert served.task == "multilabel" and served.class_names == names and served.threshold == threshold
    assert served.metadata["head"] == {"kind": "multilabel", "units": 3, "class_names": names, "threshold": threshold}
    out = served.predict({"image": x})
    np.testing.assert_array_equal(out["labels"], (out["probabilities"] >= threshold).astype(np.int32))
    expected_names = [",".join(n for n, on in zip(names, row) if on) for row in out["labels"]]
    assert [s.decode() for s in out["label_names"]] == expected_names
    raw = served.predict_raw({"image": pngs})
    np.testing.assert_array_equal(raw["labels"], out["labels"])


def test_binary_export_decides_by_the_heads_threshold_and_names_classes(real_images, tmp_path):
    _, x = real_images
    base = _image_model(heads.binary(class_names=["odd", "even"]))
    threshold = _median_threshold(keras.ops.convert_to_numpy(base({"image": x})))
    model = _with_head(base, threshold=threshold)

    served = mmzoo.load(mmzoo.export(model, str(tmp_path / "bin")))
    assert (served.task, served.threshold, served.class_names) == ("binary", threshold, ["odd", "even"])
    out = served.predict({"image": x})
    np.testing.assert_array_equal(out["class_id"], (out["probabilities"][:, 0] >= threshold).astype(np.int32))
    assert [s.decode() for s in out["class_name"]] == [["odd", "even"][i] for i in out["class_id"]]

    # An explicit threshold still overrides the head's.
    served = mmzoo.load(mmzoo.export(model, str(tmp_path / "bin_half"), threshold=0.5))
    assert served.threshold == 0.5 and served.metadata["head"]["threshold"] == 0.5
    out = served.predict({"image": x})
    np.testing.assert_array_equal(out["class_id"], (out["probabilities"][:, 0] >= 0.5).astype(np.int32))


def test_regression_export_returns_scores_named_by_the_head(real_images, tmp_path):
    _, x = real_images
    model = _image_model(heads.regression(2, class_names=["price", "age"]))
    served = mmzoo.load(mmzoo.export(model, str(tmp_path / "reg")))
    assert served.task == "regression" and served.class_names == ["price", "age"] and served.threshold is None
    out = served.predict({"image": x})
    assert sorted(out) == ["scores"]
    np.testing.assert_allclose(out["scores"], keras.ops.convert_to_numpy(model({"image": x})), atol=1e-5)


def test_reloaded_keras_file_exports_with_its_head(real_images, tmp_path):
    names = [f"digit {d}" for d in range(10)]
    model = _image_model(heads.multiclass(10, top_k=3, class_names=names))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    served = mmzoo.load(mmzoo.export(loaded, str(tmp_path / "mc")))
    assert served.class_names == names
    assert served.metadata["head"] == {"kind": "multiclass", "units": 10, "class_names": names, "top_k": 3}
    out = served.predict({"image": real_images[1]})
    assert [s.decode() for s in out["class_name"]] == [names[i] for i in np.argmax(out["probabilities"], -1)]
    # Explicit class names override the head's.
    other = [str(d) for d in range(10)]
    assert mmzoo.load(mmzoo.export(loaded, str(tmp_path / "mc2"), class_names=other)).class_names == other


def test_plain_keras_model_exports_scores_unless_told_its_task(real_images, tmp_path):
    _, x = real_images
    keras.utils.set_random_seed(0)
    inputs = {"image": keras.Input(SHAPE, name="image")}
    flat = keras.layers.Flatten()(inputs["image"])
    plain = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(flat), name="plain")
    with pytest.raises(ValueError, match="no mmzoo head"):
        heads.from_model(plain)

    served = mmzoo.load(mmzoo.export(plain, str(tmp_path / "scores")))
    assert served.task == "scores" and served.metadata["head"] is None
    assert sorted(served.predict({"image": x})) == ["scores"]

    served = mmzoo.load(mmzoo.export(plain, str(tmp_path / "mc"), task="multiclass", class_names=["a", "b", "c"]))
    assert served.task == "multiclass" and served.metadata["head"]["class_names"] == ["a", "b", "c"]
    out = served.predict({"image": x})
    np.testing.assert_array_equal(out["class_id"], np.argmax(out["probabilities"], -1))
    meta = json.loads(tf.saved_model.load(str(tmp_path / "mc")).signatures["metadata"]()["json"].numpy())
    assert meta["task"] == "multiclass"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"task": "binary"}, "`task` contradicts the model's head \\('multiclass'"),
        ({"task": "ranking"}, "Received: task='ranking'"),
        ({"threshold": 0.3}, "`threshold` applies to binary and multilabel models"),
        ({"class_names": ["a", "b"]}, "`class_names` must have 10 entries"),
    ],
)
def test_export_rejects_arguments_that_contradict_the_head(kwargs, match, tmp_path):
    model = _image_model(heads.multiclass(10))
    with pytest.raises(ValueError, match=match):
        mmzoo.export(model, str(tmp_path / "m"), **kwargs)
    assert not (tmp_path / "m").exists()
