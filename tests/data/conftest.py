"""Shared fixtures of the mmzoo.data tests: the real data folder and small written files."""

import os
import wave
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir():
    """``$MMZOO_DATA`` or the ``shared/data`` folder beside the repository."""
    return Path(os.environ.get("MMZOO_DATA") or (REPO_ROOT / ".." / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_dir():
    path = shared_data_dir()
    assert path.is_dir(), f"The shared data folder is missing: {path}"
    return path


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
