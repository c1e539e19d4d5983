"""Deterministic train/test splits from a hash of each example's id.

An example's split depends only on its id (and a salt), never on the order or
number of other examples, the Python process or the platform: the id is
hashed with SHA-256 and the first 8 bytes, read as an integer and divided by
2**64, give a number ``u`` in [0, 1). The example is in ``test`` when
``u < test_fraction`` and in ``train`` otherwise. Adding or removing examples
never moves another example between splits.

``stratified_split`` and ``stratified_kfold`` work on a label column instead:
a seeded, per-class random validation fraction (for early stopping and
best-weights restore) and stratified K-fold cross-validation.
"""

from __future__ import annotations

import hashlib
import logging
import math
import numbers

import numpy as np

from mmzoo import _validation as check

logger = logging.getLogger(__name__)

DEFAULT_SALT = "mmzoo"


def hash_fraction(example_id, salt=DEFAULT_SALT):
    """Maps an id to a stable number in [0, 1).

    Args:
        example_id: Any value; its ``str`` is hashed.
        salt: Changes the assignment of every id at once.

    Returns:
        A float in [0, 1).

    Example:

    >>> 0.0 <= hash_fraction("1F600") < 1.0
    True
    """
    digest = hashlib.sha256(f"{salt}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_of(example_id, test_fraction=0.2, salt=DEFAULT_SALT):
    """Returns ``"test"`` or ``"train"`` for one example id.

    Args:
        example_id: The example's id (e.g. an emoji hexcode).
        test_fraction: Expected share of test examples, in (0, 1).
        salt: Hash salt.

    Returns:
        ``"test"`` or ``"train"``.

    Raises:
        ValueError: If ``test_fraction`` is not in (0, 1).

    Example:

    >>> split_of("1F600") in ("train", "test")
    True
    """
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be a number in (0, 1). Received: test_fraction={test_fraction!r}")
    return "test" if hash_fraction(example_id, salt) < test_fraction else "train"


def hash_split(ids, test_fraction=0.2, salt=DEFAULT_SALT):
    """Splits a list of ids into train and test positions.

    Args:
        ids: A sequence of example ids.
        test_fraction: Expected share of test examples, in (0, 1).
        salt: Hash salt.

    Returns:
        ``{"train": [positions], "test": [positions]}`` (positions into ``ids``).

    Raises:
        ValueError: If ``test_fraction`` is invalid or an id repeats.

    Example:

    >>> sorted(hash_split(["a", "b", "c"], 0.5))
    ['test', 'train']
    """
    seen = set()
    out = {"train": [], "test": []}
    for position, example_id in enumerate(ids):
        if example_id in seen:
            raise ValueError(f"Example ids must be unique; {example_id!r} repeats (position {position}).")
        seen.add(example_id)
        out[split_of(example_id, test_fraction, salt)].append(position)
    return out


# ---------------------------------------------------------------------------
# Seeded stratified splits and K-fold (positions into a label column)
# ---------------------------------------------------------------------------


def _strata(labels, stratify, bins):
    """Returns ``(keys, names)``: an int stratum per example and a name per stratum."""
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise ValueError(f"`labels` must be a sequence with one label per example. Received: labels={labels!r}"[:300])
    n = len(labels)
    if n == 0:
        raise ValueError("`labels` must not be empty. Received: labels=[]")
    if not stratify:
        return np.zeros(n, np.int64), ["<all>"]
    if bins is not None:
        bins = check.positive_int("bins", bins)
        values = np.asarray(labels, np.float64)
        if values.shape != (n,) or not np.isfinite(values).all():
            raise ValueError(f"With `bins`, labels must be finite numbers of shape (n,). Received shape {values.shape}")
        edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
        keys = np.searchsorted(edges, values, side="right")
        uniq, keys = np.unique(keys, return_inverse=True)
        lows = np.r_[-np.inf, edges]
        highs = np.r_[edges, np.inf]
        return keys.reshape(-1), [f"[{lows[u]:.4g}, {highs[u]:.4g})" for u in uniq]
    if isinstance(labels, np.ndarray) and labels.ndim == 2:  # multi-hot rows -> the set of active label indices
        items = [tuple(np.flatnonzero(row).tolist()) for row in labels]
    elif _is_multilabel(labels):  # label sets -> their sorted, "+"-joined names
        items = [tuple(sorted({str(v) for v in row})) for row in labels]
    else:
        array = np.asarray(labels)
        if array.ndim != 1:
            raise ValueError(f"`labels` must be one label per example (or label sets). Received shape {array.shape}")
        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise ValueError(
                "`labels` look like regression targets (non-integer floats): pass `stratify=False` for a plain "
                "seeded split or `bins=N` to stratify on N quantile bins."
            )
        uniq, keys = np.unique(array.astype(str) if array.dtype == object else array, return_inverse=True)
        return keys.reshape(-1), [str(u) for u in uniq]
    names = ["+".join(str(v) for v in item) or "<none>" for item in items]
    uniq, keys = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    return keys.reshape(-1), [str(u) for u in uniq]


def _is_multilabel(labels):
    first = labels[0] if len(labels) else None
    return isinstance(first, (list, tuple, set, frozenset)) or (isinstance(first, np.ndarray) and first.ndim == 1)


def _check_fraction(fraction):
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction < 1:
        raise ValueError(f"`fraction` must be a number in (0, 1). Received: fraction={fraction!r}")
    return float(fraction)


def stratified_split(labels, fraction, seed=0, stratify=True, bins=None):
    """Splits positions into train and validation, keeping each class's share.

    Per class (stratum) of ``n`` examples, a seeded random
    ``round(fraction * n)`` of them (half rounds up) go to validation, at
    least 1 and at most ``n - 1`` when ``n >= 2``; a class with a single
    example stays in train. The result depends only on the labels and
    ``seed``.

    What a "class" is:

    * integer or string labels: each distinct value;
    * multi-label rows (lists/tuples/sets of labels, or multi-hot rows of a
      2-D array): each distinct label *set* (e.g. ``"cat+dog"``); a label set
      seen once stays in train;
    * ``bins=N``: numeric (regression) targets cut at their N-quantiles;
    * ``stratify=False``: no classes, a plain seeded random split.

    Args:
        labels: One label per example (a list or array; see above).
        fraction: Share of examples for validation, in (0, 1).
        seed: Seed of the shuffle.
        stratify: False for a plain seeded random split.
        bins: Stratify numeric labels on this many quantile bins.

    Returns:
        ``(train_indices, valid_indices)``: sorted int64 arrays of positions
        into ``labels`` that together hold every position once.

    Raises:
        ValueError: If ``fraction`` is not in (0, 1), ``labels`` is empty,
            holds a single class (when stratified), or looks like regression
            targets without ``stratify=False`` / ``bins``.

    Example:

    >>> from mmzoo.data.splits import stratified_split
    >>> train, valid = stratified_split(["a"] * 8 + ["b"] * 4, 0.25, seed=0)
    >>> len(train), len(valid), sorted(int(i) >= 8 for i in valid)
    (9, 3, [False, False, True])
    """
    fraction = _check_fraction(fraction)
    keys, names = _strata(labels, stratify, bins)
    if stratify and len(names) < 2:
        raise ValueError(
            f"`labels` hold a single class ({names[0]!r}), so there is nothing to stratify: "
            "pass `stratify=False` for a plain seeded split."
        )
    rng = np.random.default_rng(seed)
    valid = []
    for stratum in range(len(names)):
        members = rng.permutation(np.flatnonzero(keys == stratum))
        n = members.size
        take = math.floor(fraction * n + 0.5)
        take = min(max(take, 1), n - 1) if n >= 2 else 0
        valid.append(members[:take])
    valid = np.sort(np.concatenate(valid)).astype(np.int64)
    train = np.setdiff1d(np.arange(keys.size), valid).astype(np.int64)
    return train, valid


def group_split(groups, fraction, seed=0):
    """Splits positions into train and validation, keeping each group on one side.

    Whole groups (a speaker, a patient, a site) are held out, so validation
    measures what a *new* group gets. Groups are taken in a seeded random
    order until validation holds at least ``fraction`` of the examples: at
    least one group, never all of them. The result depends only on the
    group labels and ``seed``.

    Args:
        groups: One group label per example (strings or integers).
        fraction: Share of examples for validation, in (0, 1); whole groups
            make the actual share larger.
        seed: Seed of the group order.

    Returns:
        ``(train_indices, valid_indices)``: sorted int64 arrays of positions
        into ``groups`` that together hold every position once.

    Raises:
        ValueError: If ``fraction`` is not in (0, 1) or ``groups`` has fewer
            than two distinct values.

    Example:

    >>> from mmzoo.data.splits import group_split
    >>> train, valid = group_split(["ann"] * 4 + ["bob"] * 4 + ["cy"] * 4, 0.2, seed=0)
    >>> len(train), len(valid)
    (8, 4)
    """
    fraction = _check_fraction(fraction)
    groups = np.asarray(groups)
    names, keys = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError(f"`groups` needs at least two distinct values to hold one out. Received: {names.tolist()}")
    order = np.random.default_rng(seed).permutation(len(names))
    counts = np.bincount(keys, minlength=len(names))
    taken = np.cumsum(counts[order])
    chosen = order[: min(int(np.searchsorted(taken, fraction * keys.size)) + 1, len(names) - 1)]
    in_valid = np.isin(keys, chosen)
    return np.flatnonzero(~in_valid).astype(np.int64), np.flatnonzero(in_valid).astype(np.int64)


def stratified_kfold(labels, k, seed=0, stratify=True, bins=None):
    """K folds for cross-validation, each class spread evenly over the folds.

    The examples of each class (see ``stratified_split`` for what a class is)
    are shuffled with ``seed``, classes are laid one after the other, and the
    examples are dealt to folds ``0, 1, ..., k - 1, 0, 1, ...``. So the test
    folds partition the data, their sizes differ by at most 1, and so do the
    counts of every class across folds. A class with fewer than ``k``
    examples is allowed (it is absent from some test folds) and logged as a
    warning naming the class and its count, as scikit-learn's
    ``StratifiedKFold`` warns.

    Args:
        labels: One label per example.
        k: Number of folds, 2 to ``len(labels)``.
        seed: Seed of the shuffle.
        stratify: False for plain shuffled K-fold.
        bins: Stratify numeric labels on this many quantile bins.

    Returns:
        A list of ``k`` pairs ``(train_indices, test_indices)`` of sorted int64
        positions; the test parts partition ``range(len(labels))``.

    Raises:
        ValueError: If ``k`` is not an int in [2, len(labels)], ``labels`` is
            empty or looks like regression targets without ``stratify=False``
            / ``bins``.

    Example:

    >>> from mmzoo.data.splits import stratified_kfold
    >>> folds = stratified_kfold([0, 0, 0, 1, 1, 1], k=3, seed=0)
    >>> [sorted(int(i) >= 3 for i in test) for _, test in folds]
    [[False, True], [False, True], [False, True]]
    """
    keys, names = _strata(labels, stratify, bins)
    n = keys.size
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 2 <= k <= n:
        raise ValueError(f"`k` must be an integer in [2, {n}] (the number of examples). Received: k={k!r}")
    counts = np.bincount(keys, minlength=len(names))
    if stratify and counts.min() < k:
        rare = [(names[i], int(c)) for i, c in enumerate(counts) if c < k]
        logger.warning(
            "stratified_kfold: %d class(es) have fewer than k=%d examples and miss from some test folds: %s",
            len(rare), k, ", ".join(f"{name!r} ({count})" for name, count in rare[:10]),
        )
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(np.flatnonzero(keys == s)) for s in range(len(names))])
    fold_of = np.empty(n, np.int64)
    fold_of[order] = np.arange(n) % k
    everything = np.arange(n, dtype=np.int64)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(k)]
