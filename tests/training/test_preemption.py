"""Preemption-safe training: ``mmzoo train --backup-dir`` killed with SIGKILL resumes exactly from its backup."""

import json
import os
import posixpath
import signal
import subprocess
import sys
import time
import uuid

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmzoo.training import train
from mmzoo.training.backup import STATE_FILE, TrainingBackup

ARGS = ["--tiny", "--epochs", "4", "--seed", "3", "--deterministic", "--quiet", "--strategy", "default"]


def _command(out, backup):
    return [sys.executable, "-m", "mmzoo.cli", "train", *ARGS, "--output-dir", str(out), "--backup-dir", str(backup)]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _metrics(out):
    with open(out / "av_digits_concat.metrics.json") as f:
        return json.load(f)


def _wait_for_epochs(proc, backup, epochs, deadline):
    while TrainingBackup.epochs_done(str(backup)) < epochs:
        assert proc.poll() is None, "the run ended before its backup: " + proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no backup appeared"
        time.sleep(0.02)


def _kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow  # four `mmzoo train` processes, 85-100 s on 2 cores; the backup itself is tested below
def test_run_killed_in_two_different_epochs_resumes_bit_identical(tmp_path):
    """SIGKILL in epoch 2, rerun, SIGKILL in a later epoch, rerun: the weights equal the uninterrupted run's."""
    reference = subprocess.run(
        _command(tmp_path / "ref", tmp_path / "ref_backup"), env=_env(), check=False, capture_output=True, text=True,
        timeout=240,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert not (tmp_path / "ref_backup").exists(), "the backup is removed once the outputs are written"

    out, backup = tmp_path / "run", tmp_path / "backup"
    killed_after = []
    for epochs_before_kill in (1, 2):
        proc = subprocess.Popen(_command(out, backup), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for_epochs(proc, backup, epochs_before_kill, time.monotonic() + 180)
        _kill(proc)
        killed_after.append(TrainingBackup.epochs_done(str(backup)))
    assert killed_after[0] < killed_after[1] < 4, f"the kills came too late to test resuming: {killed_after}"
    assert not (out / "av_digits_concat.metrics.json").exists()

    resumed = subprocess.run(
        _command(out, backup), env=_env(), check=False, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    ref, got = _metrics(tmp_path / "ref"), _metrics(out)
    assert got["weights_sha256"] == ref["weights_sha256"]
    assert got["history"] == ref["history"]  # every epoch's logs, the restored ones included
    assert got["test"] == ref["test"]
    assert (out / "av_digits_concat" / "saved_model.pb").exists()
    assert not backup.exists()


def _dropout_model():
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 6)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")


@pytest.mark.parametrize("root", ["local", "ram"])
def test_backup_restores_random_state_and_optimizer_exactly(tmp_path, root):
    """Keras's BackupAndRestore does not save the Dropout SeedGenerator: a resumed run draws other masks."""
    folder = str(tmp_path / "backup") if root == "local" else f"ram://{uuid.uuid4().hex}/backup"
    x, y = _data()
    reference = _dropout_model()
    reference.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)

    first = _dropout_model()
    first.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0,
              callbacks=[TrainingBackup(folder, delete_when_done=False)])
    assert TrainingBackup.epochs_done(folder) == 1
    resumed_model = _dropout_model()  # a new process: fresh weights, optimizer and seed state
    backup = TrainingBackup(folder)
    history = resumed_model.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0, callbacks=[backup])
    assert len(history.history["loss"]) == 2 and len(backup.history["loss"]) == 3
    assert train.weights_digest(resumed_model) == train.weights_digest(reference)
    assert not tf.io.gfile.exists(posixpath.join(folder, STATE_FILE))  # deleted when training ended


def test_state_is_the_commit_point_and_old_weights_are_removed(tmp_path):
    x, y = _data()
    folder = str(tmp_path)
    _dropout_model().fit(x, y, epochs=2, batch_size=16, verbose=0,
                         callbacks=[TrainingBackup(folder, delete_when_done=False)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0002.weights.h5", STATE_FILE]
    state = TrainingBackup.read_state(folder)
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    # A kill after an epoch's weights were written but before the state: the state still names epoch 2.
    (tmp_path / "epoch-0003.weights.h5").write_bytes(b"half written")
    assert TrainingBackup.epochs_done(folder) == 2
    _dropout_model().fit(x, y, epochs=3, batch_size=16, verbose=0,
                         callbacks=[TrainingBackup(folder, delete_when_done=False)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-0003.weights.h5", STATE_FILE]
    assert TrainingBackup.epochs_done(folder) == 3


def test_a_backup_of_another_model_or_a_corrupt_state_is_refused(tmp_path):
    x, y = _data()
    _dropout_model().fit(x, y, epochs=1, verbose=0, callbacks=[TrainingBackup(str(tmp_path), delete_when_done=False)])
    other = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16), keras.layers.Dense(1)])
    other.compile("adam", "mse")
    with pytest.raises(ValueError):
        other.fit(x, y, epochs=2, verbose=0, callbacks=[TrainingBackup(str(tmp_path))])
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="state.json is not valid JSON"):
        TrainingBackup.epochs_done(str(tmp_path))
    with pytest.raises(ValueError, match="backup_dir"):
        TrainingBackup("")
