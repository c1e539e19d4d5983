"""``mmzoo fit --task retrieval`` / ``mmzoo.fit(..., task="retrieval")`` on real OpenMoji image-annotation pairs."""

from __future__ import annotations

import contextlib
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import cli
from mmzoo.training.fit import FitError

TRAIN, TEST = 160, 40


def _write_pairs(path, records, data_dir):
    folder = os.path.join(data_dir, "openmoji", "images")
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"picture": os.path.join(folder, f"{r['hexcode']}.png"),
                                "caption": r["annotation"], "group": r["group"]}) + "\n")
    return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory, data_dir):
    with open(os.path.join(data_dir, "openmoji", "openmoji.jsonl"), encoding="utf-8") as f:
        records = [json.loads(line) for line in f][: TRAIN + TEST]
    folder = tmp_path_factory.mktemp("pairs")
    return {"train": _write_pairs(folder / "train.jsonl", records[:TRAIN], data_dir),
            "test": _write_pairs(folder / "test.jsonl", records[TRAIN:], data_dir)}


@pytest.fixture(scope="module")
def fitted(pairs, tmp_path_factory):
    """``mmzoo fit --task retrieval`` run once, its printed output and its folder."""
    out_dir = tmp_path_factory.mktemp("run")
    argv = ["fit", str(pairs["train"]), "--task", "retrieval", "--image", "picture", "--text", "caption",
            "--test", str(pairs["test"]), "--epochs", "25", "--patience", "25", "--batch-size", "32",
            "--image-size", "16", "--output-dir", str(out_dir), "--quiet"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(argv)
    return {"code": code, "out": stdout.getvalue(), "dir": out_dir}


def test_cli_trains_evaluates_and_exports_a_dual_encoder(fitted):
    assert fitted["code"] == 0, fitted["out"]
    assert "test: retrieval: 40 image-text pairs" in fitted["out"] and "wrote model:" in fitted["out"]
    report = json.loads((fitted["dir"] / "report.json").read_text())
    assert report["task"] == "retrieval" and report["columns"] == {"picture": "image", "caption": "text"}
    assert report["test"]["pairs"] == TEST and report["valid"]["pairs"] == round(0.1 * TRAIN)
    signatures = tf.saved_model.load(str(fitted["dir"] / "model")).signatures
    assert {"embed_image_raw", "embed_text_raw", "embed_image", "embed_text"} <= set(signatures)


def test_export_evaluates_with_the_columns_of_training(fitted, pairs, capsys):
    capsys.readouterr()
    code = cli.main(["evaluate", str(fitted["dir"] / "model"), str(pairs["test"]), "--json"])  # no --image/--text
    out, err = capsys.readouterr()
    assert code == 0, err
    served = json.loads(out)
    trained = json.loads((fitted["dir"] / "report.json").read_text())["test"]
    # The raw-bytes export and the Keras encoders in training rank the same pairs the same way.
    for key in ("image_to_text@1", "text_to_image@5", "image_to_text@10", "text_to_image_mrr"):
        assert served[key] == pytest.approx(trained[key], abs=1.5 / TEST), key


def test_it_learns_the_pairs_it_was_trained_on(fitted, pairs):
    report = mmzoo.evaluate(str(fitted["dir"] / "model"), str(pairs["train"]))
    assert report["pairs"] == TRAIN
    chance = 10 / TRAIN
    assert min(report["image_to_text@10"], report["text_to_image@10"]) > 4 * chance, report


def test_python_api_and_its_errors(pairs, tmp_path):
    columns = {"picture": "image", "caption": "text"}
    result = mmzoo.fit(str(pairs["test"]), columns=columns, task="retrieval", epochs=1, batch_size=8, image_size=16,
                       valid_fraction=0.2, verbose=0)
    assert result.fusion == "dual_encoder" and result.plan.task == "retrieval" and result.export_path is None
    assert {"image_to_text@10", "text_to_image_median_rank", "best_epoch"} <= set(result.valid)
    embeddings = result.model.image_encoder(np.zeros((2, 16, 16, 3), "float32")).numpy()
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-4)

    with pytest.raises(FitError, match="takes no label"):
        mmzoo.fit(str(pairs["train"]), "group", columns=columns, task="retrieval")
    with pytest.raises(FitError, match="needs `columns` as a dict"):
        mmzoo.fit(str(pairs["train"]), task="retrieval")
    with pytest.raises(FitError, match="exactly one 'image' column"):
        mmzoo.fit(str(pairs["train"]), columns={"caption": "text"}, task="retrieval")
    with pytest.raises(FitError, match="column 'nope'|nope"):
        mmzoo.fit(str(pairs["train"]), columns={"picture": "image", "nope": "text"}, task="retrieval")
    with pytest.raises(FitError, match="task must be None"):
        mmzoo.fit(str(pairs["train"]), "group", task="ranking")
    with pytest.raises(FitError, match="`label` is required"):
        mmzoo.fit(str(pairs["train"]))
    with pytest.raises(FitError, match="batch_size must be >= 2"):
        mmzoo.fit(str(pairs["train"]), columns=columns, task="retrieval", batch_size=1)


@pytest.mark.parametrize("extra, message", [
    (["--label", "group"], "takes no --label"),
    (["--fusion", "concat"], "takes no --fusion"),
    (["--image-encoder", "cnn"], "takes no --image-encoder"),
])
def test_cli_refuses_classifier_options(pairs, tmp_path, capsys, extra, message):
    code = cli.main(["fit", str(pairs["train"]), "--task", "retrieval", "--image", "picture", "--text", "caption",
                     "--output-dir", str(tmp_path), *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_cli_fit_without_label_names_the_option(pairs, tmp_path, capsys):
    code = cli.main(["fit", str(pairs["train"]), "--image", "picture", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--label is required" in err and "--task retrieval" in err
