"""``train_and_evaluate`` and ``mmzoo train``: the main job, its options and its errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, heads
from mmzoo.datasets import av_digits_recipe as av_digits
from mmzoo.serving import read_metadata
from mmzoo.training import train


def _cli(*args, timeout=120):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-m", "mmzoo.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_main_job_beats_chance_widely_and_writes_outputs(tmp_path):
    result = train.train_and_evaluate(
        epochs=4, output_dir=str(tmp_path), verbose=0, seed=0, steps_per_execution=3, precision="float32",
        image_filters=(8, 16), audio_filters=(8, 16), hidden=(64,), learning_rate=3e-3,
    )
    assert result["test"]["accuracy"] >= 0.6, result["test"]
    assert result["chief"] and len(result["history"]["loss"]) == 4
    for kind in ("curves", "confusion", "metrics"):
        assert os.path.exists(result["paths"][kind]), kind
    assert os.path.exists(os.path.join(result["paths"]["saved_model"], "saved_model.pb"))
    with open(result["paths"]["metrics"]) as f:
        metrics = json.load(f)
    assert metrics["weights_sha256"] == train.weights_digest(result["model"])
    assert metrics["strategy"] and metrics["num_replicas"] == 1
    # Class names come from the model's head (the recipe's CLASS_NAMES), into the metrics and the export.
    assert metrics["task"] == "multiclass" and metrics["class_names"] == list(av_digits.CLASS_NAMES)
    assert read_metadata(result["paths"]["saved_model"])["class_names"] == list(av_digits.CLASS_NAMES)
    # The exported model must also work on clean real inputs (the train split holds clean copies).
    clean_inputs, clean_labels = av_digits.load_arrays(degraded=False)["test"]
    clean = np.argmax(result["model"].predict(clean_inputs, verbose=0), -1)
    assert (clean == clean_labels).mean() >= 0.8


# Two epochs of a small AV-digits model: 1,800 train pairs at batch 32 are 57 steps an epoch.
SMALL_RUN = {"epochs": 2, "verbose": 0, "export_model": False, "image_filters": (8,), "audio_filters": (4,),
             "hidden": (16,), "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def one_step_per_call(tmp_path_factory):
    return train.train_and_evaluate(output_dir=str(tmp_path_factory.mktemp("one")), **SMALL_RUN)


def test_steps_per_execution_keeps_the_epochs_and_weights_of_one_step_per_call(tmp_path, one_step_per_call):
    # 3 per call divides the 57 steps. Two epochs, so that an epoch running into the next one's batches shows:
    # with 4 per call (60 steps) the first epoch's val_loss moved by 0.7%.
    three = train.train_and_evaluate(output_dir=str(tmp_path / "three"), steps_per_execution=3, **SMALL_RUN)
    one = one_step_per_call
    assert three["model"].steps_per_execution == 3
    assert int(three["model"].optimizer.iterations) == int(one["model"].optimizer.iterations) == 2 * 57
    # The same steps in the same epochs (bit-equal here, not promised): each epoch's validation loss and the weights.
    np.testing.assert_allclose(three["history"]["val_loss"], one["history"]["val_loss"], rtol=1e-4)
    for a, b in zip(three["model"].get_weights(), one["model"].get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_cached_frontend_trains_the_same_steps_and_keeps_the_frontend_in_the_model(tmp_path, one_step_per_call):
    cached = train.train_and_evaluate(output_dir=str(tmp_path), cache_frontend=True, **SMALL_RUN)
    one = one_step_per_call
    model = cached["model"]
    assert model.input["audio"].shape == (None, 4000)  # raw waveforms in: the front end stays for serving
    assert any(isinstance(layer, keras.layers.MelSpectrogram) for layer in model.layers)
    assert int(model.optimizer.iterations) == int(one["model"].optimizer.iterations) == 2 * 57
    # The same batches in the same order, the front end computed once in tf.data instead of in every step: each
    # epoch's validation loss agrees to 1e-5 here (another batch order moves it by 0.7%). The weights are not
    # compared: the mel features differ in the last bits, and Adam turns that into 0.7% on the spectrogram
    # BatchNorm's gamma, whose gradients are near zero.
    np.testing.assert_allclose(cached["history"]["val_loss"], one["history"]["val_loss"], rtol=1e-3)
    # The test metrics were computed by the whole model, on raw inputs.
    np.testing.assert_allclose(cached["test"]["loss"], one["test"]["loss"], rtol=1e-3)


def test_steps_per_execution_that_does_not_divide_an_epoch_is_refused(tmp_path):
    # Keras runs whole calls: 8 per call would train 64 steps an epoch and eat into the next epoch's batches.
    with pytest.raises(ValueError, match=r"must divide the 57 training steps.*Divisors: 1, 3, 19, 57\. "
                                         r"Received: steps_per_execution=8"):
        train.train_and_evaluate(epochs=1, output_dir=str(tmp_path), verbose=0, export_model=False,
                                 steps_per_execution=8, image_filters=(4,), audio_filters=(4,), hidden=(8,))


def test_precision_is_applied_then_restored(tmp_path):
    before = keras.config.dtype_policy().name
    result = train.train_and_evaluate(
        epochs=1, output_dir=str(tmp_path), verbose=0, export_model=False, precision="mixed_bfloat16",
        image_filters=(4,), audio_filters=(4,), hidden=(8,),
    )
    assert result["model"].dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"precision": "fp16"}, "Received: precision='fp16'"),
        ({"steps_per_execution": 0}, "Received: steps_per_execution=0"),
        ({"strategy": "gpu"}, "Received: kind='gpu'"),
        ({"strategy": 3}, "Received: strategy=3"),
        ({"jit_compile": "yes"}, "Received: jit_compile='yes'"),
        ({"cache_frontend": "yes"}, "Received: cache_frontend='yes'"),
        ({"model_name": "nope"}, "Unknown zoo model 'nope'"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train.train_and_evaluate(**kwargs)


def _main(capsys, *args):
    """``mmzoo`` in this process: ``(exit code, stderr)`` (argparse errors exit through ``SystemExit``)."""
    from mmzoo.cli.main import main

    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def test_cli_errors_exit_2_with_one_line(capsys):
    unknown = _cli("train", "--model", "nope")  # one real process: its exit status and its last stderr line
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines()[-1].startswith("mmzoo train: error: Unknown zoo model 'nope'")
    code, err = _main(capsys, "train", "--strategy", "gpu")
    assert code == 2 and "invalid choice: 'gpu'" in err
    code, err = _main(capsys, "train", "--steps-per-execution", "0")
    assert code == 2 and "steps_per_execution=0" in err and len(err.strip().splitlines()) == 1, err
    code, err = _main(capsys, "train", "--strategy", "tpu")
    assert code == 2 and "no TPU was found" in err and len(err.strip().splitlines()) == 1, err
    code, _ = _main(capsys)
    assert code == 2


def test_write_outputs_labels_the_confusion_matrix_with_the_heads_names_and_threshold(tmp_path):
    """A binary model: predictions by the threshold its head carries, rows/columns named by its class names."""
    images, digits = av_digits.read_mnist(os.path.join(mmzoo.data.resolve_data_dir(), "mnist"))
    x = {"image": images[:48, ..., None].astype("float32") / 255.0}
    y = (digits[:48] % 2).astype("float32")
    keras.utils.set_random_seed(0)
    model = mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")],
                          head=heads.binary(class_names=["even", "odd"]), hidden=(8,))
    p = model.predict(x, verbose=0)[:, 0]
    # A threshold in the widest gap between the middle predictions: no prediction is near it.
    ordered = np.sort(p)
    middle = range(len(p) // 4, 3 * len(p) // 4)
    i = max(middle, key=lambda k: ordered[k + 1] - ordered[k])
    threshold = float(ordered[i] + ordered[i + 1]) / 2
    assert ordered[i + 1] - ordered[i] > 1e-5 and ((p >= threshold) != (p >= 0.5)).any(), "precondition"
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"].endswith("HeadActivation"):
            layer["config"]["threshold"] = threshold
    model2 = keras.Model.from_config(config)
    model2.set_weights(model.get_weights())
    test_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    paths, matrix = train._write_outputs(
        model2, "binary_demo", test_ds, {"accuracy": 0.5}, {"loss": [1.0, 0.5]}, str(tmp_path), False, {}
    )
    predicted = (p >= threshold).astype(int)
    expected = np.array([[np.sum((y == t) & (predicted == q)) for q in (0, 1)] for t in (0, 1)])
    np.testing.assert_array_equal(matrix, expected)
    with open(paths["metrics"]) as f:
        metrics = json.load(f)
    assert metrics["task"] == "binary" and metrics["class_names"] == ["even", "odd"]
    assert os.path.exists(paths["confusion"])
