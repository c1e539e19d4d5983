"""The README stays true: the quick start's two commands (the test one identical to CI's), and every
```python block runs as written.

Each ```python block of README.md runs in a fresh Python process whose working folder holds the
files the README's snippets name, made from the shared real data (``README_FILES`` below:
``seven.png`` a real MNIST 7, ``seven.wav`` / ``7.wav`` a real FSDD "seven", ``train.csv`` real
OpenMoji cat and dog emoji with their annotations), with ``MMZOO_DATA`` pointing to the shared data
folder. A block opts out only with a stated reason on its first line::

    # readme-test: skip (needs a TPU runtime)

and ``# readme-test: slow (reason)`` marks a block that takes long (``pytest -m "not slow"`` leaves it
out); a marker without a reason fails the test.
"""

import csv
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
SHARED_DATA = Path(os.environ.get("MMZOO_DATA") or (REPO_ROOT / ".." / "shared" / "data")).resolve()
_MARKER = re.compile(r"#\s*readme-test:\s*(\w+)\s*(?:\((.*)\))?")
BLOCK_TIMEOUT_S = 900


def _quick_start_commands():
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line and not line.startswith("#")]


def test_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert len(commands) == 2, commands
    assert commands[0].endswith("mmzoo train")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == _quick_start_commands()[1]


def python_blocks(text):
    """``[(id, code, marker, reason)]`` for every ```python block of a Markdown text.

    ``id`` is ``{heading}-{n}`` (the nearest heading above, slugged; ``n`` counts the
    blocks under it); ``marker`` is ``"skip"``, ``"slow"`` or ``None``, from a
    ``# readme-test: ...`` comment on the block's first line.
    """
    blocks, heading, counts = [], "top", {}
    for match in re.finditer(r"^(#{1,6} [^\n]*)$|^```python[ \t]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        if match.group(1):
            heading = re.sub(r"[^a-z0-9]+", "-", match.group(1).lstrip("#").strip().lower()).strip("-")
            continue
        code = match.group(2)
        counts[heading] = counts.get(heading, 0) + 1
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        marker = _MARKER.match(first.strip())
        blocks.append((f"{heading}-{counts[heading]}", code, marker and marker.group(1), marker and marker.group(2)))
    return blocks


def test_block_extraction_and_markers():
    text = (
        "# Title\n```python\nx = 1\n```\n## Two words\n```python\n# readme-test: skip (needs a TPU)\ny = 2\n```\n"
        "```bash\nls\n```\n```python\n# readme-test: slow (trains 15 epochs)\nz = 3\n```\n"
    )
    blocks = python_blocks(text)
    assert [(b[0], b[2], b[3]) for b in blocks] == [
        ("title-1", None, None), ("two-words-1", "skip", "needs a TPU"), ("two-words-2", "slow", "trains 15 epochs"),
    ]
    assert blocks[0][1] == "x = 1\n"


def _write_png(path, image):
    import tensorflow as tf

    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(image, np.uint8)[..., None]))


def _mnist_seven():
    with gzip.open(SHARED_DATA / "mnist" / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)
    with gzip.open(SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28)
    return images[int(np.flatnonzero(labels == 7)[0])]


def _cat_dog_rows():
    rows = []
    with open(SHARED_DATA / "openmoji" / "openmoji.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            words = set(re.findall(r"[a-z]+", row["annotation"].lower()))
            label = "cat" if "cat" in words else "dog" if "dog" in words else None
            if label and "hot" not in words:
                rows.append((row, label))
    return rows


def prepare_readme_files(folder):
    """Writes into ``folder`` the files the README's snippets name, from the shared real data.

    Returns:
        The file names written.
    """
    folder = Path(folder)
    recordings = SHARED_DATA / "fsdd" / "recordings"
    _write_png(folder / "seven.png", _mnist_seven())
    for name in ("seven.wav", "7.wav"):
        shutil.copy(recordings / "7_jackson_0.wav", folder / name)
    images = folder / "images"
    images.mkdir()
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "wav", "caption", "label"])
        for i, (row, label) in enumerate(_cat_dog_rows()):
            shutil.copy(SHARED_DATA / "openmoji" / "images" / f"{row['hexcode']}.png", images / f"{row['hexcode']}.png")
            wav = f"{i % 10}_jackson_{5 + i // 10}.wav"
            shutil.copy(recordings / wav, images / wav)
            writer.writerow([f"images/{row['hexcode']}.png", f"images/{wav}", row["annotation"], label])
    return sorted(p.name for p in folder.iterdir())


def test_readme_files_are_real_data(tmp_path):
    names = prepare_readme_files(tmp_path)
    assert {"seven.png", "seven.wav", "7.wav", "train.csv"} <= set(names)
    with open(tmp_path / "train.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["label"] for r in rows} == {"cat", "dog"} and len(rows) >= 10
    assert all((tmp_path / r["path"]).is_file() and (tmp_path / r["wav"]).is_file() for r in rows)
    assert (tmp_path / "seven.wav").read_bytes()[:4] == b"RIFF"


_BLOCKS = python_blocks(README.read_text()) if README.exists() else []


def _params():
    params = []
    for block_id, code, marker, reason in _BLOCKS:
        marks = [pytest.mark.slow] if marker == "slow" else []
        params.append(pytest.param(code, marker, reason, id=block_id, marks=marks))
    return params


def test_readme_has_python_blocks():
    assert _BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize(("code", "marker", "reason"), _params())
def test_readme_python_block_runs_as_written(code, marker, reason, tmp_path):
    if marker is not None:
        assert marker in ("skip", "slow"), f"unknown marker `# readme-test: {marker}`; use skip or slow"
        assert reason and reason.strip(), f"`# readme-test: {marker}` needs a reason in parentheses"
    if marker == "skip":
        pytest.skip(f"README block opts out: {reason}")
    prepare_readme_files(tmp_path)
    env = {**os.environ, "MMZOO_DATA": str(SHARED_DATA), "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg",
           "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, check=False, capture_output=True, text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"README block failed (exit {proc.returncode}):\n{code}\n--- stderr (end) ---\n{proc.stderr[-3000:]}"
    )
