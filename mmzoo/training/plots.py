"""Training-curve and confusion-matrix figures (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_history(history, path):
    """Plots every metric of a Keras ``History`` (train and validation) to a PNG.

    Args:
        history: ``History`` or its ``.history`` dict.
        path: Output PNG path.

    Returns:
        ``path``.
    """
    logs = getattr(history, "history", history)
    names = [k for k in logs if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], label="train")
        if f"val_{name}" in logs:
            ax.plot(epochs, logs[f"val_{name}"], label="validation")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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
        path: Output PNG path.
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
