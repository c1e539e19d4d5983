import pytest

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
