"""A fuzz corpus against serving_raw: each bad request is a named InvalidArgumentError; good ones still answer."""

import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import mmzoo

sys.path.insert(0, os.path.dirname(__file__))  # --import-mode=importlib: make the helper importable
import serving_fixtures as fx


def _wav_header(rate=8000, bits=16, channels=1, tag=1, frames=100):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (b"RIFF" + struct.pack("<I", 36 + frames * block) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", frames * block))


def _corpus(png, wav, png_bomb):
    rng = np.random.RandomState(0)
    noise = rng.bytes(2000)
    images = {
        "bomb 20000x20000": png_bomb(20000, 20000),
        "bomb 5000x5000": png_bomb(5000, 5000),
        "truncated png": png[: len(png) // 2],
        "png header only": png[:33],
        "random bytes": noise,
        "png magic then noise": b"\x89PNG\r\n\x1a\n" + noise,
        "jpeg magic then noise": b"\xff\xd8\xff\xe0" + noise,
        "gif magic only": b"GIF89a",
        "empty": b"",
    }
    audio = {
        "wav header then garbage": b"RIFF\x24\x00\x00\x00WAVE" + bytes(range(255, -1, -1)),
        "truncated wav": wav[: len(wav) // 3],
        "0 samples": _wav_header(frames=0),
        "silent": _wav_header(frames=800) + bytes(1600),
        "1 Hz": _wav_header(rate=1) + rng.bytes(200),
        "2e9 Hz": _wav_header(rate=2_000_000_000) + rng.bytes(200),
        "12-bit": _wav_header(bits=12) + rng.bytes(200),
        "mu-law": _wav_header(tag=7, bits=8) + rng.bytes(100),
        "random bytes": noise,
        "flac": b"fLaC" + noise,
        "empty": b"",
    }
    return images, audio


@pytest.fixture(scope="module")
def served():
    _, path = fx.av_digits_export()
    return mmzoo.load(path)


def test_every_fuzzed_file_is_a_named_invalid_argument_error(served, png_bomb):
    png, wav = fx.mnist_pngs(1)[0][0], Path(fx.fsdd_paths(1)[0]).read_bytes()
    images, audio = _corpus(png, wav, png_bomb)
    cases = [("image", name, {"image": [png, bad], "audio": [wav, wav]}) for name, bad in images.items()]
    cases += [("audio", name, {"image": [png, png], "audio": [wav, bad]}) for name, bad in audio.items()]
    for input_name, case, request in cases:
        try:
            served.predict_raw(request)
        except tf.errors.InvalidArgumentError as error:  # never another exception type
            assert f"serving input `{input_name}`" in str(error), (case, str(error)[:500])
        else:
            raise AssertionError(f"{case}: a bad {input_name} was served")
    good = served.predict_raw({"image": [png], "audio": [wav]})
    assert good["probabilities"].shape == (1, 10)


def test_on_error_skip_answers_the_good_examples_and_names_the_bad(served, png_bomb):
    pngs, _ = fx.mnist_pngs(3)
    wavs = [Path(p).read_bytes() for p in fx.fsdd_paths(3)]
    alone = served.predict_raw({"image": pngs, "audio": wavs})
    request = {"image": [pngs[0], png_bomb(20000, 20000), pngs[2], pngs[1]],
               "audio": [wavs[0], wavs[1], wavs[2], b"RIFF\x24\x00\x00\x00WAVE" + bytes(200)]}
    out = served.predict_raw(request, on_error="skip")
    assert out["indices"].tolist() == [0, 2]
    assert sorted(out["errors"]) == [1, 3]
    assert out["errors"][1].startswith("serving input `image`, example 1: image too large")
    assert out["errors"][3].startswith("serving input `audio`, example 3: invalid WAV")
    np.testing.assert_allclose(out["probabilities"], alone["probabilities"][[0, 2]], atol=1e-5)
    clean = served.predict_raw({"image": pngs, "audio": wavs}, on_error="skip")
    assert clean["errors"] == {} and clean["indices"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="on_error"):
        served.predict_raw({"image": pngs, "audio": wavs}, on_error="ignore")


def test_a_refused_request_leaves_no_chained_traceback_behind(served):
    """The error is one line with no chained TensorFlow error: refused requests leave nothing for the GC to find.

    A chained error holds TensorFlow's frames (and the request's tensors) in cycles that only Python's
    cyclic collector frees; under load with 10% bad requests that grew the RSS by ~1.4 MB per 1,000.
    """
    png = fx.mnist_pngs(1)[0][0]
    for audio in (b"RIFF\x24\x00\x00\x00WAVE" + bytes(200), b"not a wav"):
        with pytest.raises(tf.errors.InvalidArgumentError) as error:
            served.predict_raw({"image": [png], "audio": [audio]})
        assert error.value.__context__ is None and error.value.__cause__ is None
        assert "\n" not in str(error.value) and str(error.value).startswith("serving input `audio`")
