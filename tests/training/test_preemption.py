"""Preemption-safe training: ``mmzoo train --backup-dir`` killed with SIGKILL resumes from its backup."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

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
        _command(tmp_path / "ref", tmp_path / "ref_backup"), env=_env(), capture_output=True, text=True, timeout=240
    )
    assert reference.returncode == 0, reference.stderr[-2000:]
    assert not (tmp_path / "ref_backup").exists(), "BackupAndRestore deletes its backup once training ends"

    out, backup = tmp_path / "run", tmp_path / "backup"
    proc = subprocess.Popen(_command(out, backup), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not (backup / "training_metadata.json").exists():
        assert proc.poll() is None, "the run ended before its first backup: " + proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no backup appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with open(backup / "training_metadata.json") as f:
        done = json.load(f)["epoch"]
    assert 1 <= done < 4, f"the kill came too late to test resuming (epochs done: {done})"
    assert not (out / "av_digits_concat.metrics.json").exists()

    resumed = subprocess.run(_command(out, backup), env=_env(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    ref, got = _metrics(tmp_path / "ref"), _metrics(out)
    assert len(got["history"]["loss"]) == len(ref["history"]["loss"]) == 4
    assert got["history"]["loss"][:done] == pytest.approx(ref["history"]["loss"][:done], rel=1e-5)
    assert abs(got["test"]["accuracy"] - ref["test"]["accuracy"]) <= 0.01, (got["test"], ref["test"])
    assert (out / "av_digits_concat" / "saved_model.pb").exists()
    assert not backup.exists()
