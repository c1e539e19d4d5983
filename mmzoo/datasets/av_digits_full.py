"""Full-size AV-digits from the raw files: FSDD recordings + MNIST ``t10k``.

Same recipe as the embedded copy (``mmzoo.datasets.av_digits_recipe``): FSDD index 0-4
is test and 5-49 train (2,250 train / 250 test pairs), MNIST split by index
parity, seeded pairing, the same waveform fitting and the same seeded
degradation. The arrays are built once per process and data folder.
"""

from __future__ import annotations

import functools

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
