"""``mmzoo predict`` and ``mmzoo export-tflite`` on a real export and real files."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, cli, heads
from mmzoo.cli import predict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "serving"))  # --import-mode=importlib
import serving_fixtures as fx


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An exported AV-digits model, two real PNGs and two real FSDD WAVs in one folder."""
    _, path = fx.av_digits_export()
    folder = tmp_path_factory.mktemp("files")
    pngs, _ = fx.mnist_pngs(2)
    out = {"export": path, "folder": folder, "images": [], "wavs": fx.fsdd_paths(2)}
    for i, png in enumerate(pngs):
        (folder / f"digit{i}.png").write_bytes(png)
        out["images"].append(str(folder / f"digit{i}.png"))
    (folder / "short.wav").write_bytes(Path(out["wavs"][0]).read_bytes()[:100])
    return out


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _expected(files):
    served = mmzoo.load(files["export"])
    raw = {
        "image": [Path(p).read_bytes() for p in files["images"]],
        "audio": [Path(p).read_bytes() for p in files["wavs"]],
    }
    return served.predict_raw(raw)["probabilities"]


def test_flags_print_class_and_probability_per_example(files, capsys):
    argv = ["predict", files["export"]]
    for image, wav in zip(files["images"], files["wavs"]):
        argv += ["--image", image, "--audio", wav]
    code, out, err = _run(capsys, *argv, "--top-k", "2")
    assert code == 0, err
    lines = out.strip().splitlines()
    expected = _expected(files)
    assert len(lines) == 2
    for line, probabilities, wav in zip(lines, expected, files["wavs"]):
        label, top = line.split("\t")
        assert os.path.basename(wav) in label
        best = int(np.argmax(probabilities))
        assert top.startswith(f"{best} ({probabilities[best]:.4f})"), (top, probabilities)
        assert len(top.split("  ")) == 2


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_manifest_paths_are_relative_to_the_manifest(files, capsys, kind):
    folder = files["folder"]
    rows = [{"image": os.path.basename(i), "audio": os.path.relpath(w, folder)}
            for i, w in zip(files["images"], files["wavs"])]
    manifest = folder / f"batch.{kind}"
    if kind == "jsonl":
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        manifest.write_text("image,audio\n" + "".join(f"{r['image']},{r['audio']}\n" for r in rows))
    code, out, err = _run(capsys, "predict", files["export"], "--manifest", manifest, "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    expected = _expected(files)
    assert [r["predictions"][0]["class"] for r in records] == [str(int(np.argmax(p))) for p in expected]
    np.testing.assert_allclose([r["predictions"][0]["probability"] for r in records], expected.max(axis=1), atol=1e-6)


def test_export_manifest_and_files_on_a_tensorflow_file_system(files, capsys):
    root = f"ram://{uuid.uuid4().hex}"
    for folder, _, names in os.walk(files["export"]):  # the export, copied there
        target = root + "/export" + folder[len(files["export"]):]
        tf.io.gfile.makedirs(target)
        for name in names:
            tf.io.gfile.copy(os.path.join(folder, name), f"{target}/{name}")
    rows = []
    for i, (image, wav) in enumerate(zip(files["images"], files["wavs"])):
        for path, name in ((image, f"images/{i}.png"), (wav, f"audio/{i}.wav")):
            tf.io.gfile.makedirs(os.path.dirname(f"{root}/data/{name}"))
            tf.io.gfile.copy(path, f"{root}/data/{name}")
        rows.append(f"images/{i}.png,audio/{i}.wav\r\n")
    with tf.io.gfile.GFile(f"{root}/data/batch.csv", "w") as f:
        f.write("image,audio\r\n" + "".join(rows))
    code, out, err = _run(capsys, "predict", f"{root}/export", "--manifest", f"{root}/data/batch.csv", "--json")
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    np.testing.assert_allclose([r["predictions"][0]["probability"] for r in records], _expected(files).max(axis=1),
                               atol=1e-6)
    code, _, err = _run(capsys, "predict", f"{root}/export", "--image", f"{root}/data/nope.png",
                        "--audio", f"{root}/data/audio/0.wav")
    assert code == 2 and f"{root}/data/nope.png: file not found (input 'image')" in err


def _bad_cases(files):
    image, wav, folder = files["images"][0], files["wavs"][0], files["folder"]
    (folder / "bad.jsonl").write_text('{"image": "digit0.png"}\n')
    (folder / "broken.jsonl").write_text("{not json\n")
    return {
        "missing file": (["--image", folder / "nope.png", "--audio", wav], "nope.png: file not found (input 'image')"),
        "png as audio": (["--image", image, "--audio", image], "digit0.png: not a WAV file (input 'audio'"),
        "wav as image": (["--image", wav, "--audio", wav], "not a PNG, JPEG, GIF or BMP image (input 'image')"),
        "missing input": (["--image", image], "missing input 'audio'"),
        "unknown input": (
            ["--image", image, "--audio", wav, "--text", "seven"], "--text: this model has no 'text' input"
        ),
        "counts differ": (["--image", image, "--image", image, "--audio", wav], "same number of values"),
        "truncated wav": (["--image", image, "--image", image, "--audio", wav, "--audio", folder / "short.wav"],
                          "short.wav"),
        "manifest row": (["--manifest", folder / "bad.jsonl"], "example 1: missing input 'audio'"),
        "manifest json": (["--manifest", folder / "broken.jsonl"], "line 1: not valid JSON"),
        "manifest type": (["--manifest", image], "expected a .jsonl or .csv file"),
    }


@pytest.mark.parametrize(
    "case", ["missing file", "png as audio", "wav as image", "missing input", "unknown input", "counts differ",
             "truncated wav", "manifest row", "manifest json", "manifest type"],
)
def test_bad_inputs_exit_2_with_one_line_naming_the_problem(files, capsys, case):
    args, expected = _bad_cases(files)[case]
    code, out, err = _run(capsys, "predict", files["export"], *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("mmzoo predict: error: ") and expected in err, err


def test_not_an_export_is_a_clear_error(files, capsys):
    code, _, err = _run(capsys, "predict", files["folder"], "--image", files["images"][0])
    assert code == 2 and "No SavedModel at" in err, err
    code, _, err = _run(capsys, "predict", files["folder"] / "missing", "--image", files["images"][0])
    assert code == 2 and "no such folder" in err, err


def test_export_tflite_converts_an_export_and_reports_accuracy(files, capsys, tmp_path):
    out_file = tmp_path / "av.tflite"
    code, out, err = _run(capsys, "export-tflite", files["export"], out_file, "--quantize", "none")
    assert code == 0, err
    assert out_file.is_file() and f"wrote {out_file}" in out
    assert "AV-digits test split (250 examples)" in out and "(+0.0 points)" in out, out
    served = mmzoo.load(files["export"])
    x = {k: np.asarray(v) for k, v in fx.av_digits_test_inputs(4).items()}
    expected = served.predict(x)["probabilities"]
    np.testing.assert_allclose(mmzoo.serving.tflite.TFLiteModel(str(out_file)).predict(x), expected, atol=1e-5)


def test_export_tflite_bad_arguments(files, capsys, tmp_path):
    code, _, err = _run(capsys, "export-tflite", tmp_path / "missing.keras", tmp_path / "m.tflite")
    assert code == 2 and "missing.keras: no such file or folder" in err, err
    code, _, err = _run(capsys, "export-tflite", files["export"], tmp_path / "m.bin")
    assert code == 2 and "expected a .tflite file name" in err, err
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = _run(capsys, "export-tflite", tmp_path / "notes.txt", tmp_path / "m.tflite")
    assert code == 2 and "expected a .keras file" in err, err


def test_predict_prints_the_class_names_the_model_carried(files, capsys, tmp_path):
    """Names come from the export's metadata, i.e. from the model's head (not from the preset's "0".."9")."""
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    keras.utils.set_random_seed(0)
    model = mmzoo.compose(
        [branches.image_cnn((28, 28, 1), filters=(4,), name="image"),
         branches.audio_spectrogram_cnn(4000, 8000, filters=(4,), name="audio")],
        head=heads.multiclass(10, class_names=words), hidden=(8,),
    )
    path = mmzoo.export(model, str(tmp_path / "words"), preprocessing="av_digits")
    code, out, err = _run(capsys, "predict", path, "--image", files["images"][0], "--audio", files["wavs"][0],
                          "--top-k", "3", "--json")
    assert code == 0, err
    record = json.loads(out)
    served = mmzoo.load(path)
    raw = {"image": [Path(files["images"][0]).read_bytes()], "audio": [Path(files["wavs"][0]).read_bytes()]}
    probabilities = served.predict_raw(raw)["probabilities"][0]
    assert [p["class"] for p in record["predictions"]] == [words[k] for k in np.argsort(-probabilities)[:3]]


def test_format_predictions_follows_the_task():
    labels = ["a.png", "b.png"]
    # Binary: the decided class (class_id, by the model's threshold) comes first, even below P = 0.5.
    binary = {"probabilities": np.array([[0.4], [0.1]], "float32"), "class_id": np.array([1, 0], "int32")}
    lines = predict.format_predictions(binary, ["ham", "spam"], labels, top_k=2, task="binary")
    assert lines == ["a.png\tspam (0.4000)  ham (0.6000)", "b.png\tham (0.9000)  spam (0.1000)"]
    # Multi-label: the predicted label set, most likely first.
    multilabel = {"probabilities": np.array([[0.9, 0.2, 0.6], [0.1, 0.2, 0.3]], "float32"),
                  "labels": np.array([[1, 0, 1], [0, 0, 0]], "int32")}
    lines = predict.format_predictions(multilabel, ["red", "green", "blue"], labels, task="multilabel", as_json=True)
    assert [[x["label"] for x in json.loads(line)["labels"]] for line in lines] == [["red", "blue"], []]
    lines = predict.format_predictions(multilabel, None, labels, task="multilabel")
    assert lines == ["a.png\t0 (0.9000)  2 (0.6000)", "b.png\t(no label)"]
    # Regression: the values, named by the targets.
    scores = {"scores": np.array([[1.5, -2.0], [0.0, 3.25]], "float32")}
    lines = predict.format_predictions(scores, ["price", "age"], labels, task="regression")
    assert lines == ["a.png\tprice: 1.5000  age: -2.0000", "b.png\tprice: 0.0000  age: 3.2500"]
