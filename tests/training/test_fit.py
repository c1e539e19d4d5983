"""``mmzoo.fit`` / ``evaluate`` / ``compare`` on small real manifests (OpenMoji emoji + text, spoken digits)."""

import json
import os
import subprocess
import sys
import uuid

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo.branches import efficientnet_lite
from mmzoo.training import fit as fit_lib

GROUPS = ("animals-nature", "flags", "food-drink", "travel-places")


def _rows(shared_data, per_group, offset=0):
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [json.loads(line) for line in f]
    out = []
    for group in GROUPS:
        members = [r for r in rows if r["group"] == group]
        out += members[offset:offset + per_group]
    return [{"hexcode": r["hexcode"], "annotation": r["annotation"], "tags": r["tags"], "group": r["group"]}
            for r in out]


@pytest.fixture(scope="module")
def emoji_dir(shared_data, tmp_path_factory):
    """train.jsonl (160 emojis of 4 groups), test.jsonl (40 others), images/ beside them."""
    folder = tmp_path_factory.mktemp("emoji")
    os.symlink(shared_data / "openmoji" / "images", folder / "images")
    test_rows = _rows(shared_data, 10, offset=40)
    for row in test_rows[::7]:
        row["tags"] = ""  # an empty field of one of several text columns is a value, not a bad row
    for name, rows in (("train.jsonl", _rows(shared_data, 40)), ("test.jsonl", test_rows)):
        with open(folder / name, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return folder


COLUMNS = {"images/{hexcode}.png": "image", "annotation": "text", "tags": "text"}


def test_fit_selects_on_validation_and_exports_a_model_that_serves_the_same_files(emoji_dir, tmp_path):
    result = mmzoo.fit(str(emoji_dir / "train.jsonl"), label="group", columns=COLUMNS,
                       test=str(emoji_dir / "test.jsonl"), fusion="concat", epochs=2, batch_size=32, image_size=32,
                       output_dir=str(tmp_path / "run"), verbose=0)
    # Colour images go through the bundled pretrained encoder, frozen: training left its weights as shipped.
    assert result.plan.encoders == {"image": "efficientnet_lite0"}
    trunk = result.model.get_layer("image_efficientnet_lite0")
    np.testing.assert_array_equal(trunk.get_layer("stem_conv").kernel.numpy(),
                                  efficientnet_lite._weights()["stem_conv/kernel"])
    # One input per text column, each with its own vocabulary (an empty field stays visible).
    assert set(result.plan.features) == {"image", "annotation", "tags"} and result.plan.task == "multiclass"
    assert result.plan.features["tags"].allow_empty and result.plan.features["tags"].columns == ["tags"]
    assert result.valid["num_examples"] == 16  # a stratified 10% of 160
    assert result.test["num_examples"] == 40 and 0.0 <= result.test["accuracy"] <= 1.0
    assert set(result.test["per_class"]) == set(GROUPS)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["test"]["accuracy"] == pytest.approx(result.test["accuracy"])

    # The export, in a process without mmzoo, on the raw test files: same probabilities as the Keras model.
    manifest = fit_lib.as_manifest(str(emoji_dir / "test.jsonl"))
    keras_probs = result.model.predict(fit_lib._datasets(result.plan, manifest, 64, 0, False, "raise"), verbose=0)
    script = f"""
import json, numpy as np, tensorflow as tf, tensorflow_text  # noqa
rows = [json.loads(l) for l in open({str(emoji_dir / 'test.jsonl')!r})]
m = tf.saved_model.load({str(tmp_path / 'run' / 'model')!r})
images = [open({str(emoji_dir)!r} + '/images/' + r['hexcode'] + '.png', 'rb').read() for r in rows]
assert any(r['tags'] == '' for r in rows)
out = m.signatures['serving_raw'](image=tf.constant(images), annotation=tf.constant([r['annotation'] for r in rows]),
                                  tags=tf.constant([r['tags'] for r in rows]))
np.save({str(tmp_path / 'probs.npy')!r}, out['probabilities'].numpy())
assert 'mmzoo' not in __import__('sys').modules
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), keras_probs, atol=1e-4)

    again = mmzoo.evaluate(str(tmp_path / "run" / "model"), str(emoji_dir / "test.jsonl"))
    assert again["accuracy"] == pytest.approx(result.test["accuracy"])


def test_validation_selection_restores_the_best_epoch(emoji_dir):
    import keras

    class Record(keras.callbacks.Callback):
        """Records val_loss and weights per epoch; from epoch 2 on, spoils the weights so later epochs are worse."""

        def on_train_begin(self, logs=None):
            self.val_losses, self.weights = [], []

        def on_epoch_end(self, epoch, logs=None):
            self.val_losses.append(logs["val_loss"])
            self.weights.append([w.copy() for w in self.model.get_weights()])
            if epoch >= 1:
                rng = np.random.default_rng(epoch)
                self.model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) if w.dtype.kind == "f" else w
                                        for w in self.model.get_weights()])

    record = Record()
    result = mmzoo.fit(str(emoji_dir / "train.jsonl"), label="group", columns={"annotation": "text"}, epochs=5,
                       patience=10, callbacks=[record], verbose=0)
    best = int(np.argmin(record.val_losses))
    assert best < len(record.val_losses) - 1, record.val_losses  # the best epoch is not the last one
    assert result.valid["best_epoch"] == best + 1
    for got, want in zip(result.model.get_weights(), record.weights[best]):
        np.testing.assert_array_equal(got, want)


def test_cross_validation_reports_each_fold_and_the_aggregate(emoji_dir):
    result = mmzoo.fit(str(emoji_dir / "train.jsonl"), label="group", columns={"annotation": "text"}, epochs=1,
                       folds=2, verbose=0)
    assert len(result.folds) == 2
    assert sum(r["num_examples"] for r in result.folds) == 160  # the test folds partition the data
    accuracies = [r["accuracy"] for r in result.folds]
    assert result.cv["accuracy"]["mean"] == pytest.approx(np.mean(accuracies))
    assert result.cv["accuracy"]["std"] == pytest.approx(np.std(accuracies, ddof=1))


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mmzoo.cli", *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd)


def test_cli_fit_and_evaluate_json(emoji_dir, tmp_path):
    out = tmp_path / "cli"
    run = _cli("fit", str(emoji_dir / "train.jsonl"), "--label", "group", "--text", "annotation", "--text", "tags",
               "--fusion", "concat", "--epochs", "3", "--quiet", "--output-dir", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "model" / "saved_model.pb").is_file() and (out / "report.json").is_file()
    evaluated = _cli("evaluate", str(out / "model"), str(emoji_dir / "test.jsonl"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "auc"} <= set(report) and report["num_examples"] == 40


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label", "nope"], "label: column 'nope' is not in the data"),
        (["--label", "group", "--text", "missing_column"], "'missing_column' is not in the data"),
        (["--label", "group", "--numeric", "annotation"], "must hold a finite number"),
        (["--label", "group", "--test", "/no/such/test.jsonl"], "test: file not found"),
        (["--label", "group", "--text", "annotation", "--valid-fraction", "1.5"], "valid_fraction"),
        (["--label", "group", "--image", "annotation", "--epochs", "0"], "--epochs must be positive"),
        (["--label", "group", "--group", "nope"], "group: column 'nope' is not in the data"),
        (["--label", "group", "--group", "group"], "the label column 'group' cannot also be the group column"),
        (["--label", "group", "--group", "tags", "--folds", "2"], "pass one of `group` or `folds`"),
        (["--label", "group", "--group", "tags", "--valid", "x.jsonl"], "with `valid` given there is nothing"),
    ],
)
def test_fit_errors_are_one_line_with_exit_code_2(emoji_dir, tmp_path, capsys, args, message):
    from mmzoo.cli.main import main

    code = main(["fit", str(emoji_dir / "train.jsonl"), *args, "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err


def test_each_text_column_is_its_own_input_and_an_empty_field_is_a_value(emoji_dir):
    manifest = fit_lib.as_manifest(str(emoji_dir / "test.jsonl"))
    assert any(r["tags"] == "" for r in manifest.records)
    plan = fit_lib.plan_data(manifest, "group", COLUMNS, verbose=False)
    annotation, tags = plan.features["annotation"], plan.features["tags"]
    assert plan.modalities == {"image": "image", "annotation": "text", "tags": "text"}
    assert annotation.tokenizer is not tags.tokenizer and annotation.allow_empty and tags.allow_empty
    fit_lib._check_rows(plan, manifest, "test", "raise")  # no bad row: "" is "no tags"
    # A modality kind keeps all its inputs (a text-only baseline reads both columns).
    assert set(fit_lib.plan_data(manifest, "group", COLUMNS, modalities=("text",), verbose=False).features) == {
        "annotation", "tags"}
    # One text column keeps the name "text", and an empty text there is still a bad row.
    single = fit_lib.plan_data(manifest, "group", {"tags": "text"}, verbose=False)
    assert set(single.features) == {"text"} and not single.features["text"].allow_empty
    with pytest.raises(ValueError, match="empty text in column"):
        fit_lib._check_rows(single, manifest, "test", "raise")
    empty = fit_lib.as_manifest([{**r, "tags": ""} for r in manifest.records])
    with pytest.raises(fit_lib.FitError, match=r"text column\(s\) \['tags'\] are empty in every training row"):
        fit_lib.plan_data(empty, "group", {"annotation": "text", "tags": "text"}, verbose=False)
    # Two columns that would be one input name are refused, naming both.
    clash = fit_lib.as_manifest([{**r, "a b": r["annotation"], "a_b": r["tags"]} for r in manifest.records])
    with pytest.raises(fit_lib.FitError, match="'a b' and 'a_b' would both be the model input 'a_b'"):
        fit_lib.plan_data(clash, "group", {"a b": "text", "a_b": "text"}, verbose=False)


def test_image_encoder_auto_takes_the_pretrained_encoder_for_colour_images_only(emoji_dir, av_dir):
    emoji = fit_lib.as_manifest(str(emoji_dir / "train.jsonl"))
    plan = fit_lib.plan_data(emoji, "group", COLUMNS, verbose=False)
    assert plan.encoders == {"image": "efficientnet_lite0"} and plan.features["image"].image_shape == (224, 224, 3)
    assert "through the frozen pretrained efficientnet_lite0" in plan.describe()
    small = fit_lib.plan_data(emoji, "group", COLUMNS, verbose=False, image_size=24)  # under the trunk's 32 px
    assert small.encoders == {} and small.features["image"].image_shape == (24, 24, 3)
    assert fit_lib.plan_data(emoji, "group", COLUMNS, verbose=False, image_encoder="cnn").encoders == {}
    digits = fit_lib.as_manifest(str(av_dir / "train.csv"))
    assert fit_lib.plan_data(digits, "digit", verbose=False).encoders == {}  # grey digits: the CNN
    grey = fit_lib.plan_data(digits, "digit", verbose=False, image_size=48, image_encoder="mobilenet_v2")
    assert grey.encoders == {"image": "mobilenet_v2"} and grey.features["image"].image_shape == (48, 48, 3)
    with pytest.raises(fit_lib.FitError,
                       match="image_encoder must be one of auto, efficientnet_lite0, mobilenet_v2, cnn"):
        fit_lib.plan_data(emoji, "group", COLUMNS, verbose=False, image_encoder="resnet")
    with pytest.raises(fit_lib.FitError, match="needs image_size of at least 32. Received: image_size=16"):
        fit_lib.plan_data(emoji, "group", COLUMNS, verbose=False, image_size=16, image_encoder="efficientnet_lite0")


def test_training_on_cached_features_gives_the_model_that_takes_images_the_same_outputs(emoji_dir):
    manifest = fit_lib.as_manifest(str(emoji_dir / "train.jsonl"))
    plan = fit_lib.plan_data(manifest, "group", COLUMNS, verbose=False, image_size=32)
    valid = fit_lib.as_manifest(str(emoji_dir / "test.jsonl"))
    net, _, report, _ = fit_lib._train_once(
        plan, manifest, valid, fusion="concat", model="auto", seed=0, epochs=2, batch_size=32, learning_rate=1e-3,
        dropout=0.3, hidden=(32,), width=1.0, patience=5, callbacks=(), tensorboard=None, verbose=0, on_error="raise")
    assert net.input["image"].shape == (None, 32, 32, 3)  # the trained layers now sit behind the encoder
    raw = fit_lib._datasets(plan, valid, 16, 0, False, "raise")
    assert fit_lib.evaluate_model(net, raw, plan)["accuracy"] == pytest.approx(report["accuracy"])
    encoded = fit_lib._datasets(plan, valid, 16, 0, False, "raise", encoded=True)
    assert len(plan.encoded._splits) == 2  # train and valid, each encoded once
    features = np.concatenate([x["image"].numpy() for x, _ in encoded])
    assert features.shape == (40, efficientnet_lite.FEATURES)
    pooled = keras.Model(net.input["image"], net.get_layer("image_pool").output)
    images = np.concatenate([x["image"].numpy() for x, _ in raw])
    np.testing.assert_allclose(pooled.predict(images, verbose=0), features, rtol=1e-4, atol=1e-4)


def test_fit_refuses_a_single_class_label_and_an_empty_split(tmp_path):
    manifest = tmp_path / "one.csv"
    manifest.write_text("text,label\nhello there,a\ngood day,a\n")
    with pytest.raises(fit_lib.FitError, match="single class"):
        mmzoo.fit(str(manifest), label="label", verbose=0)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(fit_lib.FitError, match="no rows"):
        mmzoo.fit(str(empty), label="label", verbose=0)
    with pytest.raises(fit_lib.FitError, match="cannot write"):
        mmzoo.fit(str(manifest), label="label", output_dir="/proc/nope/out", verbose=0)


def test_time_budget_searches_with_keras_tuner_and_returns_the_best_trial(emoji_dir):
    result = mmzoo.fit(str(emoji_dir / "train.jsonl"), label="group", columns=COLUMNS, image_size=16, epochs=2,
                       time_budget=12, verbose=0)
    assert result.trials and result.trials[0]["fusion"] == "concat"  # the first trial: the defaults
    keys = {"fusion", "width", "learning_rate", "dropout", "valid_score", "seconds"}
    assert all(keys <= set(t) for t in result.trials)
    best = max(result.trials, key=lambda t: t["valid_score"])
    assert result.fusion == best["fusion"]
    assert result.valid["accuracy"] == pytest.approx(best["valid_score"], abs=1e-4)  # that trial's model, not a retrain


def test_cli_compare_trains_each_input_and_fusion_on_one_split(emoji_dir, tmp_path, capsys):
    from mmzoo.cli.main import main

    code = main(["compare", str(emoji_dir / "train.jsonl"), "--label", "group", "--image", "images/{hexcode}.png",
                 "--text", "annotation", "--test", str(emoji_dir / "test.jsonl"), "--fusions", "concat",
                 "--seeds", "1", "--epochs", "1", "--image-size", "16", "--output-dir", str(tmp_path / "cmp")])
    out = capsys.readouterr().out
    assert code == 0 and "| fusion: concat |" in out
    table = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert table["metric"] == "accuracy" and table["split"] == "test"
    assert [r["name"] for r in table["rows"]] == ["image", "text", "fusion: concat"]
    assert all(len(r["scores"]) == 1 and r["min"] <= r["mean"] <= r["max"] for r in table["rows"])
    assert (tmp_path / "cmp" / "compare.png").is_file()


def test_fit_and_evaluate_read_and_write_a_tensorflow_file_system(shared_data, tmp_path, monkeypatch):
    """The manifest, the outputs, the export and the evaluation report all on ``ram://``; nothing local."""
    root = f"ram://{uuid.uuid4().hex}"
    with tf.io.gfile.GFile(f"{root}/data/train.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in _rows(shared_data, 2)))  # 8 emojis, 2 of each group
    monkeypatch.chdir(tmp_path)  # whatever a local-only implementation would write lands here, not in the repo
    result = mmzoo.fit(f"{root}/data/train.jsonl", label="group", valid=f"{root}/data/train.jsonl",
                       columns={"annotation": "text"}, fusion="concat", epochs=1, output_dir=f"{root}/run", verbose=0)
    assert result.export_path == f"{root}/run/model" and tf.io.gfile.exists(f"{root}/run/model/saved_model.pb")
    with tf.io.gfile.GFile(f"{root}/run/report.json") as f:
        assert json.load(f)["model"] == f"{root}/run/model"
    assert tf.io.gfile.exists(f"{root}/run/valid_report.json")
    report = mmzoo.evaluate(result.export_path, f"{root}/data/train.jsonl", output_dir=f"{root}/eval")
    assert report["accuracy"] == pytest.approx(result.valid["accuracy"])
    assert {"report.json", "report_confusion_matrix.png"} <= set(tf.io.gfile.listdir(f"{root}/eval"))
    assert not any(tmp_path.iterdir())


def test_cli_compare_names_a_bad_group_column(emoji_dir, tmp_path, capsys):
    from mmzoo.cli.main import main

    code = main(["compare", str(emoji_dir / "train.jsonl"), "--label", "group", "--text", "annotation",
                 "--group", "speaker", "--output-dir", str(tmp_path / "cmp")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "group: column 'speaker' is not in the data" in err[0], err


