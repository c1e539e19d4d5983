"""Training-curve and confusion-matrix figures: titled, labelled, splits named by the caller."""

import uuid

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import tensorflow as tf

from mmzoo.training import plots

LOGS = {"loss": [1.9, 1.1, 0.8], "accuracy": [0.4, 0.7, 0.8], "val_loss": [1.7, 1.2, 1.0],
        "val_accuracy": [0.5, 0.6, 0.7]}


@pytest.fixture
def figures(monkeypatch):
    """The figures ``plots`` draws (kept open for inspection)."""
    drawn, close = [], plt.close
    monkeypatch.setattr(plt, "close", drawn.append)
    yield drawn
    for fig in drawn:
        close(fig)


def test_history_plot_has_title_axis_labels_and_split_names(tmp_path, figures):
    path = plots.plot_history(LOGS, str(tmp_path / "curves.png"), title="av_digits_concat: training curves",
                              split_names=("train", "test"))
    assert (tmp_path / "curves.png").stat().st_size > 1000 and path == str(tmp_path / "curves.png")
    (fig,) = figures
    assert fig.get_suptitle() == "av_digits_concat: training curves"
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["loss", "accuracy"]
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy"] and {ax.get_xlabel() for ax in axes} == {"epoch"}
    for ax, name in zip(axes, ["loss", "accuracy"]):
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]
        train, test = ax.get_lines()
        np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(test.get_ydata(), LOGS[f"val_{name}"])


def test_history_plot_defaults_and_errors(tmp_path, figures):
    plots.plot_history({"loss": [1.0, 0.5], "val_loss": [1.2, 0.9]}, str(tmp_path / "a.png"))
    ax = figures[0].get_axes()[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation"]
    assert figures[0].get_suptitle() == "Training curves"
    with pytest.raises(ValueError, match="Received: split_names='test'"):
        plots.plot_history(LOGS, str(tmp_path / "b.png"), split_names="test")
    with pytest.raises(ValueError, match="no logs"):
        plots.plot_history({}, str(tmp_path / "c.png"))


def test_confusion_matrix_counts_and_figure(tmp_path, figures):
    matrix = plots.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [0, 0, 1]])
    plots.plot_confusion_matrix(matrix, ["a", "b", "c"], str(tmp_path / "cm.png"), title="test accuracy 0.750")
    ax = figures[0].get_axes()[0]
    assert ax.get_title() == "test accuracy 0.750" and ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"


def test_figures_are_written_to_a_tensorflow_file_system(figures):
    root = f"ram://{uuid.uuid4().hex}/plots"  # the folder does not exist yet
    path = plots.plot_history(LOGS, f"{root}/curves.png")
    matrix = plots.plot_confusion_matrix(plots.confusion_matrix([0, 1], [0, 0], 2), ["a", "b"], f"{root}/cm.png")
    assert (path, matrix) == (f"{root}/curves.png", f"{root}/cm.png")
    for name in ("curves.png", "cm.png"):
        with tf.io.gfile.GFile(f"{root}/{name}", "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
