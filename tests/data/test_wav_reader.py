"""read_wav / decode_wav: every PCM width and float, named refusals, bounded work on long files."""

import re
import struct

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import AudioColumn, audio
from mmzoo.serving import raw
from mmzoo.serving.audio import FittedAudioColumn


def _wav(samples, rate=8000, bits=16, tag=1, channels=1, extra_chunks=b"", data_size=None, extensible=False):
    """WAV bytes written by hand (tf.audio.encode_wav writes 16-bit PCM only)."""
    samples = np.asarray(samples, np.float64).reshape(-1, channels) if len(samples) else np.zeros((0, channels))
    if tag == 3:
        body = samples.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif bits == 8:
        body = np.clip(np.round(samples * 128 + 128), 0, 255).astype("u1").tobytes()
    elif bits == 24:
        ints = np.clip(np.round(samples * 2 ** 23), -2 ** 23, 2 ** 23 - 1).astype("<i4")
        body = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.ravel())
    else:
        ints = np.clip(np.round(samples * 2 ** (bits - 1)), -2 ** (bits - 1), 2 ** (bits - 1) - 1)
        body = ints.astype({16: "<i2", 32: "<i4"}[bits]).tobytes()
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    chunks += b"data" + struct.pack("<I", len(body) if data_size is None else data_size) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _tone(n=4000, rate=8000):
    return 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)


@pytest.mark.parametrize("bits, tag, atol", [(8, 1, 1 / 100), (16, 1, 1e-4), (24, 1, 1e-6), (32, 1, 1e-6),
                                             (32, 3, 1e-7), (64, 3, 1e-7)])
def test_every_pcm_width_and_float_decodes_to_the_same_waveform(bits, tag, atol):
    tone = _tone()
    out = audio.decode_wav(tf.constant(_wav(tone, bits=bits, tag=tag)), 8000, 4000).numpy()
    np.testing.assert_allclose(out, tone, atol=atol)
    extensible = audio.decode_wav(tf.constant(_wav(tone, bits=bits, tag=tag, extensible=True)), 8000, 4000)
    np.testing.assert_allclose(extensible.numpy(), out, atol=0)


def test_chunks_before_data_and_stereo_are_read():
    tone = _tone(2000)
    stereo = np.stack([tone, -tone * 0.5], axis=1).ravel()
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # odd size: padded to even
    contents = _wav(stereo, channels=2, extra_chunks=listing)
    waveform, rate = audio.read_wav(tf.constant(contents))
    assert int(rate) == 8000 and waveform.shape == (2000, 2)
    np.testing.assert_allclose(waveform.numpy()[:, 1], -tone * 0.5, atol=1e-4)


def test_streamed_data_size_reads_to_the_end_of_the_file():
    tone = _tone(1000)
    for size in (0, 0xFFFFFFFF):
        waveform, _ = audio.read_wav(tf.constant(_wav(tone, data_size=size)))
        np.testing.assert_allclose(waveform.numpy()[:, 0], tone, atol=1e-4)


def test_a_long_recording_is_cropped_before_it_is_decoded():
    """Only the window the model reads is decoded: a 10-minute file gives its first half second's answer."""
    rate = 44100
    rng = np.random.RandomState(0)
    minutes = rng.uniform(-0.5, 0.5, (rate * 600, 2)).astype(np.float32)
    head = minutes[: rate]  # the first second holds every frame the window needs
    long_out = audio.decode_wav(tf.constant(_wav(minutes.ravel(), rate=rate, channels=2)), 8000, 4000)
    head_out = audio.decode_wav(tf.constant(_wav(head.ravel(), rate=rate, channels=2)), 8000, 4000)
    np.testing.assert_array_equal(long_out.numpy(), head_out.numpy())
    end = audio.decode_wav(tf.constant(_wav(minutes.ravel(), rate=rate, channels=2)), 8000, 4000, crop="end")
    tail = audio.decode_wav(tf.constant(_wav(minutes[-rate:].ravel(), rate=rate, channels=2)), 8000, 4000,
                            crop="end")
    np.testing.assert_allclose(end.numpy(), tail.numpy(), atol=1e-5)


