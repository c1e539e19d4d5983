"""Audio decoding inside ``tf.data``: WAV bytes -> float32 mono waveform of a
fixed length at the model's sample rate.

WAV uses core TensorFlow (``tf.audio.decode_wav``) and always works. FLAC,
MP3 and OGG need tensorflow-io's native ops (``pip install mmzoo[audio-codecs]``),
which load only with the TensorFlow versions tensorflow-io was built for;
``compressed_audio_decoder`` checks that up front and otherwise raises an
error saying so.
"""

from __future__ import annotations

import os

import tensorflow as tf

from mmzoo import _validation as check

WAV_EXTENSIONS = (".wav",)
COMPRESSED_EXTENSIONS = (".flac", ".mp3", ".ogg")
CROP_MODES = ("start", "center", "end")
# tensorflow-io 0.37.1 (its newest release) ships native ops built for TF 2.16/2.17;
# with TensorFlow 2.18+ (e.g. 2.21) they fail to load with an undefined symbol.
TFIO_SUPPORTED_TF = "2.16 and 2.17 (tensorflow-io 0.37.x)"


class UnsupportedAudioFormatError(ValueError):
    """Raised when an audio format cannot be decoded in this environment."""


def mono(waveform):
    """Mixes ``(T, channels)`` down to ``(T,)`` by averaging channels."""
    return tf.reduce_mean(waveform, axis=-1)


