"""Level-robust audio: a recording's gain must not change what the AV-digits model answers."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches
from mmzoo.datasets import av_digits_recipe
from mmzoo.layers import WaveformNormalization

QUIETER = 10 ** (-20 / 20)  # -20 dB


@pytest.fixture(scope="module")
def recordings():
    """Real FSDD recordings (embedded AV-digits test split, clean and degraded) and their images."""
    clean, degraded = av_digits_recipe.load_arrays(degraded=False), av_digits_recipe.load_arrays()
    inputs = {k: np.concatenate([clean["test"][0][k][:24], degraded["test"][0][k][:24]]) for k in ("image", "audio")}
    return inputs, np.concatenate([clean["test"][1][:24], degraded["test"][1][:24]])


def test_waveform_normalization_ignores_gain_on_real_speech(recordings):
    audio = recordings[0]["audio"]
    layer = WaveformNormalization()
    out = layer(audio).numpy()
    np.testing.assert_allclose(np.sqrt(np.mean(out**2, axis=-1)), 0.1, rtol=1e-5)
    for gain_db in (-40.0, -20.0, 20.0):
        np.testing.assert_allclose(layer(audio * np.float32(10 ** (gain_db / 20))), out, rtol=1e-5, atol=1e-7)
    silence = layer(np.zeros((2, 4000), "float32")).numpy()
    assert np.isfinite(silence).all() and not silence.any()
    # Below the epsilon floor the gain is capped, not blown up to the target level.
    faint = layer(np.full((1, 4000), 1e-7, "float32")).numpy()
    np.testing.assert_allclose(faint, 1e-7 * 0.1 / 1e-5, rtol=1e-5)
    peak = WaveformNormalization(method="peak")
    peaked = peak(audio).numpy()
    np.testing.assert_allclose(np.abs(peaked).max(axis=-1), 0.9, rtol=1e-6)
    np.testing.assert_allclose(peak(audio * np.float32(QUIETER)), peaked, rtol=1e-5, atol=1e-7)
    restored = WaveformNormalization.from_config(
        WaveformNormalization(target_rms=0.3, epsilon=1e-3, method="peak", target_peak=0.5).get_config()
    )
    assert (restored.target_rms, restored.epsilon, restored.method, restored.target_peak) == (0.3, 1e-3, "peak", 0.5)
    bad = (
        {"target_rms": 0},
        {"epsilon": -1.0},
        {"target_rms": "loud"},
        {"epsilon": True},
        {"method": "lufs"},
        {"target_peak": 0.0},
    )
    for kwargs in bad:
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            WaveformNormalization(**kwargs)


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (branches.audio_spectrogram_cnn, {"filters": (4,)}),
        (branches.audio_spectrogram_cnn, {"filters": (4,), "frontend": "stft"}),
        (branches.audio_rnn, {"units": 4}),
        (branches.audio_conv1d, {"filters": (4,), "pool_size": 4}),
    ],
)
def test_audio_branches_level_argument(builder, kwargs, recordings):
    audio = recordings[0]["audio"][:8]
    encoder = builder(num_samples=4000, name="voice", **kwargs).encoder()
    assert isinstance(encoder.get_layer("voice_level"), WaveformNormalization)  # the default: level="rms"
    np.testing.assert_allclose(encoder(audio * np.float32(QUIETER)), encoder(audio), rtol=1e-4, atol=1e-5)
    peak = builder(num_samples=4000, name="voice", level="peak", **kwargs).encoder()
    assert peak.get_layer("voice_level").method == "peak"
    np.testing.assert_allclose(peak(audio * np.float32(QUIETER)), peak(audio), rtol=1e-4, atol=1e-5)
    plain = builder(num_samples=4000, name="voice", level=None, **kwargs).encoder()
    assert "voice_level" not in [layer.name for layer in plain.layers]
    with pytest.raises(ValueError, match="level"):
        builder(num_samples=4000, level="loud", **kwargs)


def test_spectrogram_frontend_floor_makes_each_example_independent_of_its_batch(recordings):
    audio = recordings[0]["audio"][:4]  # clean recordings: their zero-padded tails are digital silence

    def frontend(**kwargs):
        waveform = keras.Input((4000,))
        return keras.Model(waveform, branches.audio.spectrogram_frontend(waveform, 8000, **kwargs))

    robust = frontend()  # level="rms", floor_db="auto": a fixed floor at -60 dB
    mel = robust.get_layer("audio_mel")
    assert mel.min_power == pytest.approx(1e-6) and mel.top_db >= 1000
    alone = robust(audio[:1]).numpy()
    np.testing.assert_allclose(robust(audio).numpy()[:1], alone, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(robust(audio * np.float32(QUIETER)).numpy()[:1], alone, rtol=1e-5, atol=1e-4)
    # Keras's default clips 80 dB below the loudest value of the whole batch: a louder neighbour changes a
    # recording's spectrum. level=None keeps that (today's behaviour).
    batch_relative = frontend(level=None)
    assert batch_relative.get_layer("audio_mel").top_db == 80.0
    with_loud = batch_relative(np.stack([audio[0], 30 * audio[1]])).numpy()[:1]
    assert np.abs(with_loud - batch_relative(audio[:1]).numpy()).max() > 0.1
    fixed = frontend(level=None, floor_db=-80.0).get_layer("audio_mel")
    assert fixed.min_power == pytest.approx(1e-8)
    for bad in ("quiet", -300, True):
        with pytest.raises(ValueError, match="floor_db"):
            frontend(floor_db=bad)


def _trained(level, recordings):
    keras.utils.set_random_seed(0)
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=64, seed=0)
    model = mmzoo.build(
        "av_digits_concat", image_filters=(8,), audio_filters=(8,), hidden=(32,), level=level, jit_compile=False
    )
    model.fit(train_ds, epochs=1, verbose=0)  # one epoch reads most digits already
    return model


def test_exported_av_digits_model_gives_the_same_class_20_db_quieter(recordings, tmp_path):
    """The issue's test: the same recording scaled by -20 dB gives the same top class from the exported model."""
    inputs, labels = recordings
    model = _trained("rms", recordings)
    served = mmzoo.load(mmzoo.export(model, str(tmp_path / "av_digits"), preprocessing="av_digits"))
    as_recorded = served.predict(inputs)
    quieter = served.predict({**inputs, "audio": inputs["audio"] * np.float32(QUIETER)})
    np.testing.assert_array_equal(quieter["class_id"], as_recorded["class_id"])
    np.testing.assert_allclose(quieter["probabilities"], as_recorded["probabilities"], atol=1e-4)
    # Not a trivial model: it reads the digits (far above the 0.1 of chance) and listens to the audio.
    assert np.mean(as_recorded["class_id"] == labels) > 0.5
    swapped = served.predict({**inputs, "audio": inputs["audio"][::-1]})
    assert np.abs(swapped["probabilities"] - as_recorded["probabilities"]).max() > 0.1
    # Without the level normalisation the same model family does change its answers 20 dB quieter.
    plain = _trained(None, recordings)
    plain_probs = plain.predict(inputs, verbose=0)
    plain_quieter = plain.predict({**inputs, "audio": inputs["audio"] * np.float32(QUIETER)}, verbose=0)
    assert np.abs(plain_quieter - plain_probs).max() > 0.1
