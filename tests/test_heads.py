import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, fusion, heads


@pytest.mark.parametrize(
    "head, activation, units, loss, metric_names",
    [
        (heads.binary(), "sigmoid", 1, keras.losses.BinaryCrossentropy, {"accuracy", "precision", "recall", "auc"}),
        (heads.multiclass(10), "softmax", 10, keras.losses.SparseCategoricalCrossentropy,
         {"accuracy", "top5_accuracy"}),
        (heads.multilabel(4), "sigmoid", 4, keras.losses.BinaryCrossentropy,
         {"accuracy", "precision", "recall", "auc"}),
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


def test_head_error_names_threshold_type():
    with pytest.raises(ValueError, match="Received: threshold='high'"):
        heads.multilabel(3, threshold="high")
    with pytest.raises(ValueError, match="class_names"):
        heads.binary(class_names="ab")


# The head travels inside the model: HeadActivation's config is the head.

_HEADS = [
    heads.binary(threshold=0.3, class_names=["ham", "spam"]),
    heads.multiclass(4, top_k=2, class_names=["a", "b", "c", "d"]),
    heads.multilabel(3, threshold=0.7, class_names=["red", "green", "blue"]),
    heads.regression(2, class_names=["price", "age"]),
    heads.multiclass(3),
]


@pytest.mark.parametrize("head", _HEADS, ids=lambda h: h.kind)
def test_head_config_round_trips(head):
    config = head.get_config()
    assert heads.Head.from_config(config) == head
    layer = heads.HeadActivation(**config, activation=head.activation, name="output")
    again = heads.HeadActivation.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert again.head == head and again.dtype_policy.name == "float32"
    assert {"kind", "activation", "units", "class_names", "threshold", "top_k"} <= set(layer.get_config())


def _model(head, fusion_name="concat"):
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    audio = branches.audio_conv1d(1000, filters=(4,), name="audio")
    return mmzoo.compose([image, audio], fusion=fusion_name, head=head, hidden=(8,))


@pytest.mark.parametrize("head", _HEADS[:4], ids=lambda h: h.kind)
def test_model_carries_its_head_through_keras_file_and_config(head, real_data, tmp_path):
    model = _model(head, fusion.late("sum") if head.kind == "binary" else "concat")
    assert heads.from_model(model) == head
    x = {"image": real_data.image((28, 28, 1))[:4], "audio": real_data.audio(1000)[:4]}
    expected = model(x, training=False)

    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    reloaded = heads.from_model(loaded)
    assert reloaded == head
    assert reloaded.class_names == head.class_names and getattr(reloaded, "threshold", None) == getattr(
        head, "threshold", None
    )
    np.testing.assert_allclose(loaded(x, training=False), expected, rtol=1e-5, atol=1e-6)

    clone = keras.Model.from_config(model.get_config())
    assert heads.from_model(clone) == head


def test_from_model_finds_a_nested_head_and_rejects_plain_models():
    head = heads.multiclass(3, class_names=["x", "y", "z"])
    inner = _model(head)
    inputs = {name: keras.Input(t.shape[1:], name=name) for name, t in inner.input.items()}
    outer = keras.Model(inputs, inner(inputs), name="outer")
    assert heads.from_model(outer) == head

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")], name="plain")
    with pytest.raises(ValueError, match="'plain' has no mmzoo head"):
        heads.from_model(plain)


def test_head_activation_is_float32_under_a_mixed_policy(real_data):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model(heads.multilabel(3))
        layer = model.get_layer("output")
        assert isinstance(layer, heads.HeadActivation) and layer.compute_dtype == "float32"
        out = model({"image": real_data.image((28, 28, 1))[:2], "audio": real_data.audio(1000)[:2]})
        assert out.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "ranking", "units": 3}, "Received: kind='ranking'"),
        ({"kind": "multiclass", "units": 3, "activation": "sigmoid"}, "Received: activation='sigmoid'"),
        ({"kind": "binary", "units": 2}, "Received: units=2"),
        ({"kind": "multilabel", "units": 2, "threshold": 1.0}, "Received: threshold=1.0"),
        ({"kind": "regression", "units": 2, "class_names": ["a"]}, "class_names"),
    ],
)
def test_head_activation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        heads.HeadActivation(**kwargs)