def resample(waveform, rate_in, rate_out):
    """Band-limited (FFT) resampling of a 1-D waveform.

    The spectrum is truncated (downsampling) or zero-padded (upsampling), as
    ``scipy.signal.resample`` does, so tones below both Nyquist frequencies
    keep their frequency exactly.

    Args:
        waveform: float32 ``(T,)``.
        rate_in: Its sample rate (int or scalar tensor).
        rate_out: Wanted sample rate (int).

    Returns:
        float32 ``(round(T * rate_out / rate_in),)``; the input itself when
        the rates are equal.

    Example:

    >>> resample(tf.zeros(8000), 16000, 8000).shape
    TensorShape([4000])
    """
    rate_in = tf.cast(rate_in, tf.int64)
    rate_out_t = tf.constant(rate_out, tf.int64)

    def convert():
        n = tf.cast(tf.shape(waveform)[0], tf.int64)
        m = tf.maximum((n * rate_out_t + rate_in // 2) // rate_in, 1)
        spectrum = tf.signal.rfft(waveform)
        bins = m // 2 + 1
        have = tf.cast(tf.shape(spectrum)[0], tf.int64)
        spectrum = spectrum[: tf.minimum(bins, have)]
        spectrum = tf.pad(spectrum, [[0, tf.maximum(bins - have, 0)]])
        out = tf.signal.irfft(spectrum, fft_length=tf.cast(tf.reshape(m, [1]), tf.int32))
        return out * tf.cast(m, tf.float32) / tf.cast(tf.maximum(n, 1), tf.float32)

    return tf.cond(tf.equal(rate_in, rate_out_t), lambda: tf.identity(waveform), convert)


def fit_length(waveform, num_samples, crop="start"):
    """Crops or zero-pads (at the end) a 1-D waveform to ``num_samples``.

    Args:
        waveform: float32 ``(T,)``.
        num_samples: Output length.
        crop: Which part a longer clip keeps: ``"start"``, ``"center"`` or
            ``"end"``.

    Returns:
        float32 ``(num_samples,)``.

    Raises:
        ValueError: If ``crop`` is invalid.

    Example:

    >>> fit_length(tf.range(10, dtype=tf.float32), 4, crop="end").numpy()
    array([6., 7., 8., 9.], dtype=float32)
    """
    check.choice("crop", crop, set(CROP_MODES))
    length = tf.shape(waveform)[0]
    extra = tf.maximum(length - num_samples, 0)
    offset = {"start": 0, "center": extra // 2, "end": extra}[crop]
    out = waveform[offset : offset + num_samples]
    out = tf.pad(out, [[0, num_samples - tf.shape(out)[0]]])
    return tf.ensure_shape(out, (num_samples,))


def decode_wav(contents, sampling_rate, num_samples, crop="start"):
    """Decodes WAV bytes to a mono waveform at ``sampling_rate``, fixed length.

    Args:
        contents: A scalar ``tf.string`` holding a 16-bit PCM WAV file.
        sampling_rate: Output sample rate; other rates are resampled.
        num_samples: Output length (crop or zero-pad at the end).
        crop: ``"start"``, ``"center"`` or ``"end"`` (see ``fit_length``).

    Returns:
        float32 ``(num_samples,)`` in [-1, 1].

    Raises:
        ValueError: If an argument is invalid.
        tf.errors.InvalidArgumentError: At run time, if the bytes are not a
            valid WAV file (e.g. truncated).

    Example:

    >>> wav = tf.audio.encode_wav(tf.zeros((16000, 2)), 16000)
    >>> decode_wav(wav, 8000, 4000).shape
    TensorShape([4000])
    """
    sampling_rate = check.positive_int("sampling_rate", sampling_rate)
    num_samples = check.positive_int("num_samples", num_samples)
    waveform, rate = tf.audio.decode_wav(contents)
    waveform = resample(mono(waveform), rate, sampling_rate)
    return fit_length(waveform, num_samples, crop)


def _tfio_audio():
    """Imports tensorflow-io and checks that its native audio ops load.

    Returns:
        ``(tfio_audio_module, None)`` or ``(None, reason)``.
    """
    try:
        import tensorflow_io as tfio  # noqa: PLC0415 (optional dependency)
    except Exception as error:  # ImportError, or a failing native library
        return None, f"tensorflow-io is not importable ({type(error).__name__}: {error})"
    try:
        # A tiny WAV through a native op: fails with an undefined symbol when the
        # installed TensorFlow is newer than the one tensorflow-io was built for.
        tfio.audio.decode_wav(tf.audio.encode_wav(tf.zeros((4, 1)), 8000), dtype=tf.int16)
    except Exception as error:
        return None, f"tensorflow-io's native ops do not load ({type(error).__name__}: {str(error)[:200]})"
    return tfio.audio, None


def compressed_audio_decoder(extension):
    """Returns a graph function ``bytes -> (waveform (T, C) float32, rate)`` for
    FLAC, MP3 or OGG, or raises a clear error when it cannot work here.

    Args:
        extension: ``".flac"``, ``".mp3"`` or ``".ogg"``.

    Returns:
        A function usable inside ``Dataset.map``.

    Raises:
        UnsupportedAudioFormatError: If tensorflow-io is missing or its ops do
            not load with this TensorFlow, or the extension is unknown.

    Example:

    >>> decode = compressed_audio_decoder(".flac")  # raises on TF 2.21
    """
    extension = extension.lower()
    if extension not in COMPRESSED_EXTENSIONS:
        raise UnsupportedAudioFormatError(
            f"Unsupported audio file type {extension!r}; supported: "
            f"{list(WAV_EXTENSIONS + COMPRESSED_EXTENSIONS)}."
        )
    tfio_audio, reason = _tfio_audio()
    if tfio_audio is None:
        raise UnsupportedAudioFormatError(
            f"Decoding {extension} audio needs tensorflow-io (`pip install mmzoo[audio-codecs]`), whose "
            f"native ops load only with TensorFlow {TFIO_SUPPORTED_TF}; this is TensorFlow "
            f"{tf.__version__} and {reason}. WAV files always work (core tf.audio.decode_wav): convert "
            f"with e.g. `ffmpeg -i clip{extension} -ar 16000 clip.wav`."
        )
    decoders = {".flac": tfio_audio.decode_flac, ".mp3": tfio_audio.decode_mp3, ".ogg": tfio_audio.decode_vorbis}
    decode = decoders[extension]

    def decode_compressed(contents):
        if extension == ".flac":
            return tf.cast(decode(contents, dtype=tf.int16), tf.float32) / 32768.0
        return tf.cast(decode(contents), tf.float32)

    return decode_compressed


def audio_decoder(path_or_extension, sampling_rate, num_samples, crop="start", source_rate=None):
    """Picks the decoder for a file type: ``bytes -> (num_samples,) float32``.

    Args:
        path_or_extension: A file path or an extension such as ``".wav"``.
        sampling_rate: Output sample rate.
        num_samples: Output length.
        crop: ``"start"``, ``"center"`` or ``"end"``.
        source_rate: Sample rate of compressed files (their decoders do not
            report it); required for FLAC/MP3/OGG.

    Returns:
        A function usable inside ``Dataset.map``.

    Raises:
        UnsupportedAudioFormatError: For a type that cannot be decoded here.
        ValueError: If ``source_rate`` is missing for a compressed format.

    Example:

    >>> decode = audio_decoder(".wav", 8000, 4000)
    """
    extension = os.path.splitext(os.fspath(path_or_extension))[1].lower() or os.fspath(path_or_extension).lower()
    if extension in WAV_EXTENSIONS:
        return lambda contents: decode_wav(contents, sampling_rate, num_samples, crop)
    decode = compressed_audio_decoder(extension)
    if source_rate is None:
        raise ValueError(f"`source_rate` is required to decode {extension} files. Received: source_rate=None")

    def decode_compressed(contents):
        waveform = resample(mono(decode(contents)), source_rate, sampling_rate)
        return fit_length(waveform, num_samples, crop)

    return decode_compressed
