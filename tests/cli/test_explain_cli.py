"""``mmzoo explain`` on real exports and real files (an MNIST PNG, an FSDD WAV, an OpenMoji PNG and its name)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, cli, data, heads

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "serving"))  # --import-mode=importlib
import serving_fixtures as fx

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tiny AV-digits export of the serving tests, a real MNIST digit as PNG and a real FSDD WAV."""
    model, path = fx.av_digits_export()
    folder = tmp_path_factory.mktemp("explain")
    pngs, _ = fx.mnist_pngs(1)
    (folder / "digit.png").write_bytes(pngs[0])
    return {"model": model, "export": path, "folder": folder, "image": str(folder / "digit.png"),
            "audio": fx.fsdd_paths(1)[0]}


def _run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _raw_probabilities(export, raw):
    return mmzoo.load(export).predict_raw(raw)["probabilities"][0]


def test_json_has_shares_ablation_and_top_classes(files, capsys):
    png = files["folder"] / "why.png"
    code, out, err = _run(capsys, "explain", files["export"], "--image", files["image"], "--audio", files["audio"],
                          "--output", png, "--json", "--steps", "8")
    assert code == 0, err
    record = json.loads(out)
    assert sorted(record["shares"]) == sorted(record["ablation"]) == ["audio", "image"]
    assert sum(record["shares"].values()) == pytest.approx(1.0)
    probabilities = _raw_probabilities(files["export"], {"image": [Path(files["image"]).read_bytes()],
                                                         "audio": [Path(files["audio"]).read_bytes()]})
    best = int(np.argmax(probabilities))
    assert record["top_classes"][0]["class"] == str(best)  # decoded exactly as serving_raw decodes
    assert record["top_classes"][0]["probability"] == pytest.approx(float(probabilities[best]), abs=1e-5)
    assert record["target"]["class_id"] == best
    # The export holds assets/model.keras, so the audio's gradients are taken on the model's own spectrogram.
    assert record["attribution_method"]["audio"] == "integrated_gradients_spectrogram"
    assert record["png"] == str(png)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 10_000
    assert "warning" not in err


def test_keras_model_in_the_export_and_the_text_summary(files, capsys, tmp_path, monkeypatch):
    """With ``assets/model.keras`` the Keras model is explained: time-frequency saliency on its spectrogram."""
    export = tmp_path / "with_keras"
    shutil.copytree(files["export"], export)
    files["model"].save(export / "assets" / "model.keras")
    shutil.copy(files["image"], tmp_path / "digit.png")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, "explain", export, "--image", "digit.png", "--audio", files["audio"],
                          "--target", "3", "--steps", "4")
    assert code == 0, err
    assert "warning" not in err  # the Keras model gives the export's outputs on the decoded files
    lines = out.strip().splitlines()
    assert lines[0] == f"example: {os.path.basename(files['audio'])} digit.png"
    assert lines[2].startswith("explained class: 3 ")
    rows = {line.split()[0]: line for line in lines[4:-1]}
    assert sorted(rows) == ["audio", "image"]
    assert rows["audio"].endswith("(integrated_gradients_spectrogram)")
    path = tmp_path / "explanation.png"  # the default --output, in the working folder
    assert lines[-1] == f"wrote explanation: {path}" and path.read_bytes()[:8] == PNG_MAGIC


def test_text_export_occludes_tokens_and_takes_absent_inputs(capsys, tmp_path, shared_data):
    keras.utils.set_random_seed(4)
    texts = [r["annotation"] for r in fx.openmoji_records()]
    tokenizer = data.VocabTokenizer.fit(texts, sequence_length=8, vocabulary_size=200)
    image = branches.image_cnn((24, 24, 3), filters=(4,), name="image")
    text = branches.text_embedding(sequence_length=8, vocabulary_size=200, embedding_dim=8, name="text")
    model = mmzoo.compose([image, text], head=heads.multiclass(3, class_names=["a", "b", "c"]), hidden=(8,),
                          modality_dropout=0.2)  # its inputs are optional in the export
    columns = {"image": data.ImageColumn("image", (24, 24, 3)), "text": data.TextColumn("text", tokenizer)}
    export = mmzoo.export(model, str(tmp_path / "emoji"), preprocessing=columns)
    emoji = shared_data / "openmoji" / "images" / "1F600.png"
    code, out, err = _run(capsys, "explain", export, "--image", emoji, "--text", "grinning face", "--json",
                          "--output", tmp_path / "why.png", "--steps", "4", "--target", "b")
    assert code == 0, err
    record = json.loads(out)
    assert record["attribution_method"]["text"] == "occlusion"
    assert record["target"] == {"class": "b", "class_id": 1, "score": pytest.approx(record["target"]["score"])}
    assert "warning" not in err  # the CLI checks its decoded inputs against serving_raw's outputs
    assert (tmp_path / "why.png").read_bytes()[:8] == PNG_MAGIC
    # Without --text the text is absent (all padding), as an empty string is for serving_raw.
    code, out, err = _run(capsys, "explain", export, "--image", emoji, "--json", "--output", tmp_path / "no_text.png",
                          "--steps", "2")
    assert code == 0, err
    record = json.loads(out)
    assert record["example"] == "1F600.png text=(absent)" and "warning" not in err
    assert record["ablation"]["text"] == pytest.approx(0, abs=1e-6)
    assert record["shares"]["image"] == pytest.approx(1.0, abs=1e-3)
    assert (tmp_path / "no_text.png").read_bytes()[:8] == PNG_MAGIC


