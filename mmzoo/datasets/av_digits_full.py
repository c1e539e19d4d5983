"""Full-size AV-digits from the raw files: FSDD recordings + MNIST ``t10k``.

Same recipe as the embedded copy (``mmzoo.datasets.av_digits_recipe``): FSDD index 0-4
is test and 5-49 train (2,250 train / 250 test pairs), MNIST split by index
parity, seeded pairing, the same waveform fitting and the same seeded
degradation. The arrays are built once per process and data folder.

``speaker_folds`` gives the leave-one-speaker-out splits of the same
recordings: how well a model does on a voice (and a microphone) it never
heard, which the official split, with every speaker on both sides, does not
show.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from mmzoo.data import paths
from mmzoo.datasets import av_digits_recipe as recipe

TRAIN_INDICES = range(5, 50)


@functools.lru_cache(maxsize=2)
def _clean_arrays(data_dir):
    fsdd = paths.require_path(data_dir, "fsdd", "recordings")
    mnist = paths.require_path(data_dir, "mnist")
    return recipe.build_arrays(fsdd, mnist, train_indices=TRAIN_INDICES)


def load_full_arrays(data_dir=None, degraded=True):
    """Builds the full-size AV-digits arrays as float32 model inputs.

    Args:
        data_dir: The shared data folder (argument, ``$MMZOO_DATA`` or
            ``../shared/data``) holding ``fsdd/recordings`` and ``mnist``.
        degraded: Apply the recipe's degradation (default).

    Returns:
        ``{"train": (inputs, labels), "test": (inputs, labels)}`` with
        ``inputs = {"image": (N, 28, 28, 1) float32 in [0, 1], "audio": (N,
        4000) float32}``, int32 labels, and ``ids`` (recording names) under
        ``"train_ids"`` / ``"test_ids"``.

    Raises:
        FileNotFoundError: If the folders are missing.

    Example:

    >>> arrays = load_full_arrays("/work/shared/data")
    >>> arrays["train"][0]["image"].shape
    (2250, 28, 28, 1)
    """
    data_dir = paths.resolve_data_dir(data_dir)
    clean = _clean_arrays(data_dir)
    out = {}
    for split in ("train", "test"):
        images = clean[f"{split}_images"].astype(np.float32)[..., None] / 255.0
        audio = clean[f"{split}_audio"].astype(np.float32)
        if degraded:
            images, audio = recipe.degrade(images, audio, split)
        out[split] = ({"image": images, "audio": audio}, clean[f"{split}_labels"].astype(np.int32))
        out[f"{split}_ids"] = clean[f"{split}_ids"]
    return out


@functools.lru_cache(maxsize=2)
def _recordings(data_dir):
    fsdd = paths.require_path(data_dir, "fsdd", "recordings")
    mnist = paths.require_path(data_dir, "mnist")
    names = sorted(f for f in os.listdir(fsdd) if f.endswith(".wav"))
    if not names:
        raise FileNotFoundError(f"No .wav recordings in FSDD folder: {fsdd}")
    parsed = [recipe.parse_fsdd_name(name) for name in names]
    audio = np.stack([recipe.fit_waveform(recipe.read_wav_int16(os.path.join(fsdd, n))[0]) for n in names])
    audio.setflags(write=False)
    mnist_images, mnist_labels = recipe.read_mnist(mnist)
    return {
        "ids": np.array(names),
        "labels": np.array([digit for digit, _, _ in parsed], np.uint8),
        "speakers": np.array([speaker for _, speaker, _ in parsed]),
        "audio": audio,
        "mnist_images": mnist_images,
        "mnist_labels": mnist_labels,
    }


def _speaker_fold(recordings, speaker, degraded):
    out = {}
    held_out = recordings["speakers"] == speaker
    for split, keep in (("train", ~held_out), ("test", held_out)):
        labels = recordings["labels"][keep]
        # The recipe's pairing: train pairs draw from the even MNIST indices, test pairs from the odd ones.
        mnist_labels = recordings["mnist_labels"]
        pool = np.arange(0 if split == "train" else 1, len(mnist_labels), 2)
        chosen = recipe.pair_images(labels, mnist_labels, pool, seed=recipe.PAIRING_SEED + (split == "test"))
        images = recordings["mnist_images"][chosen].astype(np.float32)[..., None] / 255.0
        audio = recordings["audio"][keep].astype(np.float32)
        if degraded:
            images, audio = recipe.degrade(images, audio, split)
        out[split] = ({"image": images, "audio": audio}, labels.astype(np.int32))
        out[f"{split}_ids"] = recordings["ids"][keep]
    return out


def speaker_folds(data_dir=None, degraded=True, speakers=None):
    """Leave-one-speaker-out AV-digits: for each FSDD speaker, train on the others, test on them.

    For each held-out speaker the test side holds all of that speaker's
    recordings (every index, 0-49: 500 for a speaker with 50 takes of each
    digit) and the train side all recordings of the other speakers, so no
    voice is on both sides. Everything else is the recipe's: the same
    waveform fitting, the same seeded pairing (train recordings get images
    from the even MNIST indices, test recordings from the odd ones, so no
    image is on both sides either) and, with ``degraded``, the same seeded
    degradation per side.

    Args:
        data_dir: The shared data folder (argument, ``$MMZOO_DATA`` or
            ``../shared/data``) holding ``fsdd/recordings`` and ``mnist``.
        degraded: Apply the recipe's degradation (default).
        speakers: The held-out speakers to yield (names as in the file
            names, e.g. ``("george",)``); ``None``: every speaker, sorted.

    Returns:
        An iterator of ``(speaker, arrays)``, one per held-out speaker, where
        ``arrays`` has the layout of ``load_full_arrays``:
        ``{"train": (inputs, labels), "test": (inputs, labels), "train_ids":
        ..., "test_ids": ...}``. Each fold is built when it is reached (the
        recordings are read once per process and data folder).

    Raises:
        FileNotFoundError: If the folders are missing.
        ValueError: If ``speakers`` names a speaker with no recordings.

    Example:

    >>> folds = speaker_folds("/work/shared/data", speakers=("george",))
    >>> speaker, arrays = next(folds)
    >>> speaker, len(arrays["train"][1]), len(arrays["test"][1])
    ('george', 2000, 500)
    """
    recordings = _recordings(paths.resolve_data_dir(data_dir))
    known = sorted(set(recordings["speakers"].tolist()))
    if speakers is None:
        chosen = known
    else:
        chosen = [speakers] if isinstance(speakers, str) else list(speakers)
        unknown = [s for s in chosen if s not in known]
        if not chosen or unknown:
            raise ValueError(
                f"`speakers` must name some of the FSDD speakers {known} (or be None). Received: speakers={speakers!r}"
            )
    return ((speaker, _speaker_fold(recordings, speaker, degraded)) for speaker in chosen)
