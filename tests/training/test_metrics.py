"""Metrics, aggregation and reports against straightforward reference computations (NumPy only)."""

import itertools
import json
import statistics

import numpy as np
import pytest

from mmzoo.training import metrics, reports

# ---------------------------------------------------------------------------
# Straightforward references: loops over pairs, thresholds and examples
# ---------------------------------------------------------------------------


def auc_by_pairs(y, s):
    """P(score of a random positive > score of a random negative), ties count 1/2."""
    pos = [s[i] for i in range(len(y)) if y[i] == 1]
    neg = [s[i] for i in range(len(y)) if y[i] == 0]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return total / (len(pos) * len(neg))


def auc_by_thresholds(y, s):
    """Trapezoid area under the ROC curve, one point per distinct score (ties move diagonally)."""
    y, s = np.asarray(y), np.asarray(s, float)
    points = [(0.0, 0.0)]
    for t in sorted(set(s.tolist()), reverse=True):
        predicted = s >= t
        points.append((np.sum(predicted & (y == 0)) / np.sum(y == 0), np.sum(predicted & (y == 1)) / np.sum(y == 1)))
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))


def prf_by_counting(y_true, y_pred, c):
    tp = fp = fn = 0
    for t, p in zip(y_true, y_pred):
        tp += t == c and p == c
        fp += t != c and p == c
        fn += t == c and p != c
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1, tp + fn, tp + fp


def top_k_by_sorting(y, scores, k):
    hits = 0
    for label, row in zip(y, scores):
        kth = sorted(row, reverse=True)[k - 1]
        hits += row[label] >= kth  # classes tied with the k-th score are all "in the top k"
    return hits / len(y)


def random_case(seed, n=300, c=5, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, (p.round(decimals) if decimals is not None else p)


# ---------------------------------------------------------------------------
# AUC
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 1])  # 1 decimal: many ties
def test_roc_auc_equals_pairs_and_threshold_references(decimals):
    rng = np.random.default_rng(decimals or 0)
    y = rng.integers(0, 2, 120)
    s = rng.random(120) + 0.3 * y
    s = s.round(decimals) if decimals is not None else s
    auc = metrics.roc_auc(y, s)
    assert auc == pytest.approx(auc_by_pairs(y, s), abs=1e-12)
    assert auc == pytest.approx(auc_by_thresholds(y, s), abs=1e-12)
    assert 0.5 < auc < 1.0


def test_roc_auc_hand_made_cases():
    assert metrics.roc_auc([0, 1], [0.2, 0.2]) == 0.5  # all tied
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert metrics.roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.1, 0.9]) == pytest.approx(auc_by_pairs([0, 1, 0, 1],
                                                                                            [0.5, 0.5, 0.1, 0.9]))
    assert metrics.roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert metrics.average_ranks([2, 2, 2, 1]).tolist() == [3.0, 3.0, 3.0, 1.0]
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2])