BAD = {
    # tf.audio.decode_wav raises UnicodeDecodeError on these bytes (its message holds them)
    "header then garbage": (b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(255, -1, -1)) * 3, "no fmt and data chunks"),
    "no samples": (_wav([]), "no samples"),
    "silent": (_wav(np.zeros(800)), "every sample is zero"),
    "1 Hz": (_wav(_tone(100), rate=1), "sample rate must be 1000-384000 Hz"),
    "2e9 Hz": (_wav(_tone(100), rate=2_000_000_000), "sample rate must be"),
    "12-bit": (_wav(_tone(100), bits=16)[:34] + struct.pack("<H", 12) + _wav(_tone(100), bits=16)[36:],
               "unsupported sample format"),
    "A-law": (_wav(_tone(100), bits=8, tag=6), "unsupported sample format"),
    "too many channels": (_wav(np.tile(_tone(100), 16), channels=16), "channels must be 1-8"),
    "truncated": (_wav(_tone(1000))[:300], "truncated"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_wavs_are_refused_with_a_named_invalid_argument_error(case):
    contents, reason = BAD[case]
    column = AudioColumn("clip", 8000, 4000)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:  # never UnicodeDecodeError or another type
        column.decode_bytes(tf.constant(contents))
    message = str(error.value)
    assert "column `clip`: invalid WAV" in message and reason in message, message[:600]


def _serve(columns, strings):
    return raw.decode_all(columns, {"audio": tf.constant(strings)})["audio"].numpy()


def test_a_batch_checked_at_once_decodes_each_file_as_alone():
    """Serving checks a request's WAV headers as one batch; each file decodes exactly as on its own."""
    tone = _tone(6000)
    listing = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"
    files = [_wav(tone), _wav(tone, extra_chunks=listing), _wav(tone, bits=24, extensible=True),
             _wav(np.stack([tone, 0.5 * tone], 1).ravel(), channels=2, rate=16000), _wav(tone, data_size=0)]
    column = AudioColumn("audio", 8000, 4000, crop="center")
    served = _serve({"audio": column}, files)
    alone = np.stack([column.decode_bytes(tf.constant(f)).numpy() for f in files])
    np.testing.assert_array_equal(served, alone)


@pytest.mark.parametrize("case", ["truncated", "1 Hz", "no samples", "header then garbage", "silent"])
def test_a_bad_file_in_a_batch_is_named_by_its_index(case):
    contents, reason = BAD[case]
    good = _wav(_tone(4000))
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        _serve({"audio": AudioColumn("audio", 8000, 4000)}, [good, good, contents, good])
    message = str(error.value)
    # The index is an assertion item: printed after the prefix (on its own line when eager).
    assert re.search(r"serving input `audio`, example\W*2\W+(b')?: invalid WAV", message) and reason in message, message


@pytest.mark.parametrize("column", [AudioColumn("audio", 8000, 4000, crop="center"),
                                    AudioColumn("audio", 8000, 4000, crop="end"),
                                    FittedAudioColumn("audio", 8000, 4000)], ids=["center", "end", "av_digits"])
@pytest.mark.parametrize("channels", [1, 2])
def test_a_uniform_batch_decoded_at_once_equals_each_file_alone(column, channels):
    """16-bit files at the model's rate (a typical request) are decoded as one batch: same values as one by one."""
    rng = np.random.RandomState(0)
    files = []
    for n in (900, 4000, 6100, 12000):  # shorter and longer than the window; quiet lead-in for the onset trim
        tone = _tone(n) * np.r_[np.full(n // 4, 0.01), np.ones(n - n // 4)]
        files.append(_wav(np.repeat(tone, channels) * rng.uniform(0.5, 1.0, n * channels), channels=channels))
    served = _serve({"audio": column}, files)
    alone = np.stack([column.decode_bytes(tf.constant(f)).numpy() for f in files])
    np.testing.assert_allclose(served, alone, rtol=0, atol=1e-6)
