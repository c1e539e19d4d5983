"""Seeded stratified validation splits and stratified K-fold, on real label columns."""

import collections
import json
import logging

import numpy as np
import pytest

from mmzoo.data import splits


@pytest.fixture(scope="module")
def openmoji_groups(shared_data):
    """The 11 emoji groups of the 2073 OpenMoji rows: an imbalanced string label column (74 to 355 per class)."""
    with open(shared_data / "openmoji" / "openmoji.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["group"] for line in f]


@pytest.fixture(scope="module")
def fsdd_speakers(shared_data):
    """The speaker of each FSDD recording ("7_george_12.wav" -> "george")."""
    return sorted(p.name.split("_")[1] for p in (shared_data / "fsdd" / "recordings").glob("*.wav"))


def _counts(labels, positions):
    return collections.Counter(labels[i] for i in positions)


def test_stratified_split_keeps_each_class_share(openmoji_groups):
    labels = openmoji_groups
    train, valid = splits.stratified_split(labels, 0.2, seed=3)
    assert sorted(np.r_[train, valid].tolist()) == list(range(len(labels)))  # a partition
    assert np.all(np.diff(train) > 0) and np.all(np.diff(valid) > 0)
    totals, in_valid = collections.Counter(labels), _counts(labels, valid)
    for name, n in totals.items():
        assert in_valid[name] == int(np.floor(0.2 * n + 0.5)), name  # round(fraction * n), half up
    again = splits.stratified_split(labels, 0.2, seed=3)
    other = splits.stratified_split(labels, 0.2, seed=4)
    assert np.array_equal(again[1], valid) and not np.array_equal(other[1], valid)
    assert _counts(labels, other[1]) == in_valid  # another seed draws other examples, same counts


def test_stratified_split_small_classes_and_label_kinds():
    labels = ["a"] * 10 + ["b"] * 2 + ["c"]  # b: at least 1 in valid, c: a single example stays in train
    train, valid = splits.stratified_split(labels, 0.1, seed=0)
    assert _counts(labels, valid) == {"a": 1, "b": 1} and 12 in train
    ints = splits.stratified_split(np.array([0, 1] * 20), 0.25, seed=1)
    assert _counts([0, 1] * 20, ints[1]) == {0: 5, 1: 5}
    # Multi-label rows stratify on the label set; multi-hot rows give the same strata as lists of indices.
    sets = [["cat"], ["dog"], ["cat", "dog"], ["dog", "cat"]] * 5
    _, valid_sets = splits.stratified_split(sets, 0.4, seed=0)
    assert collections.Counter("+".join(sorted(sets[i])) for i in valid_sets) == {"cat": 2, "dog": 2, "cat+dog": 4}
    multi_hot = np.array([[1, 0], [0, 1], [1, 1], [1, 1]] * 5)
    _, valid_hot = splits.stratified_split(multi_hot, 0.4, seed=0)
    assert collections.Counter(tuple(multi_hot[i]) for i in valid_hot) == {(1, 0): 2, (0, 1): 2, (1, 1): 4}
    # Regression targets: plain seeded split, or quantile bins.
    targets = np.random.default_rng(0).normal(size=100)
    plain = splits.stratified_split(targets, 0.3, seed=0, stratify=False)
    assert plain[1].size == 30
    _, binned_valid = splits.stratified_split(targets, 0.2, seed=0, bins=4)
    quartile = np.searchsorted(np.quantile(targets, [0.25, 0.5, 0.75]), targets[binned_valid], side="right")
    assert np.bincount(quartile).tolist() == [5, 5, 5, 5]


def test_stratified_split_errors():
    for bad in (0, 1, 1.5, -0.1, True, "0.2"):
        with pytest.raises(ValueError, match=r"fraction.*Received: fraction="):
            splits.stratified_split([0, 1, 0, 1], bad)
    with pytest.raises(ValueError, match="single class"):
        splits.stratified_split(["a"] * 5, 0.2)
    with pytest.raises(ValueError, match="regression"):
        splits.stratified_split([0.5, 1.7, 2.2, 0.1], 0.5)
    with pytest.raises(ValueError, match="empty"):
        splits.stratified_split([], 0.5)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_stratified_kfold_partitions_and_stratifies_real_labels(openmoji_groups, k):
    labels = openmoji_groups
    folds = splits.stratified_kfold(labels, k, seed=0)
    assert len(folds) == k
    tests = [test for _, test in folds]
    assert sorted(np.concatenate(tests).tolist()) == list(range(len(labels)))  # every example in one test fold
    sizes = [t.size for t in tests]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert not set(train.tolist()) & set(test.tolist()) and train.size + test.size == len(labels)
    for name in set(labels):
        per_fold = [_counts(labels, t)[name] for t in tests]
        assert max(per_fold) - min(per_fold) <= 1, (name, per_fold)
    again = splits.stratified_kfold(labels, k, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not np.array_equal(splits.stratified_kfold(labels, k, seed=1)[0][1], tests[0])


def test_stratified_kfold_speakers_and_rare_classes(fsdd_speakers, caplog):
    folds = splits.stratified_kfold(fsdd_speakers, 4, seed=0)
    for speaker in set(fsdd_speakers):
        assert {_counts(fsdd_speakers, t)[speaker] for _, t in folds} <= {fsdd_speakers.count(speaker) // 4,
                                                                         -(-fsdd_speakers.count(speaker) // 4)}
    labels = ["a"] * 9 + ["rare"] * 2
    with caplog.at_level(logging.WARNING, logger="mmzoo.data.splits"):
        folds = splits.stratified_kfold(labels, 3, seed=0)
    assert "'rare' (2)" in caplog.text  # allowed, with a warning naming the class and its count
    assert sorted(_counts(labels, t)["rare"] for _, t in folds) == [0, 1, 1]
    plain = splits.stratified_kfold(np.linspace(0, 1, 10), 3, stratify=False)
    assert sorted(t.size for _, t in plain) == [3, 3, 4]
    for bad in (1, 0, 12, 2.0, True):
        with pytest.raises(ValueError, match=r"Received: k="):
            splits.stratified_kfold(labels, bad)


def test_group_split_holds_out_whole_groups_seeded():
    from mmzoo.data.splits import group_split

    groups = np.repeat(["george", "jackson", "lucas", "nicolas", "theo"], [50, 30, 40, 60, 20])
    train, valid = group_split(groups, 0.25, seed=3)
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(len(groups)))
    assert not set(groups[train]) & set(groups[valid])  # no group on both sides
    assert len(valid) >= 0.25 * len(groups) and len(set(groups[valid])) < 5
    again = group_split(groups, 0.25, seed=3)
    np.testing.assert_array_equal(valid, again[1])
    # Validation never takes every group, however large the fraction.
    assert len(set(groups[group_split(groups, 0.99)[0]])) == 1


def test_group_split_refuses_one_group_and_bad_fractions():
    from mmzoo.data.splits import group_split

    with pytest.raises(ValueError, match="at least two distinct values"):
        group_split(["a", "a", "a"], 0.3)
    with pytest.raises(ValueError, match="fraction"):
        group_split(["a", "b"], 1.0)
