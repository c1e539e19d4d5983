"""``mmzoo._keras_compat``: the one adapter over Keras internals, checked against Keras itself.

If a Keras upgrade moves or changes what the adapter relies on, these tests fail first.
"""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pytest

from mmzoo import _keras_compat

SEEN_FLAGS = []


@keras.saving.register_keras_serializable(package="mmzoo_test_compat")
class RecordsSafeMode(keras.layers.Layer):
    """Records ``in_safe_mode()`` while Keras deserializes it."""

    @classmethod
    def from_config(cls, config):
        SEEN_FLAGS.append(_keras_compat.in_safe_mode())
        return super().from_config(config)

    def call(self, x):
        return x


def test_in_safe_mode_follows_load_model(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, RecordsSafeMode()(inputs))
    path = str(tmp_path / "m.keras")
    model.save(path)
    assert _keras_compat.in_safe_mode() is None  # outside deserialization
    SEEN_FLAGS.clear()
    keras.saving.load_model(path, safe_mode=True)
    keras.saving.load_model(path, safe_mode=False)
    assert SEEN_FLAGS == [True, False]
    assert _keras_compat.in_safe_mode() is None  # restored after loading


def test_safe_mode_scope_sets_and_restores_the_flag():
    before = _keras_compat.in_safe_mode()
    with _keras_compat.safe_mode_scope(False):
        assert _keras_compat.in_safe_mode() is False
        with _keras_compat.safe_mode_scope(True):
            assert _keras_compat.in_safe_mode() is True
        assert _keras_compat.in_safe_mode() is False
    assert _keras_compat.in_safe_mode() is before


@keras.saving.register_keras_serializable(package="mmzoo_test_compat")
class Block(keras.layers.Layer):
    """Sublayers held directly, in a list and in a dict (as custom layers do)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(3, dtype=self.dtype_policy)
        self.stack = [keras.layers.Dense(3, dtype=self.dtype_policy), keras.layers.BatchNormalization()]
        self.named = {"norm": keras.layers.LayerNormalization()}

    def call(self, x, training=None):
        x = self.dense(x)
        for layer in self.stack:
            x = layer(x, training=training) if isinstance(layer, keras.layers.BatchNormalization) else layer(x)
        return self.named["norm"](x)


def _nested_model():
    inner_in = keras.Input((3,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization()(keras.layers.Dense(3)(inner_in)), name="inner")
    seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3), keras.layers.BatchNormalization()], name="seq")
    inputs = keras.Input((4,))
    x = Block(name="block")(inputs)
    x = inner(x)
    x = seq(x)
    shared = keras.layers.Dense(3, name="shared")
    x = shared(shared(x))  # a layer used twice is listed once
    return keras.Model(inputs, keras.layers.Dense(1)(x))


def _ids(layers):
    return {id(layer) for layer in layers if not isinstance(layer, keras.layers.InputLayer)}


def test_walk_layers_finds_what_keras_tracks():
    model = _nested_model()
    walked = _keras_compat.walk_layers(model)
    assert walked[0] is model and len(walked) == len(_ids(walked)) + sum(
        isinstance(x, keras.layers.InputLayer) for x in walked
    )
    assert _ids(walked) == _ids(model._flatten_layers(include_self=True))  # Keras's private traversal
    batch_norms = [x for x in walked if isinstance(x, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 3  # in the custom layer's list, the nested functional model and the Sequential
    assert model not in _keras_compat.walk_layers(model, include_self=False)
    with pytest.raises(ValueError, match="Received: layer="):
        _keras_compat.walk_layers("dense")


def test_walk_layers_on_a_zoo_model_and_a_keras_hub_backbone():
    import mmzoo

    model = mmzoo.zoo.build_tiny("bert_resnet_concat")
    assert _ids(_keras_compat.walk_layers(model)) == _ids(model._flatten_layers(include_self=True))


def test_no_private_keras_import_outside_the_adapter():
    root = pathlib.Path(__file__).resolve().parents[1] / "mmzoo"
    private = ("keras.src", "_flatten_layers")
    offenders = [
        str(path.relative_to(root)) for path in root.rglob("*.py")
        if path.name != "_keras_compat.py" and any(name in path.read_text() for name in private)
    ]
    assert not offenders, f"private Keras APIs used outside mmzoo/_keras_compat.py: {offenders}"


def test_walked_batch_norm_freezing_runs_in_inference_mode():
    """What ``finetune.unfreeze`` relies on: BatchNorm found by the walk, frozen, stops updating its statistics."""
    model = _nested_model()
    for layer in _keras_compat.walk_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile("sgd", "mse")
    before = [v.numpy().copy() for v in model.non_trainable_variables]
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.fit(x, x[:, :1], epochs=1, verbose=0)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.non_trainable_variables))


def test_tensor_consumers_and_call_count_follow_the_functional_graph():
    x = keras.Input((4,))
    left, right, shared, join = (keras.layers.Dense(4), keras.layers.Dense(2), keras.layers.Dense(4),
                                 keras.layers.Concatenate())
    a = left(x)
    model = keras.Model(x, join([shared(shared(a)), right(x)]))
    consumers = _keras_compat.tensor_consumers(model)
    assert {layer.name for layer in consumers[id(x)]} == {left.name, right.name}
    assert [layer.name for layer in consumers[id(a)]] == [shared.name]
    assert _keras_compat.call_count(shared) == 2 and _keras_compat.call_count(left) == 1


def test_submodel_from_an_input_and_an_intermediate_tensor_leaves_the_source_model_saveable(tmp_path):
    raw, other = keras.Input((4,), name="raw"), keras.Input((3,), name="other")
    features = keras.layers.Dense(2, name="features")(raw)
    model = keras.Model({"raw": raw, "other": other},
                        keras.layers.Dense(1, name="out")(keras.layers.Concatenate()([features, other])))
    trunk = _keras_compat.submodel({"raw": features, "other": other}, model.output)
    x = {"raw": keras.ops.ones((2, 4)), "other": keras.ops.ones((2, 3))}
    np.testing.assert_allclose(trunk({"raw": model.get_layer("features")(x["raw"]), "other": x["other"]}), model(x))
    model.save(tmp_path / "m.keras")  # plain keras.Model here: "could not find node key ..._ib-1"
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "m.keras")(x), model(x), rtol=1e-6)


def test_set_initial_epoch_makes_fit_start_there():
    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            _keras_compat.set_initial_epoch(self.model, 3)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    history = model.fit(np.ones((4, 2)), np.zeros(4), epochs=5, verbose=0, callbacks=[Resume()])
    assert history.epoch == [3, 4]
