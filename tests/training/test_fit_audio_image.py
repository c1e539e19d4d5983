"""``mmzoo.fit`` on image and audio files and arrays (real MNIST digits with FSDD speech): inference of the
inputs, held-out groups (speakers) and the cross-fitted ensemble."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo.datasets import av_digits_recipe
from mmzoo.training import ensemble
from mmzoo.training import fit as fit_lib


def test_fit_infers_image_and_audio_files_and_the_export_evaluates_the_same(av_dir, tmp_path):
    result = mmzoo.fit(str(av_dir / "train.csv"), label="digit", test=str(av_dir / "test.csv"), fusion="late",
                       epochs=1, output_dir=str(tmp_path / "av"), verbose=0)
    assert result.plan.kinds == {"image": "image", "audio": "audio"}
    assert result.plan.features["image"].image_shape == (28, 28, 1)
    assert result.plan.features["audio"].sampling_rate == 8000
    assert result.plan.label.classes == ["0", "1", "2", "3"] and result.plan.task == "multiclass"
    report = mmzoo.evaluate(str(tmp_path / "av" / "model"), str(av_dir / "test.csv"))
    assert report["num_examples"] == 16
    assert report["accuracy"] == pytest.approx(result.test["accuracy"])


def test_fit_takes_arrays_of_images_and_waveforms(shared_data):
    arrays = av_digits_recipe.load_arrays(degraded=False)
    (inputs, labels) = arrays["train"]
    keep = np.concatenate([np.flatnonzero(labels == d)[:30] for d in range(3)])
    data = {"picture": (inputs["image"][keep, ..., 0] * 255).astype("uint8"), "sound": inputs["audio"][keep],
            "digit": labels[keep]}
    result = mmzoo.fit(data, label="digit", fusion="concat", epochs=1, verbose=0)
    assert result.plan.kinds == {"picture": "image", "sound": "audio"}
    assert result.plan.features["image"].image_shape == (28, 28, 1)
    assert result.plan.features["audio"].num_samples >= 512 and result.plan.task == "multiclass"
    with pytest.raises(fit_lib.FitError, match="same length"):
        mmzoo.fit({"picture": data["picture"][:5], "digit": data["digit"][:4]}, label="digit", verbose=0)


def test_the_ensembles_validation_score_is_cross_fitted_not_in_sample():
    arrays = av_digits_recipe.load_arrays(degraded=False)
    (inputs, labels) = arrays["train"]

    def rows(digits, start, count):
        keep = np.concatenate([np.flatnonzero(labels == d)[start:start + count] for d in digits])
        return {"picture": (inputs["image"][keep, ..., 0] * 255).astype("uint8"), "sound": inputs["audio"][keep],
                "digit": labels[keep]}

    train, valid = rows(range(3), 0, 30), rows(range(3), 30, 20)
    result = mmzoo.fit(train, label="digit", valid=valid, fusion="ensemble", epochs=2, verbose=0)
    assert result.fusion == "ensemble"
    valid_ds = fit_lib._datasets(result.plan, fit_lib._load(valid, "valid")[0], 16, 0, False, "raise")
    # What fit reports (and fusion="auto" selects on): each half of the validation rows combined with weights
    # fit on the other half.
    logits, targets = ensemble.branch_logits(result.model, valid_ds)
    honest = fit_lib.report_of_outputs(targets, ensemble.cross_fitted_outputs(result.model, logits, targets, seed=0),
                                       result.plan)
    assert result.valid["num_examples"] == honest["num_examples"] == 60
    assert result.valid["log_loss"] == pytest.approx(honest["log_loss"], abs=1e-4)
    # The final weights were fit on all the validation rows: scored on them, they can only look better.
    in_sample = fit_lib.evaluate_model(result.model, valid_ds, result.plan)
    assert result.valid["log_loss"] >= in_sample["log_loss"] - 1e-3


def test_fit_with_group_validates_on_held_out_speakers_and_keeps_the_group_out_of_the_inputs(shared_data, tmp_path):
    from mmzoo.data import splits

    recordings = shared_data / "fsdd" / "recordings"
    lines = ["audio,speaker,digit"]
    for speaker in ("george", "jackson", "lucas", "nicolas"):
        for digit in range(3):
            lines += [f"{recordings / f'{digit}_{speaker}_{i}.wav'},{speaker},{digit}" for i in range(4)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    result = mmzoo.fit(str(tmp_path / "train.csv"), label="digit", group="speaker", epochs=1, verbose=0)
    assert result.plan.kinds == {"audio": "audio", "speaker": "ignore"} and list(result.plan.features) == ["audio"]
    speakers = [line.split(",")[1] for line in lines[1:]]
    _, valid = splits.group_split(speakers, 0.1, seed=0)
    assert result.valid["num_examples"] == len(valid) == 12  # one whole speaker
    from mmzoo.training import compare as compare_lib

    table = compare_lib.compare(str(tmp_path / "train.csv"), "digit", group="speaker", fusions=(), seeds=1, epochs=1)
    assert [r["name"] for r in table.rows] == ["audio"] and table.split == "valid"


@pytest.fixture(scope="module")
def av_speakers_csv(shared_data, tmp_path_factory):
    """train.csv: real MNIST PNGs with FSDD WAVs of the same digit, 4 speakers (digits 0-2), a speaker column."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("av_speakers")
    images, labels = av_digits_recipe.read_mnist(str(shared_data / "mnist"))
    lines = ["image,audio,speaker,digit"]
    for s, speaker in enumerate(("george", "jackson", "lucas", "nicolas")):
        for digit in range(3):
            positions = np.flatnonzero(labels == digit)
            for i in range(3):
                png = folder / f"{speaker}_{digit}_{i}.png"
                tf.io.write_file(str(png), tf.io.encode_png(images[positions[3 * s + i]][..., None]))
                wav = shared_data / "fsdd" / "recordings" / f"{digit}_{speaker}_{i}.wav"
                lines.append(f"{png.name},{wav},{speaker},{digit}")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return folder / "train.csv"


