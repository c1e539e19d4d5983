import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import audio


def _dominant_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x))
    return np.argmax(spectrum) * rate / len(x)


def test_sine_at_another_rate_is_resampled(tmp_path, write_wav):
    rate_in, seconds, tone = 22050, 0.5, 440.0
    t = np.arange(int(rate_in * seconds)) / rate_in
    stereo = np.stack([0.5 * np.sin(2 * np.pi * tone * t)] * 2, axis=1)
    path = write_wav(tmp_path / "sine.wav", stereo, rate_in, channels=2)
    out = audio.decode_wav(tf.io.read_file(str(path)), sampling_rate=8000, num_samples=8000).numpy()
    assert out.shape == (8000,) and out.dtype == np.float32
    resampled = out[:4000]  # 0.5 s at 8 kHz: the exact resampled length
    assert np.abs(out[4000:]).max() == 0.0  # zero padding after it
    assert np.abs(resampled[3990:]).max() > 0.1  # and the tone lasts to the end
    assert abs(_dominant_hz(resampled, 8000) - tone) <= 2.0
    assert abs(np.abs(resampled[100:-100]).max() - 0.5) < 0.02  # amplitude kept (mono mixdown of equal channels)


def test_resample_length_rounding():
    assert audio.resample(tf.zeros(16001), 16000, 8000).shape == (8001,)
    x = tf.random.normal([100])
    np.testing.assert_array_equal(audio.resample(x, 8000, 8000).numpy(), x.numpy())


def test_crop_choices():
    x = tf.range(10, dtype=tf.float32)
    np.testing.assert_array_equal(audio.fit_length(x, 4, "start"), [0, 1, 2, 3])
    np.testing.assert_array_equal(audio.fit_length(x, 4, "center"), [3, 4, 5, 6])
    np.testing.assert_array_equal(audio.fit_length(x, 4, "end"), [6, 7, 8, 9])
    np.testing.assert_array_equal(audio.fit_length(x, 12, "center"), list(range(10)) + [0, 0])
    with pytest.raises(ValueError, match="crop"):
        audio.fit_length(x, 4, "middle")


def test_real_fsdd_recording(data_dir):
    path = data_dir / "fsdd" / "recordings" / "3_jackson_0.wav"
    out = audio.decode_wav(tf.io.read_file(str(path)), 8000, 4000).numpy()
    raw, rate = tf.audio.decode_wav(tf.io.read_file(str(path)))
    assert rate == 8000 and out.shape == (4000,)
    n = min(4000, raw.shape[0])
    np.testing.assert_allclose(out[:n], raw.numpy()[:n, 0])


def test_truncated_wav_raises(tmp_path, write_wav):
    path = write_wav(tmp_path / "a.wav", np.zeros(1000), 8000)
    data = path.read_bytes()[:300]
    with pytest.raises(tf.errors.InvalidArgumentError):
        audio.decode_wav(tf.constant(data), 8000, 100)


@pytest.mark.parametrize("extension", [".flac", ".mp3", ".ogg"])
def test_compressed_formats_give_a_clear_error_without_working_tensorflow_io(extension):
    with pytest.raises(audio.UnsupportedAudioFormatError) as error:
        audio.audio_decoder(extension, 8000, 4000, source_rate=8000)
    message = str(error.value)
    assert "tensorflow-io" in message and audio.TFIO_SUPPORTED_TF in message
    assert tf.__version__ in message and "WAV files always work" in message
    assert 'pip install "mmzoo[audio-codecs]"' in message and "ffmpeg" in message
    with pytest.raises(audio.UnsupportedAudioFormatError, match="Unsupported audio file type"):
        audio.audio_decoder(".aiff", 8000, 4000)


def test_compressed_file_error_names_the_file():
    with pytest.raises(audio.UnsupportedAudioFormatError) as error:
        audio.audio_decoder("clips/take 1.flac", 8000, 4000, source_rate=8000)
    message = str(error.value)
    assert message.startswith("clips/take 1.flac: decoding .flac files needs tensorflow-io")
    assert "ffmpeg -i clips/take 1.flac take 1.wav" in message
    with pytest.raises(audio.UnsupportedAudioFormatError, match=r"^clips/a\.aiff: Unsupported audio file type"):
        audio.audio_decoder("clips/a.aiff", 8000, 4000)


# First bytes of each compressed format (their magic numbers) after a real FSDD recording's name.
_NOT_WAV = {"FLAC": b"fLaC\x00\x00\x00\x22", "OGG": b"OggS\x00\x02", "MP3": b"ID3\x04\x00", "PNG": b"\x89PNG\r\n"}


@pytest.mark.parametrize("kind", sorted(_NOT_WAV))
def test_bytes_of_another_format_name_it_and_the_ways_out(kind, data_dir):
    real = (data_dir / "fsdd" / "recordings" / "3_jackson_0.wav").read_bytes()
    contents = _NOT_WAV[kind] + real[12:]  # a real file's body behind another format's header
    found = None if kind == "PNG" else kind
    assert audio.audio_format(real) == "WAV" and audio.audio_format(contents) == found
    assert audio.check_wav_bytes(real, "3_jackson_0.wav") is real
    with pytest.raises(audio.UnsupportedAudioFormatError) as error:
        audio.check_wav_bytes(contents, f"take.{kind.lower()}")
    message = str(error.value)
    assert message.startswith(f"take.{kind.lower()}: " + (f"a {kind} file, not WAV" if found else "not a recognised"))
    assert 'pip install "mmzoo[audio-codecs]"' in message and "TensorFlow <= 2.17" in message
    assert "convert the file to WAV" in message
    with pytest.raises(tf.errors.InvalidArgumentError) as graph_error:  # the same inside tf.data / serving
        audio.decode_wav(tf.constant(contents), 8000, 4000)
    graph_message = str(graph_error.value)
    assert f"but found {kind + ' audio' if found else 'bytes of an unknown format'}" in graph_message
    assert 'mmzoo[audio-codecs]' in graph_message and "convert the file to WAV" in graph_message
