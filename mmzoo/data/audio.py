"""Audio decoding inside ``tf.data``: WAV bytes -> float32 mono waveform of a
fixed length at the model's sample rate.

WAV is read by ``read_wav`` (RIFF chunks walked in TensorFlow ops, header
checked before any sample is decoded, only the needed window decoded) and
always works. FLAC,
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
from mmzoo.data import header_bytes

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


# Limits of the WAV header, checked before any sample is decoded.
MIN_SAMPLING_RATE = 1000
MAX_SAMPLING_RATE = 384000
MAX_CHANNELS = 8
MAX_CHUNKS = 64  # chunks walked to find "fmt " and "data" (LIST/INFO/cue chunks come before "data" in the wild)
# PCM 8-bit unsigned, 16/24/32-bit signed little-endian; IEEE float 32/64 (format 1, 3, or 0xFFFE extensible).
WAV_FORMATS = "8-, 16-, 24- and 32-bit PCM, 32- and 64-bit float"


def _u32(contents, offset):
    return header_bytes.little_endian(header_bytes.field_bytes(contents, offset, 4))


def _wav_layout(contents):
    """Walks the RIFF chunks: ``(fmt offset, fmt size, data offset, data size)``, -1 where absent.

    Element-wise over a scalar or a batch of WAV bytes.
    """
    length = tf.cast(tf.strings.length(contents), tf.int64)
    # Most files are canonical ("fmt " at byte 12, "data" right after it): read without the chunk loop.
    fmt_size_12 = _u32(contents, tf.fill(tf.shape(length), tf.constant(16, tf.int64)))
    data_at = 20 + tf.minimum(fmt_size_12, 40)
    canonical = tf.logical_and(
        tf.logical_and(tf.equal(header_bytes.tag(contents, tf.fill(tf.shape(length), tf.constant(12, tf.int64))),
                                b"fmt "), fmt_size_12 <= 40),
        tf.equal(header_bytes.tag(contents, data_at), b"data"))
    minus = -tf.ones_like(length)
    fast = (tf.where(canonical, tf.constant(20, tf.int64), minus), tf.where(canonical, fmt_size_12, minus),
            tf.where(canonical, data_at + 8, minus), tf.where(canonical, _u32(contents, data_at + 4), minus))

    def searching(offset, fmt, data):
        return tf.logical_and(offset + 8 <= length, tf.logical_or(fmt < 0, data < 0))

    def body(i, offset, fmt, fmt_size, data, data_size):
        chunk = header_bytes.tag(contents, offset)
        size = _u32(contents, offset + 4)
        live = searching(offset, fmt, data)
        is_fmt = tf.logical_and(live, tf.logical_and(tf.equal(chunk, b"fmt "), fmt < 0))
        is_data = tf.logical_and(live, tf.logical_and(tf.equal(chunk, b"data"), data < 0))
        fmt, fmt_size = tf.where(is_fmt, offset + 8, fmt), tf.where(is_fmt, size, fmt_size)
        data, data_size = tf.where(is_data, offset + 8, data), tf.where(is_data, size, data_size)
        return i + 1, tf.where(live, offset + 8 + size + size % 2, offset), fmt, fmt_size, data, data_size

    def cond(i, offset, fmt, fmt_size, data, data_size):
        return tf.logical_and(i < MAX_CHUNKS, tf.reduce_any(searching(offset, fmt, data)))

    def walk():  # the chunk loop, for the files that are not canonical (all of a batch at once)
        offset = tf.where(canonical, length, tf.fill(tf.shape(length), tf.constant(12, tf.int64)))  # done: no step
        return tuple(tf.while_loop(cond, body, (tf.constant(0), offset, *fast))[2:])

    fmt, fmt_size, data, data_size = tf.cond(tf.reduce_all(canonical), lambda: fast, walk)
    # A streamed recording leaves the data size at 0 or 0xFFFFFFFF: its data runs to the end of the file.
    streamed = tf.logical_and(data >= 0, tf.logical_or(tf.equal(data_size, 0), tf.equal(data_size, 0xFFFFFFFF)))
    data_size = tf.where(streamed, length - data, data_size)
    return fmt, fmt_size, data, data_size, length - data


def wav_info(contents):
    """The header of WAV bytes, read without decoding a sample.

    Element-wise: ``contents`` is a scalar or a batch (serving checks a
    whole request's headers in one go, outside its per-example loop).

    Args:
        contents: A ``tf.string`` scalar or vector.

    Returns:
        A dict of int64 tensors of ``contents``' shape: ``format`` (1 PCM,
        3 float; the sub-format of an extensible header), ``channels``,
        ``sampling_rate``, ``bits_per_sample``, ``frames`` (samples per
        channel in the data chunk), ``data_offset``, ``missing_bytes`` (how
        much of the data the header announces is not in the bytes: a
        truncated file); ``-1``/``0`` where the header lacks them.

    Example:

    >>> info = wav_info(tf.audio.encode_wav(tf.zeros((800, 2)), 8000))
    >>> {k: int(v) for k, v in info.items() if k not in ("data_offset", "missing_bytes")}
    {'format': 1, 'channels': 2, 'sampling_rate': 8000, 'bits_per_sample': 16, 'frames': 800}
    """
    fmt, fmt_size, data, data_size, remaining = _wav_layout(contents)
    header = header_bytes.field_bytes(contents, fmt, 26)  # the fmt chunk's fields, read at once

    def field(first, last):
        return header_bytes.little_endian(header[..., first:last])

    audio_format = field(0, 2)
    audio_format = tf.where(tf.logical_and(tf.equal(audio_format, 0xFFFE), fmt_size >= 26), field(24, 26),
                            audio_format)
    channels, bits = field(2, 4), field(14, 16)
    block = channels * ((bits + 7) // 8)
    frames = tf.where(tf.logical_and(data >= 0, block > 0), data_size // tf.maximum(block, 1), 0)
    found = fmt >= 0
    return {"format": tf.where(found, audio_format, -1), "channels": tf.where(found, channels, 0),
            "sampling_rate": tf.where(found, field(4, 8), 0),
            "bits_per_sample": tf.where(found, bits, 0), "frames": frames, "data_offset": data,
            "missing_bytes": tf.where(data >= 0, tf.maximum(data_size - remaining, 0), 0)}


def _samples(raw, audio_format, bits):
    """Little-endian sample bytes -> float32 in [-1, 1]."""

    def pcm8():
        return (tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.float32) - 128.0) / 128.0

    def pcm16():
        return tf.cast(tf.io.decode_raw(raw, tf.int16), tf.float32) / 32768.0

    def pcm24():
        b = tf.reshape(tf.cast(tf.io.decode_raw(raw, tf.uint8), tf.int32), [-1, 3])
        value = b[:, 0] + b[:, 1] * 256 + b[:, 2] * 65536
        value = tf.where(value >= 2 ** 23, value - 2 ** 24, value)
        return tf.cast(value, tf.float32) / float(2 ** 23)

    def pcm32():
        return tf.cast(tf.io.decode_raw(raw, tf.int32), tf.float32) / float(2 ** 31)

    def float32():
        return tf.io.decode_raw(raw, tf.float32)

    def float64():
        return tf.cast(tf.io.decode_raw(raw, tf.float64), tf.float32)

    kind = tf.constant(5)  # 64-bit float, or a format read_wav has refused before any sample is decoded
    for index, (tag, width) in enumerate(((1, 8), (1, 16), (1, 24), (1, 32), (3, 32))):
        kind = tf.where(tf.logical_and(tf.equal(audio_format, tag), tf.equal(bits, width)), index, kind)
    return tf.switch_case(kind, [pcm8, pcm16, pcm24, pcm32, float32, float64])


def read_wav(contents, name="audio", start=None, frames=None, max_channels=MAX_CHANNELS,
             min_sampling_rate=MIN_SAMPLING_RATE, max_sampling_rate=MAX_SAMPLING_RATE, info=None):
    """Decodes WAV bytes after checking the header; only the frames asked for are decoded.

    ``tf.audio.decode_wav`` reads 16-bit PCM only, decodes a whole file, and
    on some malformed files raises a ``UnicodeDecodeError`` instead of an
    ``InvalidArgumentError``. This reader walks the RIFF chunks itself,
    checks the format, channel count, sample rate and length from the header,
    and decodes only ``frames`` frames from ``start`` (a 10-minute recording
    costs what its 0.5-second window costs).

    Args:
        contents: A scalar ``tf.string`` of WAV bytes.
        name: The input or column named in errors (a string or a scalar
            string tensor such as ``"input `audio`, example 3"``).
        start: First frame to decode (int64 scalar; ``None``: 0). Past the
            end gives no frames.
        frames: Most frames to decode (``None``: all).
        max_channels: Most channels accepted.
        min_sampling_rate: Lowest sample rate accepted (Hz).
        max_sampling_rate: Highest sample rate accepted (Hz).
        info: ``wav_info(contents)`` when the caller has read it already.

    Returns:
        ``(waveform, sampling_rate)``: float32 ``(frames, channels)`` in
        [-1, 1] and the file's rate (int64 scalar).

    Raises:
        tf.errors.InvalidArgumentError: At run time, for bytes that are not
            RIFF/WAVE, a missing ``fmt``/``data`` chunk, an unsupported
            sample format (supported: 8-, 16-, 24- and 32-bit PCM, 32- and
            64-bit float), a channel count or sample rate out of range, or no
            samples; the message names ``name`` and the reason.

    Example:

    >>> waveform, rate = read_wav(tf.audio.encode_wav(tf.zeros((800, 2)), 8000), frames=100)
    >>> waveform.shape, int(rate)
    (TensorShape([100, 2]), 8000)
    """
    info = wav_info(contents) if info is None else info
    checks = wav_checks(contents, info, name, max_channels=max_channels, min_sampling_rate=min_sampling_rate,
                        max_sampling_rate=max_sampling_rate)
    with tf.control_dependencies(checks):
        first = tf.constant(0, tf.int64) if start is None else tf.clip_by_value(tf.cast(start, tf.int64), 0,
                                                                                 info["frames"])
        count = info["frames"] - first
        if frames is not None:
            count = tf.minimum(count, tf.cast(frames, tf.int64))
        waveform = decode_frames(contents, info, first, count)
    return waveform, info["sampling_rate"]


def wav_checks(contents, info, name="audio", skip=None, max_channels=MAX_CHANNELS,
               min_sampling_rate=MIN_SAMPLING_RATE, max_sampling_rate=MAX_SAMPLING_RATE):
    """The assertions ``read_wav`` makes on WAV bytes and their ``wav_info``, for one file or a batch.

    Args:
        contents: A ``tf.string`` scalar, or a batch ``(n,)``.
        info: ``wav_info(contents)``.
        name: Named in errors: for one file a string or ``(prefix, index)``
            (see ``named_message``); for a batch the prefix, e.g.
            ``"serving input `audio`, example"``, followed by the index of
            the first bad example.
        skip: For a batch, an optional bool ``(n,)`` of examples not to
            check (absent inputs).
        max_channels: Most channels accepted.
        min_sampling_rate: Lowest sample rate accepted (Hz).
        max_sampling_rate: Highest sample rate accepted (Hz).

    Returns:
        A list of assertion ops (use as control dependencies).
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    audio_format, bits, channels, rate = (info["format"], info["bits_per_sample"], info["channels"],
                                          info["sampling_rate"])
    bits_in = tf.expand_dims(bits, -1)
    supported = tf.logical_or(
        tf.logical_and(tf.equal(audio_format, 1), tf.reduce_any(tf.equal(bits_in, [8, 16, 24, 32]), axis=-1)),
        tf.logical_and(tf.equal(audio_format, 3), tf.reduce_any(tf.equal(bits_in, [32, 64]), axis=-1)))
    is_wav, found = _wav_magic(contents)
    checks = [
        (is_wav, found, "expected a WAV file (RIFF/WAVE) but found "),
        (info["data_offset"] >= 0, None, "invalid WAV: no fmt and data chunks (not a complete WAV file)"),
        (supported, None, f"invalid WAV: unsupported sample format (supported: {WAV_FORMATS}); format tag, bits "
                          "per sample:", audio_format, bits),
        (tf.logical_and(channels >= 1, channels <= max_channels), None,
         f"invalid WAV: channels must be 1-{max_channels}; got", channels),
        (tf.logical_and(rate >= min_sampling_rate, rate <= max_sampling_rate), None,
         f"invalid WAV: sample rate must be {min_sampling_rate}-{max_sampling_rate} Hz; the header says", rate),
        (tf.equal(info["missing_bytes"], 0), None, "invalid WAV: truncated: bytes missing from the data chunk:",
         info["missing_bytes"]),
        (info["frames"] > 0, None, "invalid WAV: no samples (an empty recording)"),
    ]
    batch = contents.shape.rank == 1
    ops = []
    for ok, found_text, reason, *values in checks:
        where = name
        if batch:
            if skip is not None:
                ok = tf.logical_or(ok, skip)
            index = tf.argmin(tf.cast(ok, tf.int32), output_type=tf.int32)  # the first bad example
            where = (name, index)
            values = [tf.gather(v, index) for v in values]
            found_text = None if found_text is None else tf.gather(found_text, index)
            ok = tf.reduce_all(ok)
        message = named_message(where, f": {reason}")
        if found_text is not None:  # the format the bytes look like, and the ways out
            message = [*message[:-1], tf.strings.join([message[-1], found_text, ". ", _ways_out()])]
        ops.append(tf.debugging.Assert(ok, [*message, *values], name="check_wav"))
    return ops


