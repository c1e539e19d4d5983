"""Ready datasets of real multimodal data, as ``tf.data`` pipelines.

Each loader returns ``(train_ds, test_ds)``: ``tf.data.Dataset``s of
``(inputs, label)`` where ``inputs`` is a dict keyed by modality name, the
model-input contract every zoo model follows.

* ``av_digits``: MNIST image + spoken digit -> digit (embedded copy, or full
  size from a data folder).
* ``emoji_groups``: OpenMoji image + annotation/tags text -> 11 groups.
* ``emoji_retrieval``: OpenMoji image <-> annotation pairs.

The full-size loaders read the shared data folder: the ``data_dir``
argument, else ``$MMZOO_DATA``, else ``../shared/data`` relative to the
working directory (see ``mmzoo.data.resolve_data_dir``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mmzoo.datasets import av_digits_recipe as _av_digits
from mmzoo.datasets.av_digits_full import load_full_arrays
from mmzoo.datasets.emoji import GROUPS, DatasetInfo, emoji_groups, emoji_retrieval, openmoji_manifests

__all__ = [
    "GROUPS",
    "DatasetInfo",
    "av_digits",
    "emoji_groups",
    "emoji_retrieval",
    "load_full_arrays",
    "openmoji_manifests",
]


def av_digits(
    batch_size=32, shuffle=True, seed=0, degraded=True, drop_remainder=False, data_dir=None, clean_train_copy=True,
    valid_fraction=0.0,
):
    """The AV-digits task: MNIST image + spoken digit -> digit (10 classes).

    With ``data_dir=None``, the embedded copy: 1,000 train and 250 test pairs
    of real data shipped inside the package (no download). With a data
    folder, the full size built from ``fsdd/recordings`` and ``mnist`` in it:
    2,250 train (FSDD index 5-49) and 250 test (index 0-4) pairs. See
    ``mmzoo.datasets.av_digits_recipe`` for the pairing, split and degradation recipe.

    The test split is degraded (the benchmark: each modality alone is weak).
    The train split holds each pair twice by default, degraded and clean, so
    a trained model also recognises clean real inputs (a PNG and a WAV served
    through ``serving_raw``); a model trained on degraded pairs alone scores
    0.38 on the clean test pairs.

    Args:
        batch_size: Examples per batch.
        shuffle: Shuffle the train split each epoch.
        seed: Shuffle seed (the data itself is always the same).
        degraded: Apply the recipe's noise/occlusion (default) so that fusion
            matters; ``False`` gives the clean pairs.
        drop_remainder: Drop the last partial batch (static shapes for TPU/XLA).
        clean_train_copy: With ``degraded``, add the clean version of every
            train pair to the train split (doubling it). ``False`` trains on
            the degraded pairs only.
        valid_fraction: With a value in (0, 1), a seeded, stratified share of
            the train pairs is held out as a validation split (degraded, like
            the test split; their clean copies leave train too) and three
            datasets are returned.
        data_dir: ``None`` for the embedded copy, or the shared data folder
            for the full size (``mmzoo.data.resolve_data_dir()`` finds it
            from ``$MMZOO_DATA`` or ``../shared/data``).

    Returns:
        ``(train_ds, test_ds)`` (``(train_ds, valid_ds, test_ds)`` with
        ``valid_fraction``), each yielding ``({"image": (B, 28, 28, 1)
        float32, "audio": (B, 4000) float32}, label int32 (B,))``.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.
        FileNotFoundError: If ``data_dir`` lacks the FSDD or MNIST files.

    Example:

    >>> import mmzoo
    >>> train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=64)
    >>> inputs, labels = next(iter(train_ds))
    >>> inputs["image"].shape, inputs["audio"].shape
    (TensorShape([64, 28, 28, 1]), TensorShape([64, 4000]))
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")

    def load(degraded):
        if data_dir is None:
            return _av_digits.load_arrays(degraded=degraded)
        return load_full_arrays(data_dir, degraded=degraded)

    arrays = load(degraded)
    splits = ("train", "test")
    if valid_fraction:
        from mmzoo.data.splits import stratified_split  # noqa: PLC0415

        if isinstance(valid_fraction, bool) or not 0 < valid_fraction < 1:
            raise ValueError(f"`valid_fraction` must be in (0, 1) or 0. Received: valid_fraction={valid_fraction!r}")
        inputs, labels = arrays["train"]
        keep, held_out = stratified_split(labels, valid_fraction, seed=seed)
        arrays["valid"] = ({k: v[held_out] for k, v in inputs.items()}, labels[held_out])
        arrays["train"] = ({k: v[keep] for k, v in inputs.items()}, labels[keep])
        splits = ("train", "valid", "test")
    if degraded and clean_train_copy:
        (inputs, labels), (clean_inputs, clean_labels) = arrays["train"], load(False)["train"]
        if valid_fraction:  # the clean copies of the held-out pairs stay out of train too
            clean_inputs, clean_labels = {k: v[keep] for k, v in clean_inputs.items()}, clean_labels[keep]
        arrays["train"] = (
            {k: np.concatenate([inputs[k], clean_inputs[k]]) for k in inputs},
            np.concatenate([labels, clean_labels]),
        )
    out = []
    for split in splits:
        inputs, labels = arrays[split]
        ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
        if split == "train" and shuffle:
            ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        out.append(ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE))
    return tuple(out)
