"""Training-curve and confusion-matrix figures (matplotlib, headless), written as PNG through ``tf.io.gfile``."""

from __future__ import annotations

import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mmzoo import _gfile


def _save(fig, path):
    """Writes ``fig`` to ``path`` (local or ``gs://``; format from its extension), closes it and returns ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=os.path.splitext(os.fspath(path))[1][1:] or None, dpi=100)
    plt.close(fig)
    return _gfile.write_bytes(path, buffer.getvalue())


def plot_history(history, path, title=None, split_names=("train", "validation")):
    """Plots every metric of a Keras ``History`` to a PNG, one panel per metric.

    Each panel is titled and labelled with the metric's name and ``epoch``,
    with one curve per split: the training logs (``loss``, ``accuracy``...)
    and the ``val_`` logs of ``fit(validation_data=...)``, named by
    ``split_names`` (pass ``("train", "test")`` when the data given as
    ``validation_data`` is the test split).

    Args:
        history: ``History`` or its ``.history`` dict.
        path: Output PNG path (local or ``gs://``; its folder is created).
        title: Figure title (default: ``"Training curves"``).
        split_names: Legend names of the training and the ``val_`` curves.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``split_names`` is not two strings or the history is empty.

    Example:

    >>> import os, tempfile
    >>> from mmzoo.training import plots
    >>> logs = {"loss": [1.2, 0.8], "accuracy": [0.5, 0.7], "val_loss": [1.0, 0.9], "val_accuracy": [0.6, 0.65]}
    >>> path = plots.plot_history(logs, os.path.join(tempfile.mkdtemp(), "curves.png"), title="demo",
    ...                           split_names=("train", "test"))
    >>> os.path.getsize(path) > 0
    True
    """
    if not (isinstance(split_names, (list, tuple)) and len(split_names) == 2
            and all(isinstance(n, str) and n for n in split_names)):
        raise ValueError(f"`split_names` must be two non-empty strings. Received: split_names={split_names!r}")
    logs = getattr(history, "history", history)
    names = [k for k in logs if not k.startswith("val_")] or [k[len("val_"):] for k in logs]
    if not names:
        raise ValueError(f"`history` has no logs to plot. Received: history={history!r}")
    train_name, val_name = split_names
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        label = name.replace("_", " ")
        for key, split in ((name, train_name), (f"val_{name}", val_name)):
            if key in logs:
                values = np.asarray(logs[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=split)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or "Training curves")
    fig.tight_layout()
    return _save(fig, path)


def confusion_matrix(labels, predictions, num_classes):
    """Returns the ``(num_classes, num_classes)`` count matrix (rows: true class)."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predictions, int)), 1)
    return matrix


def plot_confusion_matrix(matrix, class_names, path, title="Confusion matrix"):
    """Draws a confusion matrix with counts in each cell to a PNG.

    Args:
        matrix: ``(n, n)`` counts, rows are true classes.
        class_names: ``n`` labels.
        path: Output PNG path (local or ``gs://``; its folder is created).
        title: Figure title.

    Returns:
        ``path``.
    """
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1 + 0.5 * n, 1 + 0.5 * n))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > top / 2 else "black", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