def decode_frames(contents, info, first, count):
    """``count`` frames from frame ``first`` of checked WAV bytes (one file): float32 ``(count, channels)``."""
    bits, channels = info["bits_per_sample"], info["channels"]
    block = channels * tf.maximum((bits + 7) // 8, 1)
    raw = tf.strings.substr(contents, info["data_offset"] + first * block, count * block)
    samples = _samples(raw, info["format"], bits)
    return tf.reshape(samples, [-1, tf.cast(tf.maximum(channels, 1), tf.int32)])


def named_message(name, text):
    """Assertion data naming the input: ``[name + text]``, or ``[prefix, index, text]`` for a tuple ``name``.

    ``name`` is a string, or ``(prefix, index)`` with an int tensor ``index``
    (serving's ``("serving input `audio`, example", i)``): the index is then
    printed as its own item, so no string is built per example unless the
    check fails.
    """
    if isinstance(name, tuple):
        return [name[0], name[1], text]
    return [f"{name}{text}"]


def decode_wav(contents, sampling_rate, num_samples, crop="start", name="audio"):
    """Decodes WAV bytes to a mono waveform at ``sampling_rate``, fixed length.

    The header is checked first (``read_wav``) and only the window the
    output needs is decoded and resampled: the crop is placed in the file's
    own frames, so a long recording costs what its window costs.

    Args:
        contents: A scalar ``tf.string`` holding a WAV file (8-, 16-, 24- or
            32-bit PCM, 32- or 64-bit float; any channel count up to
            ``MAX_CHANNELS``, any rate in ``[MIN_SAMPLING_RATE,
            MAX_SAMPLING_RATE]``).
        sampling_rate: Output sample rate; other rates are resampled.
        num_samples: Output length (crop or zero-pad at the end).
        crop: ``"start"``, ``"center"`` or ``"end"`` (see ``fit_length``).
        name: The input or column named in errors.

    Returns:
        float32 ``(num_samples,)`` in [-1, 1].

    Raises:
        ValueError: If an argument is invalid.
        tf.errors.InvalidArgumentError: At run time, if the bytes are not a
            valid WAV file (truncated, unsupported format, no samples, a rate
            or channel count out of range, or all samples zero); bytes of
            another format (FLAC, MP3, OGG) get a message naming it and how
            to decode or convert it. The message names ``name``.

    Example:

    >>> wav = tf.audio.encode_wav(tf.zeros((16000, 2)) + 0.1, 16000)
    >>> decode_wav(wav, 8000, 4000).shape
    TensorShape([4000])
    """
    sampling_rate = check.positive_int("sampling_rate", sampling_rate)
    num_samples = check.positive_int("num_samples", num_samples)
    check.choice("crop", crop, set(CROP_MODES))
    info = wav_info(contents)
    with tf.control_dependencies(wav_checks(contents, info, name)):
        return decode_checked_wav(contents, info, sampling_rate, num_samples, crop, name)


def decode_checked_wav(contents, info, sampling_rate, num_samples, crop="start", name="audio"):
    """``decode_wav`` after the header checks: for bytes whose ``wav_checks`` have run (one file).

    Serving checks a request's headers as a batch (``wav_checks`` on the
    whole batch) and decodes each file with this.

    Args:
        contents: A scalar ``tf.string`` of WAV bytes.
        info: ``wav_info(contents)``.
        sampling_rate: Output sample rate.
        num_samples: Output length.
        crop: ``"start"``, ``"center"`` or ``"end"``.
        name: Named in the error for an all-zero window.

    Returns:
        float32 ``(num_samples,)``.
    """
    start, count = crop_window(info, sampling_rate, num_samples, crop)
    waveform = mono(decode_frames(contents, info, start, count))
    with tf.control_dependencies([assert_not_silent(waveform, name)]):
        waveform = resample(waveform, info["sampling_rate"], sampling_rate)
    return fit_length(waveform, num_samples, "start")


def crop_window(info, sampling_rate, num_samples, crop="start"):
    """``(start, count)``: the file frames that give ``num_samples`` outputs at ``sampling_rate`` (element-wise)."""
    rate, frames = tf.maximum(info["sampling_rate"], 1), info["frames"]
    out_total = (frames * sampling_rate + rate // 2) // rate
    extra = tf.maximum(out_total - num_samples, 0)
    out_offset = {"start": tf.zeros_like(extra), "center": extra // 2, "end": extra}[crop]
    window = (num_samples * rate + sampling_rate - 1) // sampling_rate  # source frames for num_samples outputs
    start = tf.clip_by_value((out_offset * rate) // sampling_rate, 0, tf.maximum(frames - window, 0))
    return start, tf.maximum(tf.minimum(window, frames - start), 0)


def decode_checked_batch(contents, info, start, count, sampling_rate, num_samples, finish, decode_one, name,
                         skip=None):
    """Decodes a batch of WAV files whose ``wav_checks`` have run, at once when it can.

    When every present file is 16-bit PCM at ``sampling_rate`` with one
    channel count (a typical request), the windows are decoded as one
    ``(n, max(count))`` batch, zero past each file's ``count``, and handed to
    ``finish(windows, count)``. Otherwise each file goes through
    ``decode_one(contents, info, index)`` in a ``tf.map_fn``. Both give the
    same values.

    Args:
        contents: ``tf.string`` ``(n,)``.
        info: ``wav_info(contents)``.
        start: int64 ``(n,)``: each file's first frame to decode.
        count: int64 ``(n,)``: frames to decode.
        sampling_rate: The model's sample rate.
        num_samples: The model's waveform length.
        finish: ``(windows float32 (n, w), count) -> (n, num_samples)``.
        decode_one: ``(contents, info, index) -> (num_samples,)`` for one file.
        name: The error prefix, followed by the first bad example's index.
        skip: Optional bool ``(n,)``: absent examples (their rows are zeros).

    Returns:
        float32 ``(n, num_samples)``.
    """
    present = tf.ones_like(contents, tf.bool) if skip is None else tf.logical_not(skip)
    first_present = tf.argmax(tf.cast(present, tf.int32), output_type=tf.int32)
    channels = tf.gather(info["channels"], first_present)
    uniform = tf.reduce_all(tf.logical_or(tf.logical_not(present), tf.reduce_all(tf.stack([
        tf.equal(info["format"], 1), tf.equal(info["bits_per_sample"], 16),
        tf.equal(info["sampling_rate"], sampling_rate), tf.equal(info["channels"], channels)]), axis=0)))

    def batched():
        block = 2 * tf.maximum(channels, 1)  # all absent: no channel count, nothing decoded
        frames = tf.where(present, count, 0)
        offset = tf.where(present, info["data_offset"] + start * block, 0)
        raw = tf.strings.substr(contents, offset, frames * block)
        width = tf.maximum(tf.reduce_max(frames), 1) * block
        samples = tf.cast(tf.io.decode_raw(raw, tf.int16, fixed_length=tf.cast(width, tf.int32)), tf.float32) / 32768.0
        windows = tf.reduce_mean(tf.reshape(samples, [tf.shape(contents)[0], -1, tf.cast(block // 2, tf.int32)]), -1)
        sound = tf.logical_or(tf.reduce_any(tf.not_equal(windows, 0.0), axis=1), tf.logical_not(present))
        index = tf.argmin(tf.cast(sound, tf.int32), output_type=tf.int32)
        silent = tf.debugging.Assert(tf.reduce_all(sound), named_message(
            (name, index), ": invalid WAV: every sample is zero (a silent recording)"), name="check_not_silent")
        with tf.control_dependencies([silent]):
            return finish(windows, frames)

    def one_by_one():
        def decode(element):
            index, b, file_info = element
            if skip is None:
                return decode_one(b, file_info, index)
            return tf.cond(tf.equal(b, ""), lambda: tf.zeros(num_samples, tf.float32),
                           lambda: decode_one(b, file_info, index))

        return tf.map_fn(decode, (tf.range(tf.shape(contents)[0]), contents, info),
                         fn_output_signature=tf.TensorSpec((num_samples,), tf.float32), parallel_iterations=32)

    return tf.ensure_shape(tf.cond(uniform, batched, one_by_one), (None, num_samples))


def assert_not_silent(waveform, name="audio"):
    """A graph assertion that a decoded waveform has a non-zero sample; ``name`` is named in the error."""
    return tf.debugging.Assert(
        tf.reduce_any(tf.not_equal(waveform, 0.0)),
        named_message(name, ": invalid WAV: every sample is zero (a silent recording)"),
        name="check_not_silent")


def _wav_magic(contents):
    """``(is_wav, found)``: whether the bytes start like a WAV file and, element-wise, the format they look like."""
    head = tf.strings.substr(contents, 0, 12)  # shorter for a shorter string: the comparisons then fail
    is_wav = tf.logical_and(
        tf.equal(tf.strings.substr(head, 0, 4), "RIFF"), tf.equal(header_bytes.tag(head, tf.zeros_like(
            tf.strings.length(head), tf.int64) + 8), "WAVE")
    )
    found = tf.fill(tf.shape(is_wav), "bytes of an unknown format")
    for kind, magics in reversed(_FORMAT_MAGIC):
        matches = tf.reduce_any(tf.stack([tf.equal(tf.strings.substr(head, 0, len(m)), m) for m in magics]), axis=0)
        found = tf.where(matches, f"{kind} audio", found)
    return is_wav, found


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


def audio_decoder(path_or_extension, sampling_rate, num_samples, crop="start", source_rate=None, name="audio"):
    """Picks the decoder for a file type: ``bytes -> (num_samples,) float32``.

    Args:
        path_or_extension: A file path (named in errors) or an extension
            such as ``".wav"``.
        sampling_rate: Output sample rate.
        num_samples: Output length.
        crop: ``"start"``, ``"center"`` or ``"end"``.
        source_rate: Sample rate of compressed files (their decoders do not
            report it); required for FLAC/MP3/OGG.
        name: The column named in WAV errors.

    Returns:
        A function usable inside ``Dataset.map``: ``decode(contents,
        name=name)``.

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
        return lambda contents, name=name: decode_wav(contents, sampling_rate, num_samples, crop, name=name)
    decode = compressed_audio_decoder(extension, name=path if path.lower() != extension else None)
    if source_rate is None:
        raise ValueError(f"`source_rate` is required to decode {extension} files. Received: source_rate=None")

    def decode_compressed(contents, name=name):
        waveform = resample(mono(decode(contents)), source_rate, sampling_rate)
        return fit_length(waveform, num_samples, crop)

    return decode_compressed
