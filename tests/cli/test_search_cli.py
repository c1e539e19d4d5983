"""``mmzoo index`` / ``mmzoo search`` on a dual encoder trained on real OpenMoji pairs."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import cli
from mmzoo.retrieval import Index

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "serving"))  # --import-mode=importlib
import serving_fixtures as fx

PAIRS = 24


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dual encoder fitted on 24 real emoji (image, annotation) pairs, exported; the images in a folder."""
    keras.utils.set_random_seed(0)
    # The tiny harness version (4 filters) collapses on this task; a little wider memorises the 24 pairs.
    model = mmzoo.build("image_text_retrieval", image_shape=(32, 32, 3), image_filters=(16, 32), vocabulary_size=100,
                        sequence_length=8, text_dim=32, embedding_dim=32)
    columns = fx.columns_for("image_text_retrieval", model)
    records = fx.openmoji_records()[:PAIRS]
    folder = tmp_path_factory.mktemp("emoji")
    paths = []
    for r in records:
        source = os.path.join(fx.data_dir(), "openmoji", "images", f"{r['hexcode']}.png")
        paths.append(str(folder / f"{r['hexcode']}.png"))
        shutil.copy(source, paths[-1])
    raw = {"image": [Path(p).read_bytes() for p in paths], "text": [r["annotation"].encode() for r in records]}
    x = fx.decode_with_data(columns, raw)
    model.fit(tf.data.Dataset.from_tensor_slices(x).batch(PAIRS), epochs=150, verbose=0)
    export = mmzoo.export(model, str(tmp_path_factory.mktemp("model") / "retrieval"), preprocessing=columns)
    return {"export": export, "folder": folder, "paths": paths, "texts": [r["annotation"] for r in records]}


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_index_then_search_by_text_and_by_image(trained, tmp_path, capsys):
    index_dir = tmp_path / "index"
    code, out, err = _run(capsys, "index", trained["export"], "--images", trained["folder"], "--output", index_dir)
    assert code == 0, err
    assert f"{PAIRS}/{PAIRS} images" in err and "wrote" in out
    index = Index.load(str(index_dir))
    assert len(index) == PAIRS and sorted(index.paths) == sorted(trained["paths"])

    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join(trained["texts"]) + "\n\n", encoding="utf-8")  # a blank line is skipped
    code, out, err = _run(capsys, "search", index_dir, "--queries", queries, "--top-k", 3, "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["query"] for line in lines] == trained["texts"]  # one line per query, in order
    assert all(len(line["results"]) == 3 and {"id", "path", "score"} <= set(line["results"][0]) for line in lines)
    assert all(line["results"][0]["score"] >= line["results"][1]["score"] for line in lines)
    first = [line["results"][0]["path"] for line in lines]
    found = np.mean([hit == path for hit, path in zip(first, trained["paths"])])
    assert found >= 0.75, f"the training pair's image came first for only {found:.0%} of its texts"

    code, out, _ = _run(capsys, "search", index_dir, "--image", trained["paths"][5], "--top-k", 2)
    assert code == 0 and out.splitlines()[1].split()[-1] == trained["paths"][5]  # an image finds itself
    code, out, _ = _run(capsys, "search", index_dir, "--text", trained["texts"][0])
    assert code == 0 and len(out.splitlines()) == 1 + 10


def test_one_line_errors_exit_2(trained, tmp_path, capsys):
    code, _, err = _run(capsys, "search", tmp_path / "nowhere", "--text", "smile")
    assert code == 2 and "no mmzoo index here" in err and len(err.strip().splitlines()) == 1
    index_dir = tmp_path / "index"
    assert _run(capsys, "index", trained["export"], "--images", trained["folder"], "--output", index_dir)[0] == 0
    code, _, err = _run(capsys, "search", index_dir, "--text", "   ")
    assert code == 2 and "the query is empty" in err
    _, av_digits = fx.av_digits_export()
    code, _, err = _run(capsys, "index", av_digits, "--images", trained["folder"], "--output", tmp_path / "x")
    assert code == 2 and "has no embed_image_raw signature" in err
    (trained["folder"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    try:
        code, _, err = _run(capsys, "index", trained["export"], "--images", trained["folder"], "--output",
                            tmp_path / "y")
    finally:
        (trained["folder"] / "broken.png").unlink()
    assert code == 2 and "broken.png: cannot embed it" in err


def test_evaluate_reports_retrieval_metrics_of_a_dual_encoder_export(trained, tmp_path, capsys):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"image": p, "annotation": t}) + "\n"
                             for p, t in zip(trained["paths"], trained["texts"])), encoding="utf-8")
    code, out, err = _run(capsys, "evaluate", trained["export"], pairs, "--text", "annotation", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["pairs"] == PAIRS
    assert {"image_to_text@1", "text_to_image@10", "image_to_text_median_rank", "text_to_image_mrr"} <= set(report)
    assert report["text_to_image@10"] >= report["text_to_image@1"] >= 0.75  # the pairs it was fitted on
    code, out, _ = _run(capsys, "evaluate", trained["export"], pairs, "--text", "annotation")
    assert code == 0 and out.startswith(f"retrieval: {PAIRS} image-text pairs") and "median rank" in out
    code, _, err = _run(capsys, "evaluate", trained["export"], pairs)  # no `text` column
    assert code == 2 and "['text'] are not in the data" in err