def test_ensemble_folds_cross_fits_the_weights_on_unseen_groups_and_bags_the_fold_models(av_speakers_csv):
    # The bagged model's export and serving are covered by tests/training/test_ensemble.py (ensemble.bag).
    result = mmzoo.fit(str(av_speakers_csv), label="digit", group="speaker", fusion="ensemble", ensemble_folds=2,
                       epochs=1, verbose=0)
    members = [layer for layer in result.model.layers if layer.name.startswith("member")]
    assert [m.name for m in members] == ["member0", "member1", "member2"]  # the final ensemble and one per fold
    assert result.model.name.endswith("_bagged") and result.fusion == "ensemble"
    # Three separately trained ensembles, whose branch logits the model averages.
    x, _ = next(iter(fit_lib._datasets(result.plan, mmzoo.data.read_manifest(str(av_speakers_csv)), 8, 0, False,
                                       "raise")))
    logits = [m(x, training=False)["audio"].numpy() for m in members]
    assert not np.allclose(logits[0], logits[1], atol=1e-3) and not np.allclose(logits[1], logits[2], atol=1e-3)
    averaged = keras.Model(result.model.input, result.model.get_layer("audio_logits").output)(x, training=False)
    np.testing.assert_allclose(averaged, np.mean(logits, axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ensemble_folds": 2, "fusion": "ensemble"}, "pass `group` too"),
        ({"ensemble_folds": 2, "fusion": "concat", "group": "speaker"}, "applies to fusion='ensemble'"),
        ({"ensemble_folds": 1, "fusion": "ensemble", "group": "speaker"}, "at least 2"),
        ({"ensemble_folds": 4, "fusion": "ensemble", "group": "speaker"}, "3 are left after the validation split"),
        ({"ensemble_folds": 2, "fusion": "ensemble", "group": "speaker", "modalities": ("audio",)},
         r"the model has one \(audio\)"),
    ],
)
def test_bad_ensemble_folds_are_refused_before_training(av_speakers_csv, kwargs, match):
    with pytest.raises(fit_lib.FitError, match=match):
        mmzoo.fit(str(av_speakers_csv), label="digit", epochs=1, verbose=0, **kwargs)


def test_cli_fit_names_ensemble_folds_without_a_group(av_speakers_csv, tmp_path, capsys):
    from mmzoo.cli.main import main

    code = main(["fit", str(av_speakers_csv), "--label", "digit", "--fusion", "ensemble", "--ensemble-folds", "2",
                 "--output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "ensemble_folds cross-fits" in err[0] and "`group`" in err[0], err
