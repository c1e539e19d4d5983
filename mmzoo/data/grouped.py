"""Group-pure batches: every training batch drawn from one group (one speaker, one site).

A ``BatchNormalization`` layer normalises each training batch by that batch's
own statistics. When every batch holds one group, the layers learn to work
on features normalised *within a group*, which is what test-time adaptation
(``mmzoo.training.adapt.adapt_batch_norm`` on a new group's unlabeled
inputs) gives them at test time; with mixed batches they learn on features
normalised across groups, and a new group's statistics are a different
input. The README's "A new speaker" measures the pair on leave-one-speaker-out
audio.
"""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from mmzoo import _validation as check


def group_batches(inputs, labels, groups, batch_size=32, seed=None, drop_remainder=True):
    """A ``tf.data`` pipeline of ``(inputs, labels)`` batches that each hold one group.

    Every epoch (every iteration over the dataset) shuffles each group's
    examples, cuts them into batches, and shuffles the order of all the
    groups' batches, so consecutive batches come from different groups at
    random and every example is used once per epoch (less the up to
    ``batch_size - 1`` left over per group with ``drop_remainder``; a
    different few each epoch). With a ``seed`` the sequence of epochs is
    the same in every run.

    Args:
        inputs: A dict ``{input name: array}`` (or one array) of ``N``
            examples, held in memory.
        labels: ``N`` labels (any shape after the first axis).
        groups: ``N`` group ids (strings or integers), e.g. the speaker of
            each recording.
        batch_size: Examples per batch.
        seed: Shuffling seed (``None``: a different order every run).
        drop_remainder: Drop each group's last, smaller batch of an epoch
            (default; a batch of a few examples gives noisy BatchNorm
            statistics). Every group must then hold ``batch_size`` examples
            or more, or it would never be seen.

    Returns:
        A finite ``tf.data.Dataset`` of ``(inputs, labels)`` batches.

    Raises:
        ValueError: If the lengths of ``inputs``, ``labels`` and ``groups``
            differ, there are no examples, ``batch_size`` or ``seed`` is
            invalid, or, with ``drop_remainder``, a group holds fewer than
            ``batch_size`` examples.

    Example:

    >>> import numpy as np
    >>> from mmzoo import data
    >>> x = {"audio": np.zeros((10, 4), "float32")}
    >>> speakers = ["ann"] * 6 + ["bob"] * 4
    >>> ds = data.group_batches(x, np.arange(10), speakers, batch_size=2, seed=0)
    >>> sorted(sorted(int(v) // 6 for v in y) for _, y in ds)   # each batch: one speaker
    [[0, 0], [0, 0], [0, 0], [1, 1], [1, 1]]
    """
    batch_size = check.positive_int("batch_size", batch_size)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise ValueError(f"`seed` must be an integer or None. Received: seed={seed!r}")
    named = dict(inputs) if isinstance(inputs, dict) else {None: inputs}
    arrays = {name: np.asarray(value) for name, value in named.items()}
    labels = np.asarray(labels)
    groups = np.asarray(groups).ravel()
    lengths = {f"inputs[{name!r}]" if name is not None else "inputs": len(a) for name, a in arrays.items()}
    lengths.update(labels=len(labels), groups=len(groups))
    if len(set(lengths.values())) != 1:
        raise ValueError(f"`inputs`, `labels` and `groups` must have one length. Received lengths {lengths}")
    if len(groups) == 0:
        raise ValueError("`groups` is empty: there are no examples to batch.")
    names, codes = np.unique(groups, return_inverse=True)
    counts = np.bincount(codes)
    if drop_remainder and counts.min() < batch_size:
        small = {str(names[i]): int(counts[i]) for i in np.flatnonzero(counts < batch_size)}
        raise ValueError(
            f"With drop_remainder=True every group needs at least batch_size={batch_size} examples; these have "
            f"fewer and would never be seen: {small}. Lower `batch_size` or pass drop_remainder=False."
        )
    index_batches = None
    for code in range(len(names)):
        members = tf.data.Dataset.from_tensor_slices(np.flatnonzero(codes == code).astype("int64"))
        part = members.shuffle(int(counts[code]), seed=None if seed is None else seed + 1 + code,
                               reshuffle_each_iteration=True).batch(batch_size, drop_remainder=drop_remainder)
        index_batches = part if index_batches is None else index_batches.concatenate(part)
    num_batches = int((counts // batch_size).sum() if drop_remainder else (-(-counts // batch_size)).sum())
    index_batches = index_batches.shuffle(num_batches, seed=seed, reshuffle_each_iteration=True)
    tensors = {name: tf.constant(a) for name, a in arrays.items()}
    label_tensor = tf.constant(labels)

    @tf.autograph.experimental.do_not_convert  # graph code already
    def gather(indices):
        x = {name: tf.gather(t, indices) for name, t in tensors.items()}
        return x.get(None, x), tf.gather(label_tensor, indices)

    return index_batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE).apply(tf.data.experimental.assert_cardinality(num_batches))
