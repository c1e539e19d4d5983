"""Evaluation reports on disk and on screen: JSON, figures, text and tables.

``write_report`` writes a report of ``mmzoo.training.metrics`` as JSON plus
its figures (confusion matrix and per-class precision/recall/F1 for
classification, predicted-vs-true scatter for regression);
``format_report`` gives the few lines the CLI prints; ``format_table`` lays
out rows such as the models of a comparison as a Markdown table. matplotlib
is imported only inside the plotting functions (with the headless ``Agg``
backend). Files are written through ``tf.io.gfile`` (``gs://`` works; TensorFlow
is imported only then).

Example::

    from mmzoo.training import metrics, reports

    report = metrics.classification_report(labels, probabilities, class_names=names)
    print(reports.format_report(report))
    paths = reports.write_report(report, "runs/eval")  # report.json + PNGs
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os

from mmzoo.training.metrics import is_aggregate

_MAX_ANNOTATED_CLASSES = 30  # confusion-matrix cells get their counts up to this many classes
_MAX_LABELLED_CLASSES = 60  # ... and tick labels up to this many
_MAX_BARS = 60  # the per-class chart shows at most this many classes (the lowest F1 first)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def _join(directory, name):
    return f"{directory.rstrip('/')}/{name}" if "://" in str(directory) else os.path.join(directory, name)


def _save_figure(fig, path):
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415  (imports TensorFlow)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return _gfile.write_bytes(str(path), buffer.getvalue())


def _pyplot():
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def write_report(report, output_dir, prefix="report", y_true=None, y_pred=None):
    """Writes a report as JSON and PNG figures.

    Files (``{prefix}`` defaults to ``report``):

    * ``{prefix}.json``: the report itself (valid JSON: no NaN).
    * classification: ``{prefix}_confusion_matrix.png`` (counts, coloured by
      the share of each true class; multilabel: one 2x2 matrix per label) and
      ``{prefix}_per_class.png`` (precision, recall and F1 of each class).
    * regression: ``{prefix}_scatter.png`` (predicted against true, one panel
      per target) from ``y_true``/``y_pred`` when given, else from the
      report's ``points``.
    * an aggregated report (``metrics.aggregate_reports``): the JSON and, for
      classification, the per-class chart of the means with std error bars.

    Args:
        report: A dict from ``metrics.classification_report``,
            ``metrics.regression_report`` or ``metrics.aggregate_reports``.
        output_dir: Folder to write into (created if needed; ``gs://`` works).
        prefix: File name prefix.
        y_true: Optional regression targets for the scatter plot.
        y_pred: Optional regression predictions for the scatter plot.

    Returns:
        A dict ``{"json": path, "confusion_matrix": path, "per_class": path}``
        (classification) or ``{"json": path, "scatter": path}`` (regression),
        only with the files actually written.

    Raises:
        TypeError: If ``report`` is not a dict.
        ValueError: If ``prefix`` is empty or holds a path separator.
    """
    if not isinstance(report, dict):
        raise TypeError(f"`report` must be a dict from mmzoo.training.metrics. Received: report={report!r}"[:300])
    if not isinstance(prefix, str) or not prefix or "/" in prefix or os.sep in prefix:
        raise ValueError(f"`prefix` must be a non-empty file name prefix. Received: prefix={prefix!r}")
    from mmzoo import _gfile  # noqa: PLC0415  (imports TensorFlow)

    output_dir = str(output_dir)
    paths = {"json": _gfile.write_text(_join(output_dir, f"{prefix}.json"), _to_json(report))}
    task = report.get("task")
    aggregated = "num_reports" in report
    if task in ("multiclass", "binary", "multilabel"):
        if not aggregated and "confusion_matrix" in report:
            paths["confusion_matrix"] = plot_confusion_matrix(
                report, _join(output_dir, f"{prefix}_confusion_matrix.png")
            )
        if report.get("per_class"):
            paths["per_class"] = plot_per_class(report, _join(output_dir, f"{prefix}_per_class.png"))
    elif task == "regression" and (y_true is not None or report.get("points")):
        paths["scatter"] = plot_regression(report, _join(output_dir, f"{prefix}_scatter.png"), y_true, y_pred)
    return paths


def _to_json(report):
    def clean(value):
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if hasattr(value, "tolist"):  # NumPy scalars and arrays
            return clean(value.tolist())
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return json.dumps(clean(report), indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def _title(report, what):
    n = report.get("num_examples")
    if is_aggregate(n):
        return (f"{what}\n({report.get('task', '')}, mean \u00b1 std over {report.get('num_reports', '?')} reports "
                f"of about {n['mean']:.0f} examples)")
    return f"{what} ({report.get('task', '')}, {n if n is not None else '?'} examples)"


def plot_confusion_matrix(report, path, title=None):
    """Draws the confusion matrix of a classification report to a PNG.

    Cells show counts and are coloured by the share of their row (the recall
    of each true class), so rare classes stay readable; class names label
    both axes (predicted across, true down). A multilabel report gets one
    small 2x2 matrix per label.

    Args:
        report: A dict from ``metrics.classification_report``.
        path: Output PNG path.
        title: Figure title; default names the task and the number of examples.

    Returns:
        ``path``.
    """
    import numpy as np  # noqa: PLC0415

    plt = _pyplot()
    names = report["class_names"]
    matrix = np.asarray(report["confusion_matrix"], np.float64)
    title = title or _title(report, "Confusion matrix")
    if report.get("task") == "multilabel":
        return _plot_multilabel_confusion(plt, matrix, names, path, title)
    n = len(names)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.45 * n, 16)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    if n <= _MAX_LABELLED_CLASSES:
        rotate = n > 3 and max(map(len, names)) > 3
        ax.set_xticks(range(n), names, rotation=45 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= _MAX_ANNOTATED_CLASSES:
        for i in range(n):
            for j in range(n):
                if matrix[i, j] or n <= 12:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8,
                            color="white" if share[i, j] > 0.5 else "black")
    return _save_figure(fig, path)


def _plot_multilabel_confusion(plt, matrices, names, path, title):
    import numpy as np  # noqa: PLC0415

    n = len(names)
    columns = min(n, 5)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.4 * rows + 0.6), squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        if index >= n:
            ax.axis("off")
            continue
        m = matrices[index]
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(2):
            for j in range(2):
                ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_xticks([0, 1], ["no", "yes"])
        ax.set_yticks([0, 1], ["no", "yes"])
        ax.set_title(names[index], fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return _save_figure(fig, path)


def plot_per_class(report, path, title=None):
    """Draws precision, recall and F1 of every class as grouped horizontal bars.

    Each class's label carries its support; an aggregated report (K folds or
    seeds) draws the means with std error bars. With more than 60 classes
    the 60 of lowest F1 are drawn (the title says so).

    Args:
        report: A classification report, or its aggregate.
        path: Output PNG path.
        title: Figure title.

    Returns:
        ``path``.
    """
    import numpy as np  # noqa: PLC0415

    plt = _pyplot()
    per_class = report["per_class"]
    names = list(per_class)
    what = "Per-class precision, recall and F1"
    metric_names = ("precision", "recall", "f1")
    aggregated = "num_reports" in report
    colors = ("#4C72B0", "#DD8452", "#55A868")

    def value(entry, key, stat="mean"):
        v = entry.get(key)
        if is_aggregate(v):
            return v[stat]
        return v if isinstance(v, numbers.Real) else 0.0

    if len(names) > _MAX_BARS:
        what = f"Precision, recall and F1 of the {_MAX_BARS} classes of lowest F1 (of {len(names)})"
        names = sorted(names, key=lambda c: value(per_class[c], "f1"))[:_MAX_BARS]
    n = len(names)
    fig, ax = plt.subplots(figsize=(7.5, 1.6 + 0.42 * n))
    height = 0.26
    positions = np.arange(n)
    for offset, (metric, color) in enumerate(zip(metric_names, colors)):
        means = [value(per_class[c], metric) for c in names]
        errors = [value(per_class[c], metric, "std") for c in names] if aggregated else None
        label = "F1" if metric == "f1" else metric
        ax.barh(positions + (offset - 1) * height, means, height, xerr=errors, color=color, label=label,
                error_kw={"elinewidth": 0.8, "capsize": 2})
    supports = [value(per_class[c], "support") for c in names]
    sign = "\u2248" if aggregated else "="  # an aggregate shows the mean support
    ax.set_yticks(positions, [f"{c} (n{sign}{s:.0f})" for c, s in zip(names, supports)])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.0)
    ax.set_xlabel("score")
    ax.set_ylabel("class")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title or _title(report, what))
    return _save_figure(fig, path)


def plot_regression(report, path, y_true=None, y_pred=None, title=None):
    """Scatters predicted against true values, one panel per target, with the y = x line.

    Args:
        report: A dict from ``metrics.regression_report``.
        path: Output PNG path.
        y_true: Targets ``(n,)`` or ``(n, T)``; default: the report's ``points``.
        y_pred: Predictions of the same shape.
        title: Figure title.

    Returns:
        ``path``.
    """
    import numpy as np  # noqa: PLC0415

    plt = _pyplot()
    names = report["target_names"]
    if y_true is not None:
        t = np.asarray(y_true, np.float64).reshape(len(y_true), -1)
        p = np.asarray(y_pred, np.float64).reshape(len(y_pred), -1)
    else:
        t = np.stack([report["points"][n]["y_true"] for n in names], axis=1)
        p = np.stack([report["points"][n]["y_pred"] for n in names], axis=1)
    columns = min(len(names), 3)
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.0 * rows + 0.4), squeeze=False)
    for index, ax in enumerate(axes.ravel()):
        if index >= len(names):
            ax.axis("off")
            continue
        name = names[index]
        ax.scatter(t[:, index], p[:, index], s=8, alpha=0.5)
        low = float(min(t[:, index].min(), p[:, index].min()))
        high = float(max(t[:, index].max(), p[:, index].max()))
        ax.plot([low, high], [low, high], color="gray", linewidth=1, linestyle="--", label="y = x")
        m = report["per_target"][name]
        ax.set_title(f"{name}: MAE {m['mae']:.3g}, RMSE {m['rmse']:.3g}, R2 {m['r2']:.3f}", fontsize=9)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title or _title(report, "Predicted vs true"))
    fig.tight_layout()
    return _save_figure(fig, path)


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------


def _fmt(value, digits=4, short=False):
    """One cell: a number, an aggregate (mean +- std [min, max]), None as '-', else str."""
    if value is None:
        return "-"
    if is_aggregate(value):
        if value["count"] == 1 or (value["std"] == 0 and value["min"] == value["max"]):
            return _fmt(value["mean"], digits)
        text = f"{value['mean']:.{digits}f} +- {value['std']:.{digits}f}"
        return text if short else f"{text} [{value['min']:.{digits}f}, {value['max']:.{digits}f}]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return "nan" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def format_report(report, digits=4):
    """A short, human-readable summary of a report, for the CLI.

    Classification: accuracy, macro/weighted F1 (with macro precision and
    recall), ROC AUC and top-k accuracy; regression: MAE, RMSE and R2 (and per
    target when there are several). An aggregated report prints
    ``mean +- std [min, max]`` for each number.

    Args:
        report: A dict from ``metrics.classification_report``,
            ``metrics.regression_report`` or ``metrics.aggregate_reports``.
        digits: Decimals shown.

    Returns:
        A multi-line string (no trailing newline).

    Raises:
        TypeError: If ``report`` is not a dict.

    Example:

    >>> from mmzoo.training import metrics, reports
    >>> r = metrics.classification_report([0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.7, 0.3]])
    >>> print(reports.format_report(r, digits=3))
    multiclass: 3 examples, 2 classes
      accuracy      0.667
      macro F1      0.667  (precision 0.750, recall 0.750)
      weighted F1   0.667
      ROC AUC       1.000  (macro one-vs-rest)
    """
    if not isinstance(report, dict):
        raise TypeError(f"`report` must be a dict. Received: report={report!r}"[:300])

    def f(key, source=report, short=False):
        return _fmt(source.get(key), digits, short)

    def g(key):  # numbers inside a note: mean +- std only
        return f(key, short=True)

    def row(label, value, note=""):
        return f"  {label:<14}{value}" + (f"  ({note})" if note else "")

    def count(key):
        value = report.get(key)
        return f"{value['mean']:.0f}" if is_aggregate(value) else str(value)

    task = report.get("task", "report")
    if task == "regression":
        what = f"{len(report.get('target_names') or [0])} target(s)"
    else:
        what = f"{count('num_classes')} {'labels' if task == 'multilabel' else 'classes'}"
    if "num_reports" in report:
        header = f"{task}: {report['num_reports']} reports (folds or seeds), about {count('num_examples')} examples"
        lines = [f"{header} each, {what}; mean +- std [min, max]"]
    else:
        lines = [f"{task}: {count('num_examples')} examples, {what}"]
    if task == "regression":
        lines += [row("MAE", f("mae")), row("RMSE", f("rmse")), row("R2", f("r2"))]
        per_target = report.get("per_target") or {}
        if len(per_target) > 1:
            for name, m in per_target.items():
                lines.append(f"  {name}: MAE {f('mae', m)}, RMSE {f('rmse', m)}, R2 {f('r2', m)}")
        return "\n".join(lines)
    if task == "multilabel":
        lines += [row("exact match", f("accuracy")), row("label acc.", f("label_accuracy"))]
    else:
        lines.append(row("accuracy", f("accuracy")))
    if task == "binary":
        positive = (report.get("class_names") or ["", "1"])[-1]
        lines.append(row("positive F1", f("f1"),
                         f"class {positive!r}: precision {g('precision')}, recall {g('recall')}; "
                         f"threshold {g('threshold')}"))
    lines.append(row("macro F1", f("macro_f1"), f"precision {g('macro_precision')}, recall {g('macro_recall')}"))
    lines.append(row("weighted F1", f("weighted_f1")))
    note = {"binary": "positive class", "multiclass": "macro one-vs-rest", "multilabel": "macro over labels"}
    note = note.get(task, "macro")
    skipped = report.get("auc_skipped_classes") or []
    if skipped and task != "binary":
        note += f"; {len(skipped)} class(es) with a single label value skipped"
    lines.append(row("ROC AUC", f("auc"), note))
    for k, value in (report.get("top_k_accuracy") or {}).items():
        if str(k) != "1":  # top-1 is the accuracy (up to ties)
            lines.append(row(f"top-{k} acc.", _fmt(value, digits)))
    return "\n".join(lines)


def format_table(rows, columns, digits=4):
    """Lays out rows as a Markdown table (also readable as plain text).

    Cells are formatted as in ``format_report``: floats with ``digits``
    decimals, aggregates as ``mean +- std [min, max]``, ``None`` as ``-``.

    Args:
        rows: A list of rows; each a sequence of cells in ``columns`` order,
            or a dict keyed by column name (missing keys give ``-``).
        columns: The column names (header).
        digits: Decimals shown for floats.

    Returns:
        The table as a string: header, separator and one line per row, the
        columns padded to equal width (numbers right-aligned).

    Raises:
        ValueError: If ``columns`` is empty or a row has the wrong length.

    Example:

    >>> from mmzoo.training.reports import format_table
    >>> print(format_table([["concat", 0.91234], ["attention", 0.9]], ["model", "accuracy"], digits=3))
    | model     | accuracy |
    | :-------- | -------: |
    | concat    |    0.912 |
    | attention |    0.900 |
    """
    columns = [str(c) for c in columns] if columns is not None else []
    if not columns:
        raise ValueError(f"`columns` must name at least one column. Received: columns={columns!r}")
    cells, numeric = [], [True] * len(columns)
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            row = [row.get(c) for c in columns]
        row = list(row)
        if len(row) != len(columns):
            raise ValueError(f"Row {index} has {len(row)} cells for {len(columns)} columns. Received row: {row!r}")
        for j, v in enumerate(row):
            if not (v is None or is_aggregate(v) or (isinstance(v, numbers.Real) and not isinstance(v, bool))):
                numeric[j] = False
        cells.append([_fmt(v, digits) for v in row])
    widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(columns)]
    widths = [max(w, 4) for w in widths]

    def line(parts):
        return "| " + " | ".join(parts) + " |"

    out = [line(c.ljust(w) for c, w in zip(columns, widths))]
    out.append(line(("-" * (w - 1) + ":") if num else (":" + "-" * (w - 1)) for w, num in zip(widths, numeric)))
    for r in cells:
        out.append(line(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric)))
    return "\n".join(out)
