"""The ``mmzoo`` command itself: parsing without TensorFlow, a quiet log, ``list --details``, one-line errors."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys

import pytest

cli_main = importlib.import_module("mmzoo.cli.main")  # the module (``mmzoo.cli.main`` is also the function)

# Lines TensorFlow's native libraries print when nothing keeps them quiet.
TF_LOG_LINE = re.compile(
    r"absl::InitializeLog|cudart_stub|cuda drivers|^[IWEF]\d{4} |cpu_feature_guard|oneDNN", re.MULTILINE
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MMZOO_TF_LOG", "TF_CONFIG")}
    return {**env, **extra}


def _mmzoo(*args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mmzoo.cli", *args], env=env or _env(), check=False, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture
def no_tensorflow(tmp_path):
    """An environment where ``import tensorflow`` fails: a command that imports it cannot succeed."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    return _env(PYTHONPATH=os.pathsep.join([str(tmp_path / "fake"), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["list", "--help"], ["predict", "--help"],
                                  ["export-tflite", "--help"]])
def test_help_needs_no_tensorflow(argv, no_tensorflow):
    proc = _mmzoo(*argv, env=no_tensorflow, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: mmzoo" in proc.stdout and not proc.stderr


def test_bad_option_is_one_line_and_exit_2_without_tensorflow(no_tensorflow):
    proc = _mmzoo("train", "--strategy", "gpu", env=no_tensorflow, timeout=60)
    assert proc.returncode == 2
    assert "invalid choice: 'gpu'" in proc.stderr and "tensorflow was imported" not in proc.stderr


def test_parsing_imports_no_tensorflow():
    code = (
        "import importlib, sys\n"
        "m = importlib.import_module('mmzoo.cli.main')\n"
        "for argv in (['list', '--details'], ['train', '--tiny', '--epochs', '1'], ['--verbose', 'list']):\n"
        "    m._parser().parse_args(argv)\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(), check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_verbose_is_accepted_before_and_after_the_subcommand():
    parser = cli_main._parser()
    assert parser.parse_args(["--verbose", "list"]).verbose
    assert parser.parse_args(["list", "--verbose"]).verbose
    assert not parser.parse_args(["list"]).verbose


def test_list_prints_no_tensorflow_log_lines():
    proc = _mmzoo("list")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "av_digits_concat" in proc.stdout
    assert not TF_LOG_LINE.search(proc.stderr), proc.stderr
    assert proc.stderr == ""


def test_list_details_shows_overrides_defaults_and_weights(capsys):
    from mmzoo import zoo

    assert cli_main.main(["list", "--details", "--tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    starts = [i for i, line in enumerate(lines) if not line.startswith(" ")]
    assert [lines[i].split(":")[0] for i in starts] == zoo.list_models()
    for i, name in zip(starts, zoo.list_models()):
        block = "\n".join(lines[i:i + 3])
        weights = int(re.search(r"weights \(tiny version\): ([\d,]+)", block).group(1).replace(",", ""))
        assert weights == zoo.build_tiny(name).count_params()
        overrides = zoo.get(name).overrides()
        assert overrides and all(f"{k}={v!r}" in block for k, v in overrides.items())
        assert zoo.get(name).summary in block


def test_multi_worker_without_tf_config_is_a_one_line_error(capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code = cli_main.main(["train", "--strategy", "multi_worker", "--tiny", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mmzoo train: error: ") and "TF_CONFIG" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("where", ["under a file", "/proc"])
def test_unwritable_output_or_backup_folder_fails_before_training(capsys, tmp_path, where):
    """It used to end in a traceback after training and evaluation had finished."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    bad = str(blocker / "run") if where == "under a file" else "/proc/mmzoo_run"
    for flag in ("--output-dir", "--backup-dir"):
        args = ["train", "--tiny", "--epochs", "1", "--output-dir", str(tmp_path / "ok"), flag, bad]
        code = cli_main.main(args)
        err = capsys.readouterr().err
        name = flag[2:].replace("-", "_")
        assert code == 2
        assert err.startswith(f"mmzoo train: error: `{name}`: cannot write to {bad!r}") and err.count("\n") == 1, err
    assert not (tmp_path / "ok" / "av_digits_concat").exists()  # nothing was trained
