"""Preemption-safe training: ``mmzoo train --backup-dir`` killed with SIGKILL resumes from its backup."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mmzoo.training import train

ARGS = ["--tiny", "--epochs", "4", "--seed", "3", "--deterministic", "--quiet", "--strategy", "default"]


def _command(out, backup):
    return [sys.executable, "-m", "mmzoo.cli", "train", *ARGS, "--output-dir", str(out), "--backup-dir", str(backup)]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _metrics(out):
    with open(out / "av_digits_concat.metrics.json") as f:
        return json.load(f)


def test_killed_run_resumes_from_backup_with_same_epochs_and_accuracy(tmp_path):
    reference = subprocess.run(
        _command(tmp_path / "ref", tmp_path / "ref_backup"), env=_env(), check=False, capture_output=True, text=True,
        timeout=240,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert not (tmp_path / "ref_backup").exists(), "BackupAndRestore deletes its backup once training ends"

    out, backup = tmp_path / "run", tmp_path / "backup"
    proc = subprocess.Popen(_command(out, backup), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not train._epochs_done(str(backup)):  # our own record of finished epochs (the history file)
        assert proc.poll() is None, "the run ended before its first backup: " + proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no backup appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done = train._epochs_done(str(backup))
    assert 1 <= done < 4, f"the kill came too late to test resuming (epochs done: {done})"
    assert not (out / "av_digits_concat.metrics.json").exists()

    resumed = subprocess.run(
        _command(out, backup), env=_env(), check=False, capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    ref, got = _metrics(tmp_path / "ref"), _metrics(out)
    assert len(got["history"]["loss"]) == len(ref["history"]["loss"]) == 4
    assert got["history"]["loss"][:done] == pytest.approx(ref["history"]["loss"][:done], rel=1e-5)
    assert abs(got["test"]["accuracy"] - ref["test"]["accuracy"]) <= 0.01, (got["test"], ref["test"])
    assert (out / "av_digits_concat" / "saved_model.pb").exists()
    assert not backup.exists()


class _Logs(train._ResumableHistory):
    """Drives the callback as ``fit`` does, without a model."""

    def run(self, first_epoch, epochs):
        self.on_train_begin()
        for epoch in range(first_epoch, epochs):
            self.on_epoch_begin(epoch)
            self.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "accuracy": 0.1 * (epoch + 1)})


def test_history_record_counts_finished_epochs_and_is_written_atomically(tmp_path):
    assert train._epochs_done(None) == 0 and train._epochs_done(str(tmp_path)) == 0
    _Logs(str(tmp_path)).run(0, 2)
    assert train._epochs_done(str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [train._HISTORY_FILE]  # no temporary file left
    resumed = _Logs(str(tmp_path))
    resumed.run(2, 4)  # BackupAndRestore restored 2 epochs: the history goes on from there
    assert resumed.history["loss"] == pytest.approx([1.0, 1 / 2, 1 / 3, 1 / 4])
    assert train._epochs_done(str(tmp_path)) == 4


def test_history_behind_the_restored_epoch_warns_and_marks_the_lost_logs(tmp_path):
    """A kill between BackupAndRestore's save and the history's: the lost epoch's logs are NaN, not shifted."""
    _Logs(str(tmp_path)).run(0, 1)
    resumed = _Logs(str(tmp_path))
    with pytest.warns(UserWarning, match="restored 2 finished epochs but its history records 1"):
        resumed.run(2, 3)
    loss = resumed.history["loss"]
    assert len(loss) == 3 and loss[0] == 1.0 and loss[1] != loss[1] and loss[2] == pytest.approx(1 / 3)
