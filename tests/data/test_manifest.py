import os
import uuid

import pytest
import tensorflow as tf

from mmzoo.data import manifest


def test_csv_rows_paths_and_sources(tmp_path):
    (tmp_path / "m.csv").write_text("image,text,label\na.png,hello,cat\nsub/b.png,world,dog\n", encoding="utf-8")
    m = manifest.read_manifest(tmp_path / "m.csv")
    assert len(m) == 2 and m.columns == ["image", "label", "text"]
    assert m.path(1, "image") == str(tmp_path / "sub" / "b.png")
    assert m.where(1) == "row 1 (m.csv line 3)"


def test_jsonl_lists_and_records(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"image": "a.png", "label": 1}\n\n{"image": "/abs/b.png", "label": 2}\n')
    m = manifest.read_manifest(str(tmp_path / "m.jsonl"))
    assert m.where(1) == "row 1 (m.jsonl line 3)" and m.path(1, "image") == "/abs/b.png"
    assert len(manifest.from_lists(image=["a", "b"], label=[0, 1])) == 2
    assert manifest.read_manifest([{"text": "hi"}]).value(0, "text") == "hi"


def test_non_utf8_text_is_kept_for_the_row_policy(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"text\nok\n\xff\xfe bad\n")
    m = manifest.from_csv(tmp_path / "m.csv")
    assert manifest.is_valid_utf8(m.value(0, "text"))
    assert not manifest.is_valid_utf8(m.value(1, "text"))
    assert not manifest.is_valid_utf8(manifest.from_records([{"text": b"\xff"}]).value(0, "text"))


def test_malformed_manifests_name_the_problem(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        manifest.from_jsonl(tmp_path / "bad.jsonl")
    (tmp_path / "bad.csv").write_text("a,b\n1,2,3\n")
    with pytest.raises(ValueError, match="line 2: 3 fields for 2"):
        manifest.from_csv(tmp_path / "bad.csv")
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        manifest.read_manifest(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=".csv or .jsonl"):
        manifest.read_manifest(tmp_path / "m.txt")
    with pytest.raises(ValueError, match="same length"):
        manifest.from_lists(a=[1], b=[1, 2])
    m = manifest.from_records([{"a": 1}, {"b": 2}])
    with pytest.raises(ValueError, match=r"row 1 \(record 1\) has no value for column 'a'"):
        m.value(1, "a")
    with pytest.raises(ValueError, match="column 'c'"):
        m.require_columns(["c"], "ImageColumn")


def _write_both(tmp_path, name, data):
    """Writes ``data`` to ``tmp_path/name`` and to a fresh ``ram://`` folder; returns both paths."""
    remote = f"ram://{uuid.uuid4().hex}/manifests/{name}"
    tf.io.gfile.makedirs(remote.rsplit("/", 1)[0])
    with tf.io.gfile.GFile(remote, "wb") as f:
        f.write(data)
    (tmp_path / name).write_bytes(data)
    return str(tmp_path / name), remote


@pytest.mark.parametrize(
    "name, data",
    [
        # Quoted fields across lines, CRLF line ends, a blank line, bytes that are not UTF-8, a short row.
        ("m.csv", b'image,text,label\r\na.png,"two\r\nlines",cat\r\n\r\nsub/../b.png,\xff\xfe bad,dog\r\nc.png\r\n'),
        ("m.jsonl", b'{"image": "a.png", "label": 1}\n\n{"image": "sub/../b.png", "text": "caf\xc3\xa9 \xff"}\r\n'),
    ],
)
def test_manifest_on_a_tensorflow_file_system_reads_as_the_local_one(tmp_path, name, data):
    local, remote = _write_both(tmp_path, name, data)
    expected, got = manifest.read_manifest(local), manifest.read_manifest(remote)
    assert got.records == expected.records and got.sources == expected.sources and got.columns == expected.columns
    folder = remote.rsplit("/", 1)[0]
    assert got.base_dir == folder and got.path(0, "image") == f"{folder}/a.png"
    assert got.path(1, "image") == f"{folder}/b.png"  # normalized, keeping the scheme's "//"
    assert manifest.read_manifest(remote, base_dir="gs://bucket/data").path(0, "image") == "gs://bucket/data/a.png"
    with pytest.raises(FileNotFoundError, match="Manifest file not found"):
        manifest.read_manifest(f"{folder}/nope{os.path.splitext(name)[1]}")
