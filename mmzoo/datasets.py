"""Ready datasets of real multimodal data, as ``tf.data`` pipelines.

Each loader returns ``(train_ds, test_ds)``: ``tf.data.Dataset``s of
``(inputs, label)`` where ``inputs`` is a dict keyed by modality name, the
model-input contract every zoo model follows.
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data import av_digits as _av_digits


def av_digits(batch_size=32, shuffle=True, seed=0, degraded=True, drop_remainder=False):
    """The embedded AV-digits task: MNIST image + spoken digit -> digit (10 classes).

    1,000 train and 250 test pairs of real data shipped inside the package (no
    download). See ``mmzoo.data.av_digits`` for the pairing, split and
    degradation recipe.

    Args:
        batch_size: Examples per batch.
        shuffle: Shuffle the train split each epoch.
        seed: Shuffle seed (the data itself is always the same).
        degraded: Apply the recipe's noise/occlusion (default) so that fusion
            matters; ``False`` gives the clean pairs.
        drop_remainder: Drop the last partial batch (static shapes for TPU/XLA).

    Returns:
        ``(train_ds, test_ds)``, each yielding ``({"image": (B, 28, 28, 1)
        float32, "audio": (B, 4000) float32}, label int32 (B,))``.

    Raises:
        ValueError: If ``batch_size`` is not a positive integer.

    Example:

    >>> train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=64)
    >>> inputs, labels = next(iter(train_ds))
    >>> inputs["image"].shape, inputs["audio"].shape
    (TensorShape([64, 28, 28, 1]), TensorShape([64, 4000]))
    """
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
    arrays = _av_digits.load_arrays(degraded=degraded)
    out = []
    for split in ("train", "test"):
        inputs, labels = arrays[split]
        ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
        if split == "train" and shuffle:
            ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
        out.append(ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE))
    return tuple(out)
