"""``mmzoo.training.adapt``: AdaBN on a real new voice."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, heads
from mmzoo.datasets import av_digits_recipe as recipe
from mmzoo.training.adapt import adapt_batch_norm, batch_norm_layers


def _recordings(data_dir, speaker, n=40):
    paths = sorted((data_dir / "fsdd" / "recordings").glob(f"*_{speaker}_*.wav"))[:n]
    waves = np.stack([recipe.fit_waveform(recipe.read_wav_int16(str(p))[0]) for p in paths])
    labels = np.array([recipe.parse_fsdd_name(p.name)[0] for p in paths])
    return waves, labels


@pytest.fixture(scope="module")
def trained():
    """An audio + image model trained briefly on the embedded AV-digits."""
    keras.utils.set_random_seed(0)
    audio = branches.audio_spectrogram_cnn(4000, 8000, filters=(8, 16), reduction="flatten")
    image = branches.image_cnn((28, 28, 1), filters=(8,), name="image")
    model = mmzoo.compose([image, audio], head=heads.multiclass(10), hidden=(16,))
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=32)
    model.fit(train_ds.take(10), epochs=1, verbose=0)
    return model


def test_adapt_sets_exact_statistics_of_a_new_voice_and_nothing_else(trained, data_dir, tmp_path):
    """The statistics become the new speaker's (exactly, in any batch size); weights and gamma/beta stay."""
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    waves, _ = _recordings(data_dir, "jackson")
    layer = model.get_layer("audio_spec_norm")
    assert batch_norm_layers(model) == [layer]
    before = {w.path: w.numpy() for w in model.weights}
    probe = {"image": np.zeros((len(waves), 28, 28, 1), "float32"), "audio": waves}
    answer_before = model.predict(probe, verbose=0)

    spectra = np.asarray(keras.Model(model.input["audio"], layer.input)(waves), np.float64)
    assert adapt_batch_norm(model, {"audio": waves}, batch_size=7) == {"audio_spec_norm": len(waves)}
    np.testing.assert_allclose(layer.moving_mean.numpy(), spectra.mean(axis=(0, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_variance.numpy(), spectra.var(axis=(0, 1)), rtol=1e-3, atol=1e-4)
    adapted_mean = layer.moving_mean.numpy()
    adapt_batch_norm(model, {"audio": waves}, batch_size=1000)  # one batch: the same statistics
    np.testing.assert_allclose(layer.moving_mean.numpy(), adapted_mean, rtol=1e-4, atol=1e-5)
    # A new voice's spectra are not centred by the training statistics: adapting moves them.
    assert np.abs(layer.moving_mean.numpy() - before[layer.moving_mean.path]).max() > 0.05
    for w in model.weights:
        if w.path not in (layer.moving_mean.path, layer.moving_variance.path):
            np.testing.assert_array_equal(w.numpy(), before[w.path])
    adapted_answer = model.predict(probe, verbose=0)
    assert np.abs(adapted_answer - answer_before).max() > 1e-3

    path = str(tmp_path / "adapted.keras")  # the adapted statistics are the model's: they save and reload
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(probe, verbose=0), adapted_answer, atol=1e-6)


def test_adapt_takes_a_dataset_with_labels(trained, data_dir):
    import tensorflow as tf

    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    waves, labels = _recordings(data_dir, "lucas", n=24)
    dataset = tf.data.Dataset.from_tensor_slices(({"audio": waves}, labels)).batch(5)
    assert adapt_batch_norm(model, dataset) == {"audio_spec_norm": 24}
    spectra = np.asarray(keras.Model(model.input["audio"], model.get_layer("audio_spec_norm").input)(waves))
    np.testing.assert_allclose(model.get_layer("audio_spec_norm").moving_mean.numpy(), spectra.mean(axis=(0, 1)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"inputs": [np.zeros((4, 4000))]}, "`inputs` must be a dict"),
        ({"inputs": {"audio": np.zeros((0, 4000), "float32")}}, "no example"),
        ({"inputs": {"image": np.zeros((4, 28, 28, 1), "float32")}}, "holds none of the inputs"),
        ({"inputs": {"image": np.zeros((4, 28, 28, 1), "float32")}, "layers": "audio_spec_norm"},
         "lacks \\['audio'\\]"),
        ({"layers": ["image_bn"]}, "`layers` names no BatchNormalization layer.*image_bn"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"inputs": {"audio": np.zeros((4, 4000)), "image": np.zeros((3, 28, 28, 1))}}, "one length"),
    ],
)
def test_adapt_rejects_bad_arguments(trained, kwargs, match):
    arguments = {"inputs": {"audio": np.zeros((4, 4000), "float32")}, **kwargs}
    with pytest.raises(ValueError, match=match):
        adapt_batch_norm(trained, **arguments)


def test_adapt_refuses_models_it_cannot_adapt():
    inputs = keras.Input((3,), name="x")
    with pytest.raises(ValueError, match="no BatchNormalization"):
        adapt_batch_norm(keras.Model(inputs, keras.layers.Dense(2)(inputs)), {"x": np.zeros((2, 3))})
    inner = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="inner_bn")], name="inner")
    with pytest.raises(ValueError, match="'inner' .* BatchNormalization layers of its own"):
        adapt_batch_norm(keras.Model(inputs, inner(inputs)), {"x": np.zeros((2, 3))})
