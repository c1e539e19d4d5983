"""Project-wide test fixtures: the shared real data and real batches for any model."""

import json
import os
import wave
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MMZOO_DATA") or (REPO_ROOT / ".." / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data():
    """The shared real data folder (``$MMZOO_DATA`` or ``../shared/data``)."""
    assert SHARED_DATA.is_dir(), f"The shared data folder is missing: {SHARED_DATA}"
    return SHARED_DATA


class RealData:
    """Real examples from ``../shared/data`` shaped to any model's inputs.

    Images are OpenMoji emoji (resized, channels adapted), texts their
    annotations (words hashed into ``[1, vocab)``), audio FSDD recordings
    (cropped/padded), labels the emoji group (mod the number of classes).
    """

    def __init__(self, root, n=64):
        import tensorflow as tf

        with open(root / "openmoji" / "openmoji.jsonl") as f:
            rows = [json.loads(line) for line in f][:n]
        self.n = len(rows)
        self.images = np.stack(
            [
                tf.io.decode_png(tf.io.read_file(str(root / "openmoji" / "images" / f"{r['hexcode']}.png")), 4)
                .numpy()
                .astype("float32")
                / 255.0
                for r in rows
            ]
        )
        alpha = self.images[..., 3:]
        self.images = self.images[..., :3] * alpha + (1 - alpha)  # composite on white
        self.texts = [r["annotation"] for r in rows]
        groups = sorted({r["group"] for r in rows})
        self.groups = np.array([groups.index(r["group"]) for r in rows])
        from mmzoo.datasets import av_digits_recipe as av_digits

        wavs = sorted((root / "fsdd" / "recordings").glob("*.wav"))[: self.n]
        self.waves = [av_digits.read_wav_int16(str(p))[0] for p in wavs]

    def image(self, shape):
        import tensorflow as tf

        h, w, c = shape
        x = tf.image.resize(self.images, (h, w)).numpy()
        return x.mean(-1, keepdims=True) if c == 1 else x[..., :c]

    def text(self, length, vocab=100):
        out = np.zeros((self.n, length), "int32")
        for i, t in enumerate(self.texts):
            ids = [1 + (sum(map(ord, word)) * 2654435761 % (vocab - 1)) for word in t.lower().split()]
            out[i, : min(length, len(ids))] = ids[:length]
        return out

    def audio(self, num_samples):
        out = np.zeros((self.n, num_samples), "float32")
        for i, samples in enumerate(self.waves):
            out[i, : min(num_samples, len(samples))] = samples[:num_samples]
        return out

    def inputs_for(self, model, vocab=100):
        """A dict of real inputs matching ``model.input``'s names and shapes."""
        from mmzoo.retrieval import DualEncoder

        if isinstance(model, DualEncoder):
            return {
                "image": self.image(model.image_encoder.input.shape[1:]),
                "text": self.text(model.text_encoder.input.shape[1], vocab),
            }
        out = {}
        for name, tensor in model.input.items():
            shape = tensor.shape[1:]
            if "int" in str(tensor.dtype):
                out[name] = self.text(shape[0], vocab)
            elif len(shape) == 3:
                out[name] = self.image(shape)
            else:
                out[name] = self.audio(shape[0])
        return out

    def labels_for(self, model):
        """Real labels shaped for ``model``'s head (``None`` for a dual encoder)."""
        from mmzoo.retrieval import DualEncoder

        if isinstance(model, DualEncoder):
            return None
        units = model.output.shape[-1]
        if units == 1:
            return (self.groups % 2).astype("float32")[:, None]
        return (self.groups % units).astype("int32")


@pytest.fixture(scope="session")
def real_data(shared_data):
    """A ``RealData`` of 64 real examples."""
    return RealData(shared_data)


@pytest.fixture(scope="session")
def data_dir(shared_data):
    """The shared real data folder (alias used by the data and dataset tests)."""
    return shared_data


def _write_wav(path, samples, rate, channels=1):
    """Writes float samples in [-1, 1] ((T,) or (T, channels)) as 16-bit PCM."""
    pcm = (np.clip(np.asarray(samples), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture
def write_wav():
    """``write_wav(path, samples, rate, channels=1)`` -> path."""
    return _write_wav


def _png_bomb(width, height):
    """A real PNG of width x height grey zeros: a few hundred KB that decode to width * height bytes."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def png_bomb():
    """``png_bomb(width, height)`` -> bytes of a real, highly compressed PNG (a decompression bomb when large)."""
    return _png_bomb


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clear Keras session: models of earlier tests in the same worker
    otherwise stay in Keras' global state and slow every later build and trace."""
    yield
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=False)  # no gc.collect: ~0.5 s a test
