import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, heads


@pytest.mark.parametrize(
    "head, activation, units, loss, metric_names",
    [
        (heads.binary(), "sigmoid", 1, keras.losses.BinaryCrossentropy, {"accuracy", "precision", "recall", "auc"}),
        (heads.multiclass(10), "softmax", 10, keras.losses.SparseCategoricalCrossentropy,
         {"accuracy", "top5_accuracy"}),
        (heads.multilabel(4), "sigmoid", 4, keras.losses.BinaryCrossentropy, {"accuracy", "precision", "recall", "auc"}),
        (heads.regression(2), "linear", 2, keras.losses.MeanSquaredError, {"mse", "mae"}),
    ],
)
def test_head_defaults(head, activation, units, loss, metric_names):
    assert head.activation == activation and head.units == units
    assert isinstance(head.loss, loss)
    assert {m.name for m in head.metrics()} == metric_names


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_outputs_are_float32_under_mixed_precision(policy, real_data):
    keras.mixed_precision.set_global_policy(policy)
    try:
        for head in (heads.binary(), heads.multiclass(3), heads.multilabel(3), heads.regression()):
            image = branches.image_cnn((28, 28, 1), filters=(4,))
            model = mmzoo.compose([image], head=head, hidden=(8,))
            assert model.get_layer("head_dense1").compute_dtype == policy.split("_")[1]
            out = model({"image": real_data.image((28, 28, 1))[:2]})
            assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_activations_behave(real_data):
    image = branches.image_cnn((28, 28, 1), filters=(4,))
    x = real_data.image((28, 28, 1))[:5]
    probs = mmzoo.compose([image], head=heads.multiclass(4), compile=False)(x).numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    image = branches.image_cnn((28, 28, 1), filters=(4,))
    multi = mmzoo.compose([image], head=heads.multilabel(4), compile=False)(x).numpy()
    assert ((multi > 0) & (multi < 1)).all()


def test_top_k_metric_dropped_when_k_covers_all_classes():
    assert {m.name for m in heads.multiclass(3, top_k=5).metrics()} == {"accuracy"}


@pytest.mark.parametrize(
    "factory, kwargs, argument",
    [
        (heads.multiclass, {"num_classes": 1}, "num_classes"),
        (heads.multiclass, {"num_classes": 3, "class_names": ["a"]}, "class_names"),
        (heads.binary, {"threshold": 1.5}, "threshold"),
        (heads.multilabel, {"num_labels": 0}, "num_labels"),
        (heads.regression, {"units": -1}, "units"),
    ],
)
def test_head_errors(factory, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        factory(**kwargs)
