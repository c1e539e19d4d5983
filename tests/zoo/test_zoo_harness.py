"""The shared zoo harness: every registered model, tiny, checked the same way.

A model added to the registry gets these tests for free.
"""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import zoo

MODELS = zoo.list_models()


def _batch(model, real_data, n=16):
    x = {k: v[:n] for k, v in real_data.inputs_for(model).items()}
    y = real_data.labels_for(model)
    return x, None if y is None else y[:n]


# XLA-compiling the BERT-sized designs takes 20-70 s each on 2 cores: those two runs are `slow`
# (`pytest -m slow`); every model still trains in graph mode, and every other model under XLA, by default.
SLOW_XLA = {"bert_resnet_concat", "bert_resnet_lstm_late_fusion"}


def _training_params():
    for name in MODELS:
        for jit_compile, mode in ((False, "graph"), (True, "xla")):
            marks = [pytest.mark.slow] if jit_compile and name in SLOW_XLA else []
            yield pytest.param(name, jit_compile, marks=marks, id=f"{name}-{mode}")


@pytest.mark.parametrize(("name", "jit_compile"), list(_training_params()))
def test_trains_and_loss_changes(name, jit_compile, real_data):
    keras.utils.set_random_seed(0)
    model = zoo.build_tiny(name, jit_compile=jit_compile)
    x, y = _batch(model, real_data)
    for v in x.values():
        assert np.std(v) > 0, "the harness must feed real, non-constant data"
    losses = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] != pytest.approx(losses[0], rel=1e-4), f"{name}: loss did not change: {losses}"


@pytest.mark.parametrize("name", MODELS)
def test_config_and_keras_file_round_trips(name, real_data, tmp_path):
    """``from_config(get_config())`` and ``.keras`` save/load (safe_mode) keep predictions."""
    keras.utils.set_random_seed(1)
    model = zoo.build_tiny(name)
    x, _ = _batch(model, real_data, n=4)
    expected = model(x, training=False)

    clone = model.__class__.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    _assert_same_outputs(expected, clone(x, training=False))

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    _assert_same_outputs(expected, loaded(x, training=False))
    assert [w.shape for w in loaded.trainable_weights] == [w.shape for w in model.trainable_weights]


def _assert_same_outputs(a, b):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_every_model_is_documented_and_has_tiny_overrides():
    for name in MODELS:
        entry = zoo.get(name)
        assert entry.summary, f"{name} has no docstring"
        assert entry.tiny, f"{name} has no tiny overrides"
        assert entry.modalities
        model = zoo.build_tiny(name)
        names = {"image", "text"} if isinstance(model, mmzoo.retrieval.DualEncoder) else set(model.input)
        assert names == set(entry.modalities)


def test_reference_designs_are_registered():
    for name in [
        "image_text_cnn",
        "image_text_audio_cnn_rnn_conv1d",
        "bert_resnet_concat",
        "bert_resnet_lstm_late_fusion",
        "image_text_retrieval",
        "av_digits_concat",
    ]:
        assert name in mmzoo.list_models()
