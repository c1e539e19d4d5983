"""Audio decoding inside ``tf.data``: WAV bytes -> float32 mono waveform of a
fixed length at the model's sample rate.

WAV uses core TensorFlow (``tf.audio.decode_wav``) and always works. FLAC,
MP3 and OGG need tensorflow-io's native ops (``pip install "mmzoo[audio-codecs]"``),
which load only with the TensorFlow versions tensorflow-io was built for
(<= 2.17); ``compressed_audio_decoder`` checks that up front and otherwise
raises an error saying so. Bytes of another format given where WAV is
expected fail with an error that names the format they look like and these
two ways out (``check_wav_bytes`` in Python, ``decode_wav`` in the graph).
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
CODECS_INSTALL = 'pip install "mmzoo[audio-codecs]"'
# Leading bytes of the compressed formats, to name them in errors.
_FORMAT_MAGIC = (("FLAC", (b"fLaC",)), ("OGG", (b"OggS",)), ("MP3", (b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")))


def _ways_out(example="clip.flac"):
    stem = os.path.splitext(os.path.basename(example))[0] or "clip"
    return (
        f"FLAC, MP3 and OGG need the optional tensorflow-io decoders ({CODECS_INSTALL}; they load only with "
        f"TensorFlow <= 2.17, this is {tf.__version__}), or convert the file to WAV, e.g. "
        f"`ffmpeg -i {example} {stem}.wav`."
    )


class UnsupportedAudioFormatError(ValueError):
    """Raised when an audio format cannot be decoded in this environment."""


def audio_format(contents):
    """The format that encoded audio bytes look like, from their first bytes.

    Args:
        contents: The file's bytes (the first 12 are enough).

    Returns:
        ``"WAV"``, ``"FLAC"``, ``"OGG"``, ``"MP3"`` or ``None`` (unknown).

    Example:

    >>> from mmzoo.data import audio
    >>> audio.audio_format(b"fLaC" + bytes(40))
    'FLAC'
    """
    contents = bytes(contents[:12])
    if contents[:4] == b"RIFF" and contents[8:12] == b"WAVE":
        return "WAV"
    for name, magics in _FORMAT_MAGIC:
        if contents.startswith(magics):
            return name
    return None


def check_wav_bytes(contents, name="the audio"):
    """Raises a clear error when ``contents`` is not a WAV file (before TensorFlow sees it).

    Args:
        contents: The file's bytes.
        name: What to call it in the message (e.g. its path).

    Returns:
        ``contents``.

    Raises:
        UnsupportedAudioFormatError: If the bytes are not RIFF/WAVE; the
            message names ``name``, the format the bytes look like, the
            ``audio-codecs`` extra and how to convert to WAV.

    Example:

    >>> from mmzoo.data import audio
    >>> audio.check_wav_bytes(b"fLaC" + bytes(40), "clip.flac")
    Traceback (most recent call last):
    ...
    mmzoo.data.audio.UnsupportedAudioFormatError: clip.flac: a FLAC file, not WAV...
    """
    found = audio_format(contents)
    if found == "WAV":
        return contents
    example = name if os.path.splitext(str(name))[1] else f"clip.{(found or 'flac').lower()}"
    what = f"a {found} file" if found else "not a recognised audio file"
    raise UnsupportedAudioFormatError(f"{name}: {what}, not WAV (RIFF/WAVE). {_ways_out(example)}")


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
            valid WAV file (e.g. truncated); bytes of another format (FLAC,
            MP3, OGG) get a message naming it and how to decode or convert it.

    Example:

    >>> wav = tf.audio.encode_wav(tf.zeros((16000, 2)), 16000)
    >>> decode_wav(wav, 8000, 4000).shape
    TensorShape([4000])
    """
    sampling_rate = check.positive_int("sampling_rate", sampling_rate)
    num_samples = check.positive_int("num_samples", num_samples)
    with tf.control_dependencies([_assert_wav(contents)]):
        waveform, rate = tf.audio.decode_wav(contents)
    waveform = resample(mono(waveform), rate, sampling_rate)
    return fit_length(waveform, num_samples, crop)


