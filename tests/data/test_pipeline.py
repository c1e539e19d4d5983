import logging

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import columns, manifest, pipeline, tokenizers


@pytest.fixture
def files(tmp_path, write_wav):
    """A folder with good and bad files, and a tokenizer."""
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[..., 0] = 255
    tf.io.write_file(str(tmp_path / "red.png"), tf.io.encode_png(pixels))
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    write_wav(tmp_path / "tone.wav", 0.5 * np.sin(np.arange(16000) / 5.0), 16000)
    (tmp_path / "truncated.wav").write_bytes((tmp_path / "tone.wav").read_bytes()[:100])
    return tmp_path


def _features(tok):
    return {
        "image": columns.ImageColumn("img", (8, 8, 3)),
        "audio": columns.AudioColumn("wav", sampling_rate=8000, num_samples=4000),
        "text": columns.TextColumn("caption", tok),
    }


GOOD = {"img": "red.png", "wav": "tone.wav", "caption": "red tone", "label": "a"}
BAD_ROWS = {
    1: {"img": "corrupt.png"},
    2: {"wav": "truncated.wav"},
    3: {"img": "missing.png"},
    4: {"caption": "   "},
    5: {"caption": b"red \xff\xfe tone"},
}


def _rows():
    rows = [dict(GOOD, label="a" if i % 2 else "b") for i in range(8)]
    for i, change in BAD_ROWS.items():
        rows[i].update(change)
    return rows


def _tok():
    return tokenizers.VocabTokenizer(["red", "tone"], sequence_length=3)


def test_good_rows_have_documented_shapes(files):
    ds = pipeline.make_dataset(
        manifest.from_records([GOOD] * 5, base_dir=files), _features(_tok()), columns.LabelColumn("label"), batch_size=2
    )
    batches = list(ds)
    assert [len(y) for _, y in batches] == [2, 2, 1]
    x, y = batches[0]
    assert x["image"].shape == (2, 8, 8, 3) and x["image"].dtype == tf.float32
    assert x["audio"].shape == (2, 4000) and x["audio"].dtype == tf.float32
    assert x["text"].numpy().tolist() == [[2, 3, 0]] * 2 and y.dtype == tf.int32
    np.testing.assert_allclose(x["image"][0, ..., 0], 1.0, atol=1e-6)


def test_skip_drops_exactly_the_bad_rows_and_counts_them_each_epoch(files, caplog):
    report = pipeline.ErrorReport()
    ds = pipeline.make_dataset(
        manifest.from_records(_rows(), base_dir=files),
        _features(_tok()),
        columns.LabelColumn("label"),
        batch_size=3,
        on_error="skip",
        report=report,
    )
    with caplog.at_level(logging.WARNING, logger="mmzoo.data"):
        for _ in range(2):
            labels = np.concatenate([y.numpy() for _, y in ds])
            assert len(labels) == 3  # rows 0, 6, 7
            assert sorted(labels.tolist()) == sorted([1, 1, 0])  # rows 0 and 6 are "b", row 7 is "a"
    assert report.skipped_per_epoch == [5, 5]
    skipped = " ".join(report.epochs[0])
    for row in BAD_ROWS:
        assert f"row {row} (record {row})" in skipped
    for name in ("corrupt.png", "truncated.wav", "missing.png", "empty text", "not valid UTF-8"):
        assert name in skipped
    assert sum("skipped 5 of 8 rows" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize(
    "row, kind, words",
    [
        (1, tf.errors.InvalidArgumentError, ["row 1", "corrupt.png"]),
        (2, tf.errors.InvalidArgumentError, ["row 2", "truncated.wav"]),
        (3, pipeline.BadRowError, ["row 3", "missing.png", "file not found"]),
        (4, pipeline.BadRowError, ["row 4", "empty text"]),
        (5, pipeline.BadRowError, ["row 5", "not valid UTF-8"]),
    ],
)
def test_raise_names_the_file_and_row(files, row, kind, words):
    rows = [dict(GOOD) for _ in range(4)] + [dict(GOOD)] * 2
    rows[row] = dict(GOOD, **BAD_ROWS[row])
    with pytest.raises(kind) as error:
        ds = pipeline.make_dataset(manifest.from_records(rows, base_dir=files), _features(_tok()), batch_size=2)
        list(ds)
    for word in words:
        assert word in str(error.value)


def test_up_front_validation_of_columns_and_labels(files):
    m = manifest.from_records([GOOD, dict(GOOD, label="zebra")], base_dir=files)
    with pytest.raises(ValueError, match=r"row 1 \(record 1\): label 'zebra'"):
        pipeline.make_dataset(m, _features(_tok()), columns.LabelColumn("label", classes=["a", "b"]))
    with pytest.raises(ValueError, match="column 'picture'"):
        pipeline.make_dataset(m, {"image": columns.ImageColumn("picture", (8, 8, 3))})
    with pytest.raises(ValueError, match="on_error"):
        pipeline.make_dataset(m, _features(_tok()), on_error="ignore")
    with pytest.raises(ValueError, match="augment"):
        pipeline.make_dataset(m, _features(_tok()), augment={"video": lambda x, s: x})


def test_seeded_shuffle_is_deterministic_and_reshuffles(files):
    rows = [dict(GOOD, caption="red " * (i % 3 + 1)) for i in range(12)]
    rows = [dict(r, label=str(i)) for i, r in enumerate(rows)]

    def order():
        ds = pipeline.make_dataset(
            manifest.from_records(rows, base_dir=files), _features(_tok()), columns.LabelColumn("label"),
            batch_size=12, shuffle=True, seed=3,
        )
        return [y.numpy().tolist() for _, y in ds.repeat(2)]

    first = order()
    assert first == order() and first[0] != first[1] and sorted(first[0]) == list(range(12))


def test_text_longer_than_max_bytes_is_a_bad_row():
    from mmzoo.data import TextColumn, VocabTokenizer
    from mmzoo.data.manifest import Manifest

    tokenizer = VocabTokenizer.fit(["a short caption", "another one"], sequence_length=8)
    column = TextColumn("caption", tokenizer, max_bytes=20)
    manifest = Manifest([{"caption": "a short caption"}, {"caption": "a caption far longer than twenty bytes"}])
    assert column.row_problem(manifest, 0) is None
    assert column.row_problem(manifest, 1) == "text in column(s) ['caption'] is 38 bytes long (max_bytes=20)"
    with pytest.raises(ValueError, match="max_bytes"):
        TextColumn("caption", tokenizer, max_bytes=0)


def test_empty_text_is_a_bad_row_unless_allowed_and_then_decodes_to_padding():
    from mmzoo.data import TextColumn, VocabTokenizer
    from mmzoo.data.manifest import Manifest

    tokenizer = VocabTokenizer.fit(["cheerful, happy", "grin"], sequence_length=4)
    manifest = Manifest([{"tags": "cheerful, happy"}, {"tags": ""}])
    assert TextColumn("tags", tokenizer).row_problem(manifest, 1) == "empty text in column(s) ['tags']"
    allowed = TextColumn("tags", tokenizer, allow_empty=True)
    assert allowed.row_problem(manifest, 1) is None
    assert allowed.decode(tf.constant("")).numpy().tolist() == [0, 0, 0, 0]  # all padding: "no tags"
    assert allowed.decode(tf.constant("cheerful, happy")).numpy()[0] != 0
    with pytest.raises(ValueError, match="allow_empty"):
        TextColumn("tags", tokenizer, allow_empty="yes")
