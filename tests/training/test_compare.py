"""``mmzoo.compare``'s files: JSON, Markdown and the bar plot (the training runs are tested in test_fit.py)."""

import json
import uuid

import tensorflow as tf

from mmzoo.training import compare

ROWS = [
    {"name": "image", "inputs": ["image"], "fusion": None, "scores": [0.5, 0.6], "mean": 0.55, "min": 0.5, "max": 0.6},
    {"name": "concat", "inputs": ["image", "text"], "fusion": "concat", "scores": [0.7, 0.8], "mean": 0.75,
     "min": 0.7, "max": 0.8},
]


def test_comparison_files_are_written_to_a_tensorflow_file_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a local-only implementation would write lands here, not in the repo
    result = compare.Comparison("accuracy", "test", ROWS)
    folder = f"ram://{uuid.uuid4().hex}/compare"
    paths = compare._write(result, folder)
    assert paths == {"json": f"{folder}/compare.json", "markdown": f"{folder}/compare.md",
                     "plot": f"{folder}/compare.png"}
    with tf.io.gfile.GFile(paths["json"]) as f:
        assert json.load(f) == {"metric": "accuracy", "split": "test", "rows": ROWS}
    with tf.io.gfile.GFile(paths["markdown"]) as f:
        assert f.read() == result.markdown() + "\n"
    with tf.io.gfile.GFile(paths["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