def _assert_wav(contents):
    """A graph assertion that ``contents`` starts like a WAV file, naming the format it looks like."""
    head = tf.strings.substr(tf.strings.join([contents, tf.constant(bytes(12))]), 0, 12)
    is_wav = tf.logical_and(
        tf.equal(tf.strings.substr(head, 0, 4), "RIFF"), tf.equal(tf.strings.substr(head, 8, 4), "WAVE")
    )
    found = tf.constant("bytes of an unknown format")
    for name, magics in reversed(_FORMAT_MAGIC):
        matches = tf.reduce_any([tf.equal(tf.strings.substr(head, 0, len(m)), m) for m in magics])
        found = tf.where(matches, f"{name} audio", found)
    message = tf.strings.join(["Expected a WAV file (RIFF/WAVE) but found ", found, ". ",
                               _ways_out()])
    return tf.debugging.Assert(is_wav, [message])


def _tfio_audio():
    """Imports tensorflow-io and checks that its native audio ops load.

    Returns:
        ``(tfio_audio_module, None)`` or ``(None, reason)``.
    """
    try:
        import tensorflow_io as tfio  # optional dependency  # noqa: PLC0415
    except Exception as error:
        return None, f"tensorflow-io is not importable ({type(error).__name__}: {error})"
    try:
        # A tiny WAV through a native op: fails with an undefined symbol when the
        # installed TensorFlow is newer than the one tensorflow-io was built for.
        tfio.audio.decode_wav(tf.audio.encode_wav(tf.zeros((4, 1)), 8000), dtype=tf.int16)
    except Exception as error:
        return None, f"tensorflow-io's native ops do not load ({type(error).__name__}: {str(error)[:200]})"
    return tfio.audio, None


def compressed_audio_decoder(extension, name=None):
    """Returns a graph function ``bytes -> (waveform (T, C) float32, rate)`` for
    FLAC, MP3 or OGG, or raises a clear error when it cannot work here.

    Args:
        extension: ``".flac"``, ``".mp3"`` or ``".ogg"``.
        name: A file of that type, named in the error (e.g. the first row's path).

    Returns:
        A function usable inside ``Dataset.map``.

    Raises:
        UnsupportedAudioFormatError: If tensorflow-io is missing or its ops do
            not load with this TensorFlow, or the extension is unknown.

    Example:

    >>> from mmzoo.data import audio
    >>> decode = audio.compressed_audio_decoder(".flac", "clips/a.flac")  # TensorFlow 2.21
    Traceback (most recent call last):
    ...
    mmzoo.data.audio.UnsupportedAudioFormatError: clips/a.flac: decoding .flac files needs tensorflow-io...
    """
    extension = extension.lower()
    if extension not in COMPRESSED_EXTENSIONS:
        raise UnsupportedAudioFormatError(
            f"{name + ': ' if name else ''}Unsupported audio file type {extension!r}; supported: "
            f"{list(WAV_EXTENSIONS + COMPRESSED_EXTENSIONS)}."
        )
    tfio_audio, reason = _tfio_audio()
    if tfio_audio is None:
        example = name or f"clip{extension}"
        stem = os.path.splitext(os.path.basename(example))[0]
        raise UnsupportedAudioFormatError(
            f"{name or extension[1:].upper() + ' audio'}: decoding {extension} files needs tensorflow-io "
            f"(`{CODECS_INSTALL}`), whose native ops load only with TensorFlow {TFIO_SUPPORTED_TF}; this is "
            f"TensorFlow {tf.__version__} and {reason}. WAV files always work (core tf.audio.decode_wav): "
            f"convert with e.g. `ffmpeg -i {example} {stem}.wav`."
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
        path_or_extension: A file path (named in errors) or an extension
            such as ``".wav"``.
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

    >>> from mmzoo.data import audio
    >>> decode = audio.audio_decoder(".wav", 8000, 4000)
    """
    path = os.fspath(path_or_extension)
    extension = os.path.splitext(path)[1].lower() or path.lower()
    if extension in WAV_EXTENSIONS:
        return lambda contents: decode_wav(contents, sampling_rate, num_samples, crop)
    decode = compressed_audio_decoder(extension, name=path if path.lower() != extension else None)
    if source_rate is None:
        raise ValueError(f"`source_rate` is required to decode {extension} files. Received: source_rate=None")

    def decode_compressed(contents):
        waveform = resample(mono(decode(contents)), source_rate, sampling_rate)
        return fit_length(waveform, num_samples, crop)

    return decode_compressed
