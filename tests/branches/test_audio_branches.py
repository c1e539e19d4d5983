import keras
import numpy as np
import pytest

from mmzoo import branches
from mmzoo.layers import Spectrogram


def test_audio_conv1d_shapes():
    b = branches.audio_conv1d(num_samples=1000, filters=(8,), kernel_size=3, pool_size=2, name="audio")
    assert b.input.shape == (None, 1000)
    assert b.features.shape == (None, 8)
    flat = branches.audio_conv1d(num_samples=1000, filters=(8,), kernel_size=3, pool_size=2, reduction="flatten")
    assert flat.features.shape == (None, 499 * 8)


@pytest.mark.parametrize("frontend", ["mel", "stft"])
def test_audio_spectrogram_cnn_on_real_speech(frontend, real_data):
    b = branches.audio_spectrogram_cnn(num_samples=4000, sampling_rate=8000, frontend=frontend, filters=(4, 8))
    assert b.features.shape == (None, 8)
    out = b.encoder()(real_data.audio(4000)[:4]).numpy()
    assert out.shape == (4, 8) and np.isfinite(out).all() and np.std(out) > 0


def test_audio_rnn_runs_over_frames(real_data):
    b = branches.audio_rnn(num_samples=4000, sampling_rate=8000, rnn="lstm", units=5, num_layers=2)
    assert b.features.shape == (None, 5)
    assert b.encoder()(real_data.audio(4000)[:2]).shape == (2, 5)


def test_spectrogram_layer_finds_a_sine():
    rate, freq = 8000, 1000
    t = np.arange(4000) / rate
    wave = np.sin(2 * np.pi * freq * t).astype("float32")[None]
    spec = Spectrogram(frame_length=256, frame_step=128, mode="magnitude")(wave).numpy()
    assert spec.shape == (1, 30, 129)
    assert np.argmax(spec[0].mean(0)) == round(freq / rate * 256)
    layer = Spectrogram.from_config(Spectrogram(frame_length=128).get_config())
    assert layer.frame_length == 128


def test_spectrogram_frontend_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        b = branches.audio_spectrogram_cnn(num_samples=2000, sampling_rate=8000, filters=(4,))
        mel = b.encoder().get_layer("audio_mel")
        assert mel.compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(
    "builder, kwargs, argument",
    [
        (branches.audio_conv1d, {"num_samples": 0}, "num_samples"),
        (branches.audio_conv1d, {"num_samples": 10, "kernel_size": 9, "pool_size": 4}, "num_samples"),
        (branches.audio_spectrogram_cnn, {"frontend": "mfcc"}, "frontend"),
        (branches.audio_spectrogram_cnn, {"num_samples": 100, "frame_length": 256}, "frame_length"),
        (branches.audio_rnn, {"rnn": "transformer"}, "rnn"),
        (branches.audio_rnn, {"sampling_rate": 0}, "sampling_rate"),
        (branches.audio_spectrogram_cnn, {"time_stretch": 1.5}, "max_stretch"),
        (branches.audio_rnn, {"time_stretch": -0.1}, "max_stretch"),
    ],
)
def test_audio_builders_reject_bad_arguments(builder, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        builder(**kwargs)


def test_time_stretch_trains_on_real_speech_changes_only_training_and_round_trips(tmp_path):
    """``time_stretch``: a random tempo change at train time only; the model saves, reloads and exports as usual."""
    import tensorflow as tf

    import mmzoo
    from mmzoo import heads
    from mmzoo.layers import RandomTimeStretch
    from mmzoo.training import frontend

    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=32)
    audio = next(iter(test_ds))[0]["audio"][:16]
    keras.utils.set_random_seed(0)
    branch = branches.audio_spectrogram_cnn(4000, 8000, filters=(8, 16), reduction="flatten", time_stretch=0.2)
    model = mmzoo.compose([branch], head=heads.multiclass(10), hidden=(16,))
    stretch = model.get_layer("audio_time_stretch")
    assert isinstance(stretch, RandomTimeStretch) and stretch.max_stretch == 0.2
    history = model.fit(train_ds.map(lambda x, y: ({"audio": x["audio"]}, y)).take(20), epochs=2, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]

    spectra = keras.Model(model.input, model.get_layer("audio_spec_norm").output)({"audio": audio})
    assert np.array_equal(stretch(spectra), spectra)  # inference: unchanged
    stretched = np.asarray(stretch(spectra, training=True))
    assert stretched.shape == spectra.shape and not np.allclose(stretched, spectra)
    np.testing.assert_array_equal(stretched[:, 0], np.asarray(spectra)[:, 0])  # aligned at the first frame
    expected = model.predict({"audio": audio}, verbose=0)
    np.testing.assert_array_equal(model.predict({"audio": audio}, verbose=0), expected)  # deterministic answer

    path = str(tmp_path / "stretch.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert reloaded.get_layer("audio_time_stretch").get_config()["max_stretch"] == 0.2
    np.testing.assert_allclose(reloaded.predict({"audio": audio}, verbose=0), expected, atol=1e-6)
    columns = {"audio": mmzoo.data.AudioColumn("audio", 8000, 4000)}
    export = mmzoo.export(model, str(tmp_path / "export"), preprocessing=columns)
    served = tf.saved_model.load(export).signatures["serving_default"]
    np.testing.assert_allclose(served(audio=audio)["probabilities"].numpy(), expected, atol=1e-5)
    # The front-end cache stops before the stretch (the spectrogram normalisation has weights), so a cached
    # front end still sees a fresh stretch every epoch.
    _, trunk = frontend.split(model)
    assert "audio_time_stretch" in [layer.name for layer in trunk.layers]