# ---------------------------------------------------------------------------
# Multiclass
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [None, 1])
def test_multiclass_report_equals_references(decimals):
    y, p = random_case(7, decimals=decimals)
    names = ["a", "b", "c", "d", "e"]
    r = metrics.classification_report(y, p, class_names=names, top_k=(1, 2, 3, 5))
    pred = p.argmax(1)
    assert r["num_examples"] == 300 and r["num_classes"] == 5 and r["class_names"] == names
    assert r["accuracy"] == pytest.approx(np.mean(pred == y))
    per = [prf_by_counting(y, pred, c) for c in range(5)]
    for c, name in enumerate(names):
        got = r["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx(per[c][:3], abs=1e-12)
        assert got["support"] == per[c][3]
        assert got["auc"] == pytest.approx(auc_by_pairs((y == c).astype(int), p[:, c]), abs=1e-12)
    assert r["macro_f1"] == pytest.approx(np.mean([x[2] for x in per]))
    assert r["macro_precision"] == pytest.approx(np.mean([x[0] for x in per]))
    assert r["weighted_f1"] == pytest.approx(sum(x[2] * x[3] for x in per) / 300)
    assert r["auc"] == pytest.approx(np.mean([auc_by_pairs((y == c).astype(int), p[:, c]) for c in range(5)]))
    assert set(r["top_k_accuracy"]) == {"1", "2", "3"}  # k=5 is not < 5 classes
    for k in (2, 3):
        assert r["top_k_accuracy"][str(k)] == pytest.approx(top_k_by_sorting(y, p, k))
    matrix = np.array(r["confusion_matrix"])
    assert matrix.sum() == 300 and matrix.trace() == np.sum(pred == y)
    assert [int(v) for v in matrix[:, 2]] == [int(np.sum((y == t) & (pred == 2))) for t in range(5)]
    assert json.loads(json.dumps(r, allow_nan=False)) == r


def test_class_without_predictions_and_class_without_examples():
    # Class 1 is never predicted; class 3 has no examples and is never predicted; class 2 is predicted, never true.
    y = [0, 0, 1, 1, 0]
    p = np.array([[0.9, 0.05, 0.05, 0.0], [0.6, 0.1, 0.3, 0.0], [0.7, 0.2, 0.1, 0.0], [0.2, 0.1, 0.7, 0.0],
                  [0.3, 0.3, 0.4, 0.0]])
    r = metrics.classification_report(y, p, class_names=["x", "y", "z", "w"], top_k=(2,))
    assert r["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2,
                                   "auc": pytest.approx(auc_by_pairs([0, 0, 1, 1, 0], p[:, 1]))}
    assert r["per_class"]["z"]["precision"] == 0.0 and r["per_class"]["z"]["support"] == 0
    assert r["macro_excluded_classes"] == ["w"]  # neither true nor predicted
    refs = [prf_by_counting(y, p.argmax(1), c) for c in range(3)]
    assert r["macro_f1"] == pytest.approx(np.mean([x[2] for x in refs]))
    assert r["macro_recall"] == pytest.approx((2 / 3 + 0 + 0) / 3)  # x: 2 of 3 found; y, z: none
    assert r["auc_skipped_classes"] == ["z", "w"]  # one label value only in y_true
    assert r["auc"] == pytest.approx(np.mean([r["per_class"][c]["auc"] for c in "xy"]))
    assert r["top_k_accuracy"]["2"] == pytest.approx(top_k_by_sorting(y, p, 2))


def test_multiclass_label_forms_agree():
    y, p = random_case(3, n=40, c=3)
    base = metrics.classification_report(y, p, class_names=["a", "b", "c"])
    assert metrics.classification_report(np.eye(3)[y], p, class_names=["a", "b", "c"]) == base
    assert metrics.classification_report(np.array(["a", "b", "c"])[y], p, class_names=["a", "b", "c"]) == base


def test_multiclass_errors_name_shapes_and_values():
    with pytest.raises(ValueError, match=r"\(3,\) and \(2, 2\)"):
        metrics.classification_report([0, 1, 1], [[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"\[0, 2\).*\[2\]"):
        metrics.classification_report([0, 2], [[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match="empty"):
        metrics.classification_report([], np.zeros((0, 3)))
    with pytest.raises(ValueError, match="task='binary'"):
        metrics.classification_report([0, 1], [0.2, 0.7])
    with pytest.raises(ValueError, match="class_names"):
        metrics.classification_report([0, 1], [[0.5, 0.5], [0.1, 0.9]], class_names=["a"])
    with pytest.raises(ValueError, match="task"):
        metrics.classification_report([0, 1], [[0.5, 0.5], [0.1, 0.9]], task="ranking")
    with pytest.raises(ValueError, match="finite"):
        metrics.classification_report([0, 1], [[np.nan, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match="threshold"):
        metrics.classification_report([0, 1], [0.2, 0.7], task="binary", threshold=1.5)


# ---------------------------------------------------------------------------
# Binary and multilabel
# ---------------------------------------------------------------------------


def test_binary_report_equals_references_for_every_shape():
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 150)
    p = np.clip(rng.random(150) * 0.8 + 0.25 * y, 0, 1).round(2)
    r = metrics.classification_report(y, p, class_names=["neg", "pos"], task="binary", threshold=0.6)
    pred = (p >= 0.6).astype(int)
    precision, recall, f1, support, _ = prf_by_counting(y, pred, 1)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((precision, recall, f1))
    assert r["per_class"]["pos"]["support"] == support
    assert r["accuracy"] == pytest.approx(np.mean(pred == y))
    assert r["auc"] == pytest.approx(auc_by_thresholds(y, p), abs=1e-12)
    assert r["per_class"]["neg"]["auc"] == pytest.approx(r["auc"])
    assert r["macro_f1"] == pytest.approx((f1 + prf_by_counting(y, pred, 0)[2]) / 2)
    assert np.array(r["confusion_matrix"]).tolist() == [
        [int(np.sum((y == t) & (pred == q))) for q in (0, 1)] for t in (0, 1)
    ]
    assert metrics.classification_report(y, p[:, None], ["neg", "pos"], "binary", 0.6) == r
    assert metrics.classification_report(y, np.stack([1 - p, p], 1), ["neg", "pos"], "binary", 0.6) == r
    with pytest.raises(ValueError, match="0 and 1"):
        metrics.classification_report([0, 2], [0.1, 0.9], task="binary")


def test_multilabel_report_equals_references():
    rng = np.random.default_rng(5)
    y = (rng.random((80, 4)) < [0.5, 0.3, 0.1, 0.0]).astype(int)  # label 3 never true
    p = np.clip(0.6 * y + 0.5 * rng.random((80, 4)), 0, 1).round(2)
    p[:, 3] = 0.1  # ... and never predicted
    r = metrics.classification_report(y, p, class_names=list("abcd"), task="multilabel")
    pred = (p >= 0.5).astype(int)
    assert r["accuracy"] == pytest.approx(np.mean((pred == y).all(1)))
    assert r["label_accuracy"] == pytest.approx(np.mean(pred == y))
    f1s = []
    for j, name in enumerate("abc"):
        precision, recall, f1, support, _ = prf_by_counting(y[:, j], pred[:, j], 1)
        got = r["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"], got["support"]) == pytest.approx(
            (precision, recall, f1, support))
        assert got["auc"] == pytest.approx(auc_by_pairs(y[:, j], p[:, j]), abs=1e-12)
        counts = {(t, q): int(np.sum((y[:, j] == t) & (pred[:, j] == q))) for t in (0, 1) for q in (0, 1)}
        assert r["confusion_matrix"][j] == [[counts[0, 0], counts[0, 1]], [counts[1, 0], counts[1, 1]]]
        f1s.append(f1)
    assert r["macro_f1"] == pytest.approx(np.mean(f1s)) and r["macro_excluded_classes"] == ["d"]
    assert r["auc_skipped_classes"] == ["d"] and r["top_k_accuracy"] == {}
    with pytest.raises(ValueError, match=r"\(80, 4\) and \(80, 3\)"):
        metrics.classification_report(y, p[:, :3], task="multilabel")


# ---------------------------------------------------------------------------
# Regression and aggregation
# ---------------------------------------------------------------------------


def test_regression_report_equals_references():
    rng = np.random.default_rng(2)
    t = rng.normal(size=(50, 2)) * [1.0, 10.0]
    p = t + rng.normal(size=(50, 2))
    r = metrics.regression_report(t, p, target_names=["small", "large"], max_points=20)
    for j, name in enumerate(["small", "large"]):
        errors = [p[i, j] - t[i, j] for i in range(50)]
        mean = sum(t[:, j]) / 50
        r2 = 1 - sum(e * e for e in errors) / sum((v - mean) ** 2 for v in t[:, j])
        assert r["per_target"][name] == pytest.approx(
            {"mae": sum(abs(e) for e in errors) / 50, "rmse": (sum(e * e for e in errors) / 50) ** 0.5, "r2": r2})
        assert len(r["points"][name]["y_true"]) == 20
    assert r["mae"] == pytest.approx(np.mean([r["per_target"][n]["mae"] for n in ("small", "large")]))
    assert r["per_target"]["large"]["r2"] > r["per_target"]["small"]["r2"]  # same noise, larger spread
    single = metrics.regression_report([1.0, 1.0], [1.0, 1.0])
    assert single["r2"] == 1.0 and single["mae"] == 0.0  # constant target predicted exactly
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        metrics.regression_report([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="empty"):
        metrics.regression_report([], [])


def test_aggregate_reports_mean_std_and_nesting():
    folds = [metrics.classification_report(*random_case(seed, n=60, c=3), class_names=["a", "b", "c"], top_k=(2,))
             for seed in range(4)]
    agg = metrics.aggregate_reports(folds)
    assert agg["num_reports"] == 4 and agg["task"] == "multiclass" and agg["class_names"] == ["a", "b", "c"]
    accuracies = [f["accuracy"] for f in folds]
    assert agg["accuracy"]["values"] == accuracies
    assert agg["accuracy"]["mean"] == pytest.approx(statistics.mean(accuracies))
    assert agg["accuracy"]["std"] == pytest.approx(statistics.stdev(accuracies))  # ddof=1
    assert agg["accuracy"]["min"] == min(accuracies) and agg["accuracy"]["max"] == max(accuracies)
    f1_b = [f["per_class"]["b"]["f1"] for f in folds]
    assert agg["per_class"]["b"]["f1"]["mean"] == pytest.approx(statistics.mean(f1_b))
    assert agg["top_k_accuracy"]["2"]["count"] == 4
    assert "confusion_matrix" not in agg  # lists of numbers are not aggregated
    # A value missing (None) in one report is aggregated over the others.
    partial = metrics.aggregate_reports([{"auc": 0.5, "x": {"y": 1}}, {"auc": None, "x": {"y": 3}}, {"auc": 0.7}])
    assert partial["auc"]["count"] == 2 and partial["auc"]["mean"] == pytest.approx(0.6)
    assert partial["x"]["y"]["mean"] == 2.0 and partial["x"]["y"]["std"] == pytest.approx(2 ** 0.5)
    assert metrics.aggregate_reports([{"a": 1.0}])["a"]["std"] == 0.0
    json.dumps(agg, allow_nan=False)
    with pytest.raises(ValueError, match="reports"):
        metrics.aggregate_reports([])


# ---------------------------------------------------------------------------
# Reports on disk and as text
# ---------------------------------------------------------------------------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(path):
    with open(path) as f:
        return json.load(f)


def _png_size(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_write_report_classification_json_and_figures(tmp_path):
    y, p = random_case(1, n=200, c=4)
    r = metrics.classification_report(y, p, class_names=["cat", "dog", "bird", "fish"])
    paths = reports.write_report(r, tmp_path / "eval", prefix="test")
    assert set(paths) == {"json", "confusion_matrix", "per_class"}
    assert _load(paths["json"]) == r
    for key in ("confusion_matrix", "per_class"):
        width, height = _png_size(paths[key])
        assert 300 < width < 3000 and 200 < height < 3000
    agg = metrics.aggregate_reports(
        [r, metrics.classification_report(y[:100], p[:100], ["cat", "dog", "bird", "fish"])]
    )
    agg_paths = reports.write_report(agg, tmp_path / "eval", prefix="kfold")
    assert set(agg_paths) == {"json", "per_class"}
    assert _load(agg_paths["json"])["accuracy"]["values"] == [r["accuracy"], agg["accuracy"]["values"][1]]
    ml = metrics.classification_report((p > 0.3).astype(int), p, task="multilabel")
    assert set(reports.write_report(ml, tmp_path / "ml")) == {"json", "confusion_matrix", "per_class"}
    with pytest.raises(ValueError, match="prefix"):
        reports.write_report(r, tmp_path, prefix="a/b")


def test_write_report_regression_scatter(tmp_path):
    t = np.linspace(0, 1, 30)
    r = metrics.regression_report(t, t + 0.1, target_names=["price"])
    paths = reports.write_report(r, tmp_path)
    assert set(paths) == {"json", "scatter"} and _png_size(paths["scatter"])[0] > 300
    assert _load(paths["json"])["per_target"]["price"]["mae"] == pytest.approx(0.1)


def test_format_report_and_table():
    y, p = random_case(4, n=50, c=6)
    r = metrics.classification_report(y, p)
    text = reports.format_report(r)
    assert text.splitlines()[0] == "multiclass: 50 examples, 6 classes"
    assert f"{r['accuracy']:.4f}" in text and f"{r['macro_f1']:.4f}" in text and f"{r['auc']:.4f}" in text
    assert f"top-3 acc.    {r['top_k_accuracy']['3']:.4f}" in text and "top-1" not in text
    agg_text = reports.format_report(metrics.aggregate_reports([r, metrics.classification_report(y[:25], p[:25])]))
    assert "2 reports" in agg_text and " +- " in agg_text
    reg = reports.format_report(metrics.regression_report([1.0, 2.0, 4.0], [1.0, 2.0, 3.0]))
    assert "MAE           0.3333" in reg and "R2" in reg
    table = reports.format_table(
        [{"model": "concat", "accuracy": {"mean": 0.9, "std": 0.01, "min": 0.89, "max": 0.91, "values": [],
                                          "count": 2}}, {"model": "gated", "accuracy": None}],
        ["model", "accuracy"], digits=2)
    lines = table.splitlines()
    assert lines[0].startswith("| model ") and lines[1].startswith("| :---")
    assert "0.90 +- 0.01 [0.89, 0.91]" in lines[2] and lines[3].rstrip().endswith("- |")
    assert len({len(line) for line in lines}) == 1  # aligned
    with pytest.raises(ValueError, match="2 columns"):
        reports.format_table([["a"]], ["model", "accuracy"])


def test_kfold_reports_per_fold_and_aggregated(shared_data):
    from mmzoo.data import splits

    with open(shared_data / "openmoji" / "openmoji.jsonl", encoding="utf-8") as f:
        groups = [json.loads(line)["group"] for line in f]
    names = sorted(set(groups))
    y = np.array([names.index(g) for g in groups])
    rng = np.random.default_rng(0)  # a noisy "model": the true class gets a boost
    p = rng.random((y.size, len(names))) + 0.6 * np.eye(len(names))[y]
    folds = splits.stratified_kfold(groups, 5, seed=0)
    per_fold = [metrics.classification_report(y[test], p[test], class_names=names) for _, test in folds]
    agg = metrics.aggregate_reports(per_fold)
    assert sum(r["num_examples"] for r in per_fold) == y.size
    for name in names:  # each fold holds every class, evenly
        supports = agg["per_class"][name]["support"]["values"]
        assert max(supports) - min(supports) <= 1 and sum(supports) == groups.count(name)
    assert agg["macro_f1"]["values"] == [r["macro_f1"] for r in per_fold]
    assert agg["macro_f1"]["mean"] == pytest.approx(np.mean(agg["macro_f1"]["values"]))
    assert agg["macro_f1"]["std"] == pytest.approx(np.std(agg["macro_f1"]["values"], ddof=1))
    assert agg["auc"]["min"] <= agg["auc"]["mean"] <= agg["auc"]["max"]
    assert "+- " in reports.format_report(agg).splitlines()[1]
