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
    ],
)
def test_audio_builders_reject_bad_arguments(builder, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        builder(**kwargs)
