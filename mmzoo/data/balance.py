"""Class imbalance: class weights from labels, and a re-balanced sampler."""

from __future__ import annotations

import collections

import numpy as np
import tensorflow as tf

from mmzoo import _validation as check


def class_counts(labels, num_classes):
    """Counts examples per class.

    Args:
        labels: Iterable of int class indices.
        num_classes: Number of classes.

    Returns:
        A list of ``num_classes`` counts.

    Raises:
        ValueError: If a label is outside ``[0, num_classes)``.
    """
    num_classes = check.positive_int("num_classes", num_classes)
    counts = collections.Counter(int(v) for v in np.asarray(labels).ravel())
    bad = [k for k in counts if not 0 <= k < num_classes]
    if bad:
        raise ValueError(f"Labels must be in [0, {num_classes}). Received labels: {sorted(bad)[:10]}")
    return [counts.get(k, 0) for k in range(num_classes)]


def class_weights(labels, num_classes=None):
    """Keras ``class_weight`` dict: ``n / (num_classes * count_k)`` per class.

    A class with balanced frequency gets 1.0; rarer classes get more.
    Classes without examples get 0.0 (they contribute no loss anyway).

    Args:
        labels: Int class indices (e.g. ``LabelColumn.indices(manifest)``).
        num_classes: Number of classes (default: ``max(labels) + 1``).

    Returns:
        ``{class_index: weight}`` for ``model.fit(class_weight=...)``.

    Raises:
        ValueError: If ``labels`` is empty or out of range.

    Example:

    >>> class_weights([0, 0, 0, 1])
    {0: 0.6666666666666666, 1: 2.0}
    """
    labels = np.asarray(labels).ravel()
    if labels.size == 0:
        raise ValueError("`labels` is empty; class weights need at least one label.")
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    counts = class_counts(labels, num_classes)
    total = float(sum(counts))
    return {k: (total / (num_classes * c) if c else 0.0) for k, c in enumerate(counts)}


def rebalance(ds, labels, seed=None, num_examples=None):
    """Re-samples an unbatched ``(inputs, label)`` dataset to uniform classes.

    Each class present in ``labels`` gets its own endlessly repeated stream
    (a filter of ``ds``); examples are drawn from the streams with equal
    probability (rare classes oversampled, common ones undersampled) and each
    pass yields ``num_examples``. Each class stream passes over ``ds`` on its
    own, so put a ``cache()`` before this.

    Args:
        ds: Unbatched dataset of ``(inputs, label)`` with int32 labels.
        labels: The labels of ``ds``'s examples (e.g. from the manifest).
        seed: Seed of the draw.
        num_examples: Examples per pass (default ``len(labels)``).

    Returns:
        The re-balanced dataset.

    Raises:
        ValueError: If ``labels`` is empty.

    Example:

    >>> import numpy as np
    >>> import tensorflow as tf
    >>> labels = [0, 0, 0, 1]
    >>> ds = tf.data.Dataset.from_tensor_slices(({"x": tf.range(4)}, tf.constant(labels))).cache()
    >>> balanced = rebalance(ds, labels, seed=0, num_examples=1000)
    >>> counts = np.bincount([int(y) for _, y in balanced], minlength=2)
    >>> int(counts.sum()), bool(abs(counts[0] - counts[1]) < 200)
    (1000, True)
    """
    labels = [int(v) for v in np.asarray(labels).ravel()]
    if not labels:
        raise ValueError("`labels` is empty; nothing to rebalance.")
    num_examples = check.positive_int("num_examples", num_examples if num_examples is not None else len(labels))
    present = sorted(set(labels))
    streams = [ds.filter(lambda inputs, label, k=k: tf.equal(label, k)).repeat() for k in present]
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(present)] * len(present), seed=seed)
    return mixed.take(num_examples)