def test_inputs_by_name_and_a_text_field_that_may_be_empty(capsys, tmp_path, shared_data):
    keras.utils.set_random_seed(5)
    records = fx.openmoji_records()
    annotation_tok = data.VocabTokenizer.fit([r["annotation"] for r in records], sequence_length=6,
                                             vocabulary_size=200)
    tags_tok = data.VocabTokenizer.fit([r["tags"] for r in records], sequence_length=8, vocabulary_size=200)
    parts = [branches.image_cnn((24, 24, 3), filters=(4,), name="image"),
             branches.text_embedding(sequence_length=6, vocabulary_size=200, embedding_dim=8, name="annotation"),
             branches.text_embedding(sequence_length=8, vocabulary_size=200, embedding_dim=8, name="tags")]
    model = mmzoo.compose(parts, head=heads.multiclass(3, class_names=["a", "b", "c"]), hidden=(8,))
    columns = {"image": data.ImageColumn("image", (24, 24, 3)),
               "annotation": data.TextColumn("annotation", annotation_tok),
               "tags": data.TextColumn("tags", tags_tok, allow_empty=True)}
    export = mmzoo.export(model, str(tmp_path / "fields"), preprocessing=columns)
    emoji = shared_data / "openmoji" / "images" / "1F600.png"
    code, out, err = _run(capsys, "explain", export, "--image", emoji, "--input", "annotation=grinning face",
                          "--input", "tags=cheerful, happy", "--json", "--output", tmp_path / "a.png", "--steps", "2")
    assert code == 0, err
    assert set(json.loads(out)["shares"]) == {"image", "annotation", "tags"} and "warning" not in err
    # Left out, the field that may be empty is the empty text (no tags), not a missing input.
    code, out, err = _run(capsys, "explain", export, "--image", emoji, "--input", "annotation=grinning face",
                          "--json", "--output", tmp_path / "b.png", "--steps", "2")
    assert code == 0, err
    assert json.loads(out)["ablation"]["tags"] == pytest.approx(0, abs=1e-6) and "warning" not in err
    for argv, message in ((["--input", "caption=x"], "expected NAME=VALUE with NAME one of"),
                          (["--input", "annotation"], "expected NAME=VALUE"),
                          (["--text", "x"], "this model has no 'text' input"),
                          ([], "missing input 'annotation' (--input annotation=...)")):
        code, out, err = _run(capsys, "explain", export, "--image", emoji, *argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--image", "missing.png", "--audio", "{audio}"], "missing.png: file not found (input 'image')"),
        (["--image", "{image}", "--audio", "{image}"], "not a WAV file"),
        (["--image", "{image}", "--audio", "{audio}", "--text", "seven"], "this model has no 'text' input"),
        (["--image", "{image}"], "missing input 'audio' (--audio)"),
        (["--image", "{image}", "--audio", "{audio}", "--target", "eleven"], "--target"),
        (["--image", "{image}", "--audio", "{audio}", "--output", "no/such/dir/x.png"], "--output"),
        (["--image", "{image}", "--audio", "{audio}", "--steps", "0"], "--steps"),
    ],
)
def test_user_errors_exit_2_with_one_line(files, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(files["folder"])
    argv = [a.format(image=files["image"], audio=files["audio"]) for a in extra]
    code, out, err = _run(capsys, "explain", files["export"], *argv)
    assert code == 2 and not out
    assert err.startswith("mmzoo explain: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_not_an_export_exits_2(tmp_path, capsys):
    code, _, err = _run(capsys, "explain", tmp_path / "nothing", "--image", "x.png")
    assert code == 2 and "no such folder" in err


def test_help_needs_no_tensorflow(tmp_path):
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "mmzoo.cli", "explain", "--help"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: mmzoo explain" in proc.stdout and "--json" in proc.stdout
