"""Evaluation metrics on predictions already computed: pure NumPy, JSON-able results.

``classification_report`` and ``regression_report`` turn labels and model
outputs into a plain ``dict`` (Python ``int``/``float``/``str``/``list``/``None``
only, so ``json.dumps(report, allow_nan=False)`` always works);
``aggregate_reports`` turns the reports of K folds or several seeds into
mean, std, min and max of every number. No scikit-learn is needed; the
conventions follow scikit-learn's where one exists and are written down here:

* **Zero division.** A class that is never predicted has precision 0.0, a
  class without examples has recall 0.0, and F1 is ``2 TP / (2 TP + FP + FN)``
  (0.0 when that is 0/0): scikit-learn's ``zero_division=0``.
* **Macro averages** run over the classes that occur in ``y_true`` or in the
  predictions (scikit-learn's default when ``labels`` is not given): a class
  that is neither present nor predicted has no defined precision, recall or
  F1 and is listed in ``macro_excluded_classes`` instead of counting as 0.
  ``weighted_f1`` weights each class's F1 by its support.
* **ROC AUC** is the Mann-Whitney rank statistic with average ranks for ties:
  exactly the probability that a random positive scores above a random
  negative, ties counting one half (no thresholds, no interpolation). A class
  (or label) whose ``y_true`` column holds only one value has no AUC: its
  per-class ``auc`` is ``None``, it is listed in ``auc_skipped_classes`` and
  left out of the macro ``auc``.
* **Top-k accuracy** counts an example as a hit when fewer than ``k`` classes
  score strictly higher than its true class, so classes tied at the boundary
  are all in the top k (as ``tf.math.in_top_k`` and Keras's
  ``top_k_categorical_accuracy`` do).
* **Regression.** ``r2`` of a constant target is 1.0 for a perfect prediction
  and 0.0 otherwise (scikit-learn's ``force_finite=True``); the overall
  ``mae``/``rmse``/``r2`` of several targets are the plain means of the
  per-target values (scikit-learn's ``"uniform_average"``).
* **Aggregation.** ``std`` is the sample standard deviation (``ddof=1``), the
  usual "mean +- std over K folds"; it is 0.0 for a single report.

Example:

>>> from mmzoo.training import metrics
>>> report = metrics.classification_report(
...     [0, 1, 2, 2], [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.1, 0.3]],
...     class_names=["cat", "dog", "bird"], top_k=(1, 2))
>>> report["accuracy"], report["per_class"]["bird"]["recall"], report["top_k_accuracy"]["2"]
(0.75, 0.5, 1.0)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from mmzoo import _validation as check

TASKS = ("multiclass", "binary", "multilabel")
_STATS = ("mean", "std", "min", "max")


# ---------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------


def average_ranks(values):
    """Ranks ``values`` from 1 to n, tied values sharing their average rank.

    Args:
        values: A 1-D array-like of numbers.

    Returns:
        A float64 array of ranks, in the order of ``values``.

    Example:

    >>> from mmzoo.training.metrics import average_ranks
    >>> average_ranks([0.3, 0.1, 0.3, 0.2]).tolist()
    [3.5, 1.0, 3.5, 2.0]
    """
    x = np.asarray(values, np.float64).ravel()
    n = x.size
    order = np.argsort(x, kind="mergesort")
    ordered = x[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n, np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def roc_auc(y_true, scores):
    """ROC AUC of one binary problem from the Mann-Whitney U statistic.

    Args:
        y_true: 1-D array-like of 0/1 (or booleans): 1 marks a positive.
        scores: 1-D array-like of the same length: higher means "more positive".

    Returns:
        The AUC as a float, or ``None`` when ``y_true`` holds only one value.

    Raises:
        ValueError: If the shapes differ or ``y_true`` holds values other than 0 and 1.

    Example:

    >>> from mmzoo.training.metrics import roc_auc
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"`y_true` and `scores` must have the same length. Received shapes {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"`y_true` must hold only 0 and 1. Received values: {np.unique(y)[:10].tolist()}")
    positive = y.astype(bool)
    n_pos = int(positive.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = average_ranks(s)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def confusion_matrix(y_true, y_pred, num_classes):
    """Counts of (true class, predicted class) pairs.

    Args:
        y_true: 1-D int class indices in ``[0, num_classes)``.
        y_pred: 1-D int class indices of the same length.
        num_classes: Number of classes.

    Returns:
        A ``(num_classes, num_classes)`` int64 array; rows are true classes.

    Example:

    >>> from mmzoo.training.metrics import confusion_matrix
    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    num_classes = check.positive_int("num_classes", num_classes)
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64).ravel(), np.asarray(y_pred, np.int64).ravel()), 1)
    return matrix


def _ratio(numerator, denominator):
    return float(numerator / denominator) if denominator else 0.0


def _prf(tp, fp, fn):
    """Precision, recall and F1 from counts, with the zero-division-is-0 convention."""
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _as_scores(probabilities):
    scores = np.asarray(probabilities)
    if scores.dtype == object or not np.issubdtype(scores.dtype, np.number):
        raise ValueError(f"`probabilities` must be numbers. Received dtype={scores.dtype}")
    scores = scores.astype(np.float64)
    if scores.size and not np.isfinite(scores).all():
        raise ValueError("`probabilities` must be finite; received NaN or infinite values.")
    return scores


def _class_names(class_names, num_classes, what="class_names"):
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(
            f"`{what}` must have one name per output ({num_classes}). Received: {what}={list(class_names)!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`{what}` must be unique. Received: {what}={list(class_names)!r}")
    return names


def _binary_column(y, name):
    if not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:10].tolist()
        raise ValueError(f"`{name}` must hold only 0 and 1 (or booleans). Received values: {bad}")
    return y.astype(np.int64)


def _multiclass_labels(y_true, num_classes, names):
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == num_classes and num_classes > 1:  # one-hot
        one_hot = _binary_column(y, "y_true")
        if not (one_hot.sum(axis=1) == 1).all():
            raise ValueError("A 2-D multiclass `y_true` must be one-hot (exactly one 1 per row).")
        return one_hot.argmax(axis=1)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"`y_true` must be class indices of shape (n,) or one-hot (n, {num_classes}). "
                         f"Received shape {y.shape}")
    if y.dtype.kind in "USO":  # class names
        index = {n: i for i, n in enumerate(names)}
        unknown = sorted({str(v) for v in y} - set(index))
        if unknown:
            raise ValueError(f"`y_true` holds names that are not in `class_names` {names}: {unknown[:10]}")
        return np.array([index[str(v)] for v in y], np.int64)
    if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
        raise ValueError("`y_true` must be integer class indices; received non-integer floats.")
    y = y.astype(np.int64)
    bad = np.unique(y[(y < 0) | (y >= num_classes)])
    if bad.size:
        raise ValueError(f"Labels must be in [0, {num_classes}) (one per column of `probabilities`). "
                         f"Received labels: {bad[:10].tolist()}")
    return y


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------


def classification_report(
    y_true, probabilities, class_names=None, task="multiclass", threshold=0.5, top_k=(1, 3, 5)
):
    """Accuracy, precision/recall/F1, ROC AUC, top-k accuracy and confusion counts.

    Args:
        y_true: The true labels. ``"multiclass"``: class indices ``(n,)`` (or
            one-hot ``(n, C)``, or class names when ``class_names`` is given).
            ``"binary"``: 0/1 ``(n,)``. ``"multilabel"``: multi-hot ``(n, L)``.
        probabilities: The model's outputs. ``"multiclass"``: ``(n, C)``
            scores (softmax probabilities or logits; the arg-max is the
            prediction). ``"binary"``: ``(n,)`` or ``(n, 1)`` probability of
            the positive class (``(n, 2)`` is read as ``[P(0), P(1)]``).
            ``"multilabel"``: ``(n, L)`` per-label probabilities.
        class_names: One name per class (per label); default ``"0"``,
            ``"1"``, ... . For ``"binary"`` the two names are negative, positive.
        task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
        threshold: For ``"binary"`` and ``"multilabel"``: a probability at or
            above it predicts the positive class (label).
        top_k: The ``k`` of the top-k accuracies; only ``k < C`` are reported
            (multiclass and binary; none for multilabel).

    Returns:
        A JSON-able dict with ``task``, ``num_examples``, ``num_classes``,
        ``class_names``, ``accuracy`` (multilabel: exact-match accuracy, plus
        ``label_accuracy``, the share of correct labels), ``macro_precision``,
        ``macro_recall``, ``macro_f1``, ``weighted_f1``,
        ``macro_excluded_classes``, ``auc`` (binary: AUC of the positive class;
        multiclass: macro one-vs-rest; multilabel: macro over labels; ``None``
        when no class has both values), ``auc_skipped_classes``,
        ``top_k_accuracy`` (``{"1": ..., "3": ...}``; string keys so the JSON
        reads back equal), ``per_class`` (``{name: {precision, recall, f1,
        support, auc}}``) and ``confusion_matrix`` (multiclass and binary:
        ``C x C`` counts, rows true; multilabel: one ``[[TN, FP], [FN, TP]]``
        per label). Binary reports also give ``precision``, ``recall`` and
        ``f1`` of the positive class; binary and multilabel give ``threshold``.

    Raises:
        ValueError: For an unknown ``task``, shapes that do not match (both are
            named), labels out of range, empty input, non-finite outputs, or
            ``class_names`` of the wrong length.

    Example:

    >>> from mmzoo.training.metrics import classification_report
    >>> r = classification_report([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1], ["no", "yes"], task="binary")
    >>> r["accuracy"], r["recall"], r["auc"]
    (0.75, 0.5, 1.0)
    """
    check.choice("task", task, TASKS)
    top_k = check.positive_ints("top_k", top_k, allow_empty=True)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold < 1:
        raise ValueError(f"`threshold` must be a number in (0, 1). Received: threshold={threshold!r}")
    scores = _as_scores(probabilities)
    y_shape = np.shape(y_true)
    if not y_shape or y_shape[0] == 0 or scores.ndim == 0 or scores.shape[0] == 0:
        raise ValueError(
            f"`y_true` and `probabilities` must not be empty. Received shapes {y_shape} and {scores.shape}"
        )
    if y_shape[0] != scores.shape[0]:
        raise ValueError(
            f"`y_true` and `probabilities` must have one row per example. Received shapes {y_shape} and {scores.shape}"
        )
    if task == "multilabel":
        return _multilabel_report(y_true, scores, class_names, threshold)

    if task == "binary":
        if scores.ndim == 2 and scores.shape[1] == 2:
            scores = scores[:, 1]
        elif scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim != 1:
            raise ValueError(
                "Binary `probabilities` must have shape (n,), (n, 1) or (n, 2). "
                f"Received shapes {y_shape} and {scores.shape}"
            )
        y = np.asarray(y_true)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"Binary `y_true` must have shape (n,). Received shapes {y_shape} and {scores.shape}")
        labels = _binary_column(y, "y_true")
        predicted = (scores >= threshold).astype(np.int64)
        class_scores = np.stack([1.0 - scores, scores], axis=1)
        names = _class_names(class_names, 2)
    else:
        if scores.ndim != 2 or scores.shape[1] < 2:
            raise ValueError(
                "Multiclass `probabilities` must have shape (n, num_classes) with num_classes >= 2 "
                f"(use task='binary' for one sigmoid output). Received shapes {y_shape} and {scores.shape}"
            )
        names = _class_names(class_names, scores.shape[1])
        labels = _multiclass_labels(y_true, scores.shape[1], names)
        predicted = scores.argmax(axis=1)
        class_scores = scores

    num_classes = class_scores.shape[1]
    matrix = confusion_matrix(labels, predicted, num_classes)
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    per_class, used = {}, []
    for c, name in enumerate(names):
        precision, recall, f1 = _prf(tp[c], fp[c], fn[c])
        auc = roc_auc(labels == c, class_scores[:, c])
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(fn[c] + tp[c]),
                           "auc": auc}
        if tp[c] + fp[c] + fn[c]:
            used.append(name)
    # Top-k: a hit when fewer than k classes score strictly above the true class.
    true_scores = class_scores[np.arange(labels.size), labels]
    above = (class_scores > true_scores[:, None]).sum(axis=1)
    report = {
        "task": task,
        "num_examples": int(labels.size),
        "num_classes": num_classes,
        "class_names": names,
        "accuracy": float(np.mean(predicted == labels)),
    }
    if task == "binary":
        report["threshold"] = float(threshold)
        report.update({k: per_class[names[1]][k] for k in ("precision", "recall", "f1")})
    report.update(_averages(per_class, used))
    if task == "binary":
        report["auc"] = per_class[names[1]]["auc"]
    report["top_k_accuracy"] = {str(k): float(np.mean(above < k)) for k in top_k if k < num_classes}
    report["per_class"] = per_class
    report["confusion_matrix"] = matrix.tolist()
    return report


def _averages(per_class, used):
    supports = np.array([per_class[n]["support"] for n in per_class], np.float64)
    f1s = np.array([per_class[n]["f1"] for n in per_class])
    return {
        "macro_precision": _mean([per_class[n]["precision"] for n in used]) or 0.0,
        "macro_recall": _mean([per_class[n]["recall"] for n in used]) or 0.0,
        "macro_f1": _mean([per_class[n]["f1"] for n in used]) or 0.0,
        "weighted_f1": float((f1s * supports).sum() / supports.sum()) if supports.sum() else 0.0,
        "macro_excluded_classes": [n for n in per_class if n not in used],
        "auc": _mean([v["auc"] for v in per_class.values()]),
        "auc_skipped_classes": [n for n, v in per_class.items() if v["auc"] is None],
    }


def _multilabel_report(y_true, scores, class_names, threshold):
    y = np.asarray(y_true)
    if y.ndim != 2 or scores.ndim != 2 or y.shape != scores.shape:
        raise ValueError(
            "Multilabel `y_true` (multi-hot) and `probabilities` must both have shape (n, num_labels). "
            f"Received shapes {y.shape} and {scores.shape}"
        )
    labels = _binary_column(y, "y_true").astype(bool)
    predicted = scores >= threshold
    names = _class_names(class_names, scores.shape[1])
    per_class, used, matrices = {}, [], []
    for c, name in enumerate(names):
        t, p = labels[:, c], predicted[:, c]
        tp, fp, fn, tn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum()), int((~t & ~p).sum())
        precision, recall, f1 = _prf(tp, fp, fn)
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn,
                           "auc": roc_auc(t, scores[:, c])}
        matrices.append([[tn, fp], [fn, tp]])
        if tp + fp + fn:
            used.append(name)
    report = {
        "task": "multilabel",
        "num_examples": int(labels.shape[0]),
        "num_classes": len(names),
        "class_names": names,
        "threshold": float(threshold),
        "accuracy": float(np.mean((labels == predicted).all(axis=1))),
        "label_accuracy": float(np.mean(labels == predicted)),
    }
    report.update(_averages(per_class, used))
    report["top_k_accuracy"] = {}
    report["per_class"] = per_class
    report["confusion_matrix"] = matrices
    return report


def regression_report(y_true, y_pred, target_names=None, max_points=1000):
    """MAE, RMSE and R2, overall and per target.

    Args:
        y_true: True values, ``(n,)`` or ``(n, T)``.
        y_pred: Predictions of the same shape (``(n, 1)`` matches ``(n,)``).
        target_names: One name per target; default ``"0"``, ``"1"``, ... .
        max_points: At most this many (true, predicted) pairs per target are
            kept under ``points`` for the scatter plot of ``write_report``
            (evenly spaced over the examples; 0 keeps none).

    Returns:
        A JSON-able dict: ``task`` (``"regression"``), ``num_examples``,
        ``target_names``, ``mae``, ``rmse``, ``r2`` (means over targets),
        ``per_target`` (``{name: {mae, rmse, r2}}``) and ``points``
        (``{name: {"y_true": [...], "y_pred": [...]}}``).

    Raises:
        ValueError: For empty input, shapes that differ (both are named),
            non-finite values or ``target_names`` of the wrong length.

    Example:

    >>> from mmzoo.training.metrics import regression_report
    >>> r = regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    >>> r["mae"], r["r2"]
    (0.3333333333333333, 0.5)
    """
    max_points = check.non_negative_int("max_points", max_points)
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    shapes = (t.shape, p.shape)
    t = t[:, None] if t.ndim == 1 else t
    p = p[:, None] if p.ndim == 1 else p
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"`y_true` and `y_pred` must have the same shape, (n,) or (n, targets). "
                         f"Received shapes {shapes[0]} and {shapes[1]}")
    if t.shape[0] == 0:
        raise ValueError(f"`y_true` and `y_pred` must not be empty. Received shapes {shapes[0]} and {shapes[1]}")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("`y_true` and `y_pred` must be finite; received NaN or infinite values.")
    names = _class_names(target_names, t.shape[1], "target_names")
    error = p - t
    mae = np.abs(error).mean(axis=0)
    rmse = np.sqrt((error**2).mean(axis=0))
    ss_res = (error**2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    r2 = [float(1 - r / s) if s > 0 else (1.0 if r == 0 else 0.0) for r, s in zip(ss_res, ss_tot)]
    n = t.shape[0]
    keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(np.int64)) if max_points else []
    return {
        "task": "regression",
        "num_examples": int(n),
        "target_names": names,
        "mae": float(mae.mean()),
        "rmse": float(rmse.mean()),
        "r2": float(np.mean(r2)),
        "per_target": {
            name: {"mae": float(mae[i]), "rmse": float(rmse[i]), "r2": r2[i]} for i, name in enumerate(names)
        },
        "points": {
            name: {"y_true": t[keep, i].tolist(), "y_pred": p[keep, i].tolist()} for i, name in enumerate(names)
        },
    }


# ---------------------------------------------------------------------------
# Aggregation over folds / seeds
# ---------------------------------------------------------------------------


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_aggregate(value):
    """True for a leaf written by ``aggregate_reports`` (a dict with mean/std/min/max)."""
    return isinstance(value, dict) and all(k in value for k in _STATS) and "values" in value


def aggregate_reports(reports):
    """Mean, std, min and max of every number in a list of reports.

    Numbers (ints and floats) at the same place in the reports become
    ``{"mean", "std", "min", "max", "values", "count"}`` nested the same way;
    ``std`` is the sample standard deviation (``ddof=1``; 0.0 for one value).
    A number that is missing or ``None`` in some reports (e.g. the AUC of a
    class absent from one fold) is aggregated over the others (``count``
    says how many). Other leaves (strings, lists such as ``class_names``) are
    kept when equal in every report and dropped otherwise; lists of numbers
    such as ``confusion_matrix`` and ``points`` are dropped.

    Args:
        reports: A non-empty list of dicts from ``classification_report`` /
            ``regression_report`` (or any nested dicts of numbers).

    Returns:
        The aggregated dict, with ``num_reports`` added at the top.

    Raises:
        ValueError: If ``reports`` is empty or holds something other than dicts.

    Example:

    >>> from mmzoo.training.metrics import aggregate_reports
    >>> agg = aggregate_reports([{"accuracy": 0.8}, {"accuracy": 0.9}, {"accuracy": 1.0}])
    >>> round(agg["accuracy"]["mean"], 6), round(agg["accuracy"]["std"], 6), agg["num_reports"]
    (0.9, 0.1, 3)
    """
    reports = list(reports) if reports is not None else []
    if not reports or not all(isinstance(r, dict) for r in reports):
        raise ValueError(f"`reports` must be a non-empty list of dicts. Received: reports={reports!r}"[:300])
    out = _aggregate(reports)
    out["num_reports"] = len(reports)
    return out


def _aggregate(dicts):
    keys = []
    for d in dicts:
        keys += [k for k in d if k not in keys]
    out = {}
    for key in keys:
        values = [d.get(key) for d in dicts]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, dict) for v in present):
            out[key] = _aggregate(present)
        elif present and all(_is_number(v) for v in present):
            array = np.asarray(present, np.float64)
            out[key] = {
                "mean": float(array.mean()),
                "std": float(array.std(ddof=1)) if array.size > 1 else 0.0,
                "min": float(array.min()),
                "max": float(array.max()),
                "values": [float(v) for v in values] if len(present) == len(values) else values,
                "count": len(present),
            }
        elif len(present) == len(values) and all(v == values[0] for v in values) and not _has_numbers(values[0]):
            out[key] = values[0]
    return out


def _has_numbers(value):
    if isinstance(value, (list, tuple)):
        return any(_has_numbers(v) for v in value)
    return _is_number(value)
