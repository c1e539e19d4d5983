import ast
import inspect
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import KerasHubTokenizer, TextColumn, tokenizers

TEXTS = ["grinning face", "grinning squinting face", "red heart", "cat face"]
LOGGER = "mmzoo.data.tokenizers"
PACKAGE = Path(tokenizers.__file__).parent


@pytest.fixture(scope="module")
def train_texts(shared_data):
    """OpenMoji annotation + tags of the train split (as ``mmzoo.datasets.emoji_groups`` fits on)."""
    from mmzoo.datasets.emoji import openmoji_manifests

    train = openmoji_manifests(shared_data)["train"]
    return [" ".join(str(r.get(f) or "") for f in ("annotation", "tags")) for r in train.records]


@pytest.fixture(scope="module")
def wordpiece_2000(train_texts):
    return tokenizers.WordPieceTokenizer.fit(train_texts, 32, vocabulary_size=2000)


@pytest.fixture(scope="module")
def fitted(train_texts, wordpiece_2000):
    """One tokenizer of each learned kind, fitted on the real train texts."""
    return {"vocab": tokenizers.VocabTokenizer.fit(train_texts, 32, vocabulary_size=800), "wordpiece": wordpiece_2000}


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_vocab_round_trip_oov_and_padding():
    tok = tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=5)
    assert tok.vocabulary[:3] == ["[PAD]", "[UNK]", "face"]  # most frequent first
    ids = tok(tf.constant(["Grinning  FACE", "grinning zebra face with hat"]))
    assert ids.dtype == tf.int32 and ids.shape == (2, 5)
    assert ids.numpy()[0, 2:].tolist() == [0, 0, 0]  # padding
    assert ids.numpy()[1].tolist()[1] == 1  # zebra is OOV
    assert tok.detokenize(ids[:1]).numpy()[0].decode() == "grinning face"
    long = tok(tf.constant("face " * 20))
    assert long.shape == (5,) and (long.numpy() > 0).all()  # truncated, no padding


def test_unicode_script_split_and_vocabulary_cap_is_logged_once(caplog):
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tok = tokenizers.VocabTokenizer.fit(["Café, naïve!", "café"], sequence_length=4, vocabulary_size=3)
    assert tok.vocabulary == ["[PAD]", "[UNK]", "café"]
    assert tok(tf.constant("CAFÉ,")).numpy().tolist() == [2, 1, 0, 0]  # comma split off, OOV
    # café x2, ",", "naïve", "!": the cap keeps café, so 3 of 4 words and 3 of 5 tokens are left out.
    assert _warnings(caplog) == [
        (
            "VocabTokenizer.fit: vocabulary_size=3 leaves out 3 of 4 distinct training words; "
            "3 of 5 training tokens (60.0%) become [UNK]."
        )
    ]
    ws = tokenizers.VocabTokenizer.fit(["a,b c"], sequence_length=3, split="whitespace")
    assert "a,b" in ws.vocabulary


def test_fit_on_real_texts_logs_truncation_and_cap_counts(train_texts, caplog):
    words = [t.lower().split() for t in train_texts]  # what the whitespace split sees
    counts = {}
    for row in words:
        for w in row:
            counts[w] = counts.get(w, 0) + 1
    longer = sum(len(row) > 16 for row in words)
    kept = sorted(counts, key=lambda w: (-counts[w], w))[:498]
    unknown = sum(c for w, c in counts.items() if w not in set(kept))
    assert longer > 0 and unknown > 0  # the real corpus exercises both reports
    with caplog.at_level(logging.INFO, logger=LOGGER):
        tok = tokenizers.VocabTokenizer.fit(train_texts, 16, vocabulary_size=500, split="whitespace")
    assert tok.vocabulary_size == 500
    total = sum(counts.values())
    cap = (
        f"VocabTokenizer.fit: vocabulary_size=500 leaves out {len(counts) - 498:,} of {len(counts):,} distinct "
        f"training words; {unknown:,} of {total:,} training tokens ({100 * unknown / total:.1f}%) become [UNK]."
    )
    truncation = (
        f"VocabTokenizer.fit: {longer:,} of {len(train_texts):,} training texts "
        f"({100 * longer / len(train_texts):.1f}%) "
        f"are longer than sequence_length=16 tokens and will be truncated (longest: {max(map(len, words))} tokens)."
    )
    assert _warnings(caplog) == [cap, truncation]
    stats = tok.coverage(train_texts)
    assert (stats["truncated"], stats["unknown_tokens"], stats["tokens"]) == (longer, unknown, total)


def test_nothing_left_out_logs_nothing(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=3)
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=2)
    assert _warnings(caplog) == [
        (
            "VocabTokenizer.fit: 1 of 4 training texts (25.0%) are longer than sequence_length=2 tokens and will be "
            "truncated (longest: 3 tokens)."
        )
    ]


@pytest.mark.parametrize("requested", [1000, 2000])
def test_wordpiece_reaches_the_requested_size_on_openmoji(train_texts, wordpiece_2000, requested, caplog):
    # tensorflow-text's learner with its defaults (what the old code and KerasHub's
    # compute_word_piece_vocabulary run) stopped at 629 tokens for 2,000 on these texts.
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tok = wordpiece_2000 if requested == 2000 else tokenizers.WordPieceTokenizer.fit(
            train_texts, 32, vocabulary_size=requested
        )
    assert 0.95 * requested <= tok.vocabulary_size <= requested
    assert tok.vocabulary[:2] == ["[PAD]", "[UNK]"] and len(set(tok.vocabulary)) == tok.vocabulary_size
    stats = tok.coverage(train_texts)
    assert stats["unknown_tokens"] == 0  # every character is kept, so every training word can be spelled
    assert not any("fewer than vocabulary_size" in m for m in _warnings(caplog))


def test_wordpiece_larger_vocabulary_gives_shorter_sequences_and_reports_the_corpus_limit(
    train_texts, wordpiece_2000, caplog
):
    small = tokenizers.WordPieceTokenizer.fit(train_texts[:400], 32, vocabulary_size=300)
    assert small.coverage(train_texts[:400])["tokens"] > wordpiece_2000.coverage(train_texts[:400])["tokens"]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        everything = tokenizers.WordPieceTokenizer.fit(train_texts, 32, vocabulary_size=100_000)
    limit = everything.vocabulary_size
    assert 2000 < limit < 100_000
    assert (
        sum("fewer than vocabulary_size=100000" in m and f"learned {limit:,} tokens" in m for m in _warnings(caplog))
        == 1
    )
    assert tokenizers.WordPieceTokenizer.fit(train_texts, 32).vocabulary == everything.vocabulary  # None = no cap


def test_wordpiece_truncation_is_logged_with_the_count(train_texts, caplog):
    texts = train_texts[:400]
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        tok = tokenizers.WordPieceTokenizer.fit(texts, 12, vocabulary_size=300)
    lengths = tok.ragged_ids(tf.constant(texts)).row_lengths().numpy()
    longer = int((lengths > 12).sum())
    assert 0 < longer < len(texts)
    expected = (
        f"WordPieceTokenizer.fit: {longer:,} of {len(texts):,} training texts "
        f"({100 * longer / len(texts):.1f}%) are longer than sequence_length=12 tokens and will be truncated "
        f"(longest: {lengths.max()} tokens)."
    )
    assert [m for m in _warnings(caplog) if "truncated" in m] == [expected]


def test_every_kind_has_the_same_fit_signature_and_the_old_order_fails_loudly():
    for kind in (tokenizers.VocabTokenizer, tokenizers.WordPieceTokenizer, KerasHubTokenizer):
        params = inspect.signature(kind.fit).parameters
        assert list(params)[:3] == ["texts", "sequence_length", "vocabulary_size"], kind
        assert params["sequence_length"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        assert params["vocabulary_size"].kind is inspect.Parameter.KEYWORD_ONLY
    texts = TEXTS * 5
    for kind in (tokenizers.VocabTokenizer, tokenizers.WordPieceTokenizer):
        with pytest.raises(TypeError):
            kind.fit(texts, 500, 16)  # the old WordPiece order (vocabulary_size, sequence_length)
        tok = kind.fit(texts, 7, vocabulary_size=30)
        assert tok.sequence_length == 7 and tok.vocabulary_size <= 30
        assert tok(tf.constant(TEXTS)).shape == (4, 7)
    with pytest.raises(TypeError):
        tokenizers.VocabTokenizer.fit(texts, 8, max_tokens=30)  # renamed: vocabulary_size


def _tokenizer_imports(path):
    """The sibling modules a tokenizer module imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "mmzoo.data.tokenizers":
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mmzoo.data.tokenizers."):
            found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.rsplit(".", 1)[1] for a in node.names if a.name.startswith("mmzoo.data.tokenizers.")}
    return found


def test_tokenizer_modules_import_no_circle():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {m: _tokenizer_imports(PACKAGE / f"{m}.py") & modules for m in modules}
    assert graph["base"] == set()
    for module, imported in graph.items():
        for other in imported:
            assert module not in graph[other], f"{module} <-> {other}"
    # Importing the KerasHub kind first, in a fresh process, works and does not import keras_hub itself.
    code = (
        "import sys\n"
        "import mmzoo.data.tokenizers.keras_hub as m\n"
        "print(m.base.registered_kinds(), 'keras_hub' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['keras_hub', 'keras_hub_prompts', 'vocab', 'wordpiece'] False"


def test_text_column_refuses_what_cannot_be_exported(tmp_path):
    import keras_hub

    class HubPreprocessor(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts):
            return {"input_word_ids": tf.zeros([tf.shape(texts)[0], 8], tf.int32)}

    tf.saved_model.save(HubPreprocessor(), str(tmp_path / "hub"))
    hub_like = tf.saved_model.load(str(tmp_path / "hub"))  # what tensorflow_hub.load returns
    hub_like.sequence_length = 8  # passed the old check (callable + sequence_length), then broke mmzoo.export
    bare = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]),
        sequence_length=8,
    )
    for bad in (hub_like, bare, lambda s: s, tokenizers.VocabTokenizer):
        with pytest.raises(
            ValueError, match="`tokenizer` must be a mmzoo tokenizer.*VocabTokenizer.*Received: tokenizer="
        ):
            TextColumn("text", bad)
    with pytest.raises(ValueError, match="Wrap a KerasHub preprocessor in KerasHubTokenizer"):
        TextColumn("text", bare)
    assert TextColumn("text", KerasHubTokenizer(bare)).tokenizer.sequence_length == 8


@pytest.mark.parametrize("kind", ["vocab", "wordpiece"])
def test_save_reload_gives_identical_ids(train_texts, fitted, kind, tmp_path):
    tok = fitted[kind]
    tok.save(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / tokenizers.CONFIG_FILE).read_text())["kind"] == kind
    again = tokenizers.load_tokenizer(tmp_path / "tok")
    assert type(again) is type(tok) and again.get_config() == tok.get_config()
    assert again.vocabulary == tok.vocabulary and again.vocabulary_size == tok.vocabulary_size
    batch = tf.constant(train_texts[:200] + ["unknown wørds here ✓", ""])
    np.testing.assert_array_equal(tok(batch).numpy(), again(batch).numpy())


@pytest.mark.parametrize("kind", ["vocab", "wordpiece"])
def test_tokenizer_works_in_tf_function_and_dataset(train_texts, fitted, kind):
    tok = fitted[kind]
    eager = tok(tf.constant(train_texts[:32])).numpy()
    fn = tf.function(lambda s: tok(s), input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(fn(tf.constant(train_texts[:32])).numpy(), eager)
    mapped = np.stack(list(tf.data.Dataset.from_tensor_slices(train_texts[:32]).map(tok).as_numpy_iterator()))
    np.testing.assert_array_equal(mapped, eager)
    assert eager.dtype == np.int32 and eager.shape == (32, 32) and (eager[:, 0] > 0).all()


def test_graph_code_traces_a_tokenizer_once_and_does_not_keep_it_alive():
    import gc
    import weakref

    from mmzoo.data.tokenizers import base

    tok = tokenizers.VocabTokenizer.fit(["a cat", "a dog", "the cat"], sequence_length=4)
    texts = tf.data.Dataset.from_tensor_slices(["a cat", "the bird", ""])
    eager = tok(tf.constant(["a cat", "the bird", ""])).numpy()
    for _ in range(3):  # three datasets, one per split in fit: one trace, the same ids as eager
        np.testing.assert_array_equal(np.stack(list(texts.map(tok).as_numpy_iterator())), eager)
    np.testing.assert_array_equal(next(iter(texts.batch(3).map(tok))).numpy(), eager)
    assert base._GRAPH_FUNCTIONS[tok][("_padded_ids", False)].experimental_get_tracing_count() == 1
    alive = weakref.ref(tok)
    del tok
    gc.collect()
    assert alive() is None  # the cache holds the tokenizer weakly


def test_every_kind_text_column_accepts_exports_and_serves_raw_text(train_texts, fitted, tmp_path):
    import mmzoo
    from mmzoo import branches, heads

    # One model with a text input per kind (the KerasHub kind is exported in tests/branches/test_keras_hub.py).
    columns = {kind: TextColumn("text", tok) for kind, tok in fitted.items()}
    model = mmzoo.compose(
        [
            branches.text_embedding(t.sequence_length, t.vocabulary_size, embedding_dim=4, name=k)
            for k, t in fitted.items()
        ],
        head=heads.multiclass(3), hidden=(),
    )
    texts = tf.constant(train_texts[:5])
    expected = model.predict({kind: tok(texts) for kind, tok in fitted.items()}, verbose=0)
    mmzoo.export(model, str(tmp_path / "export"), preprocessing=columns)
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_raw"]
    got = served(**{kind: texts for kind in fitted})["probabilities"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for kind, tok in fitted.items():
        reloaded = tokenizers.load_tokenizer(tmp_path / "export" / "assets" / "tokenizers" / kind)
        assert type(reloaded) is type(tok)
        np.testing.assert_array_equal(reloaded(texts).numpy(), tok(texts).numpy())


def test_wordpiece_from_file_round_trip_and_reload(tmp_path):
    vocab = ["[PAD]", "[UNK]", "smil", "##ing", "face", "cat", ","]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = tokenizers.WordPieceTokenizer(tmp_path / "vocab.txt", sequence_length=6)
    ids = tok(tf.constant(["Smiling face, cat", "dog"]))
    assert ids.numpy().tolist() == [[2, 3, 4, 6, 5, 0], [1, 0, 0, 0, 0, 0]]
    assert tok.detokenize(ids[:1]).numpy()[0].decode() == "smiling face , cat"
    tok.save(tmp_path / "saved")
    again = tokenizers.load_tokenizer(tmp_path / "saved")
    np.testing.assert_array_equal(again(tf.constant(["smiling cat"])), tok(tf.constant(["smiling cat"])))


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="padding token"):
        tokenizers.WordPieceTokenizer(["[UNK]", "a"], 4)
    with pytest.raises(ValueError, match="no unknown token"):
        tokenizers.WordPieceTokenizer(["[PAD]", "a"], 4)
    with pytest.raises(ValueError, match="whitespace"):
        tokenizers.VocabTokenizer(["two words"], 4)
    with pytest.raises(ValueError, match="sequence_length"):
        tokenizers.VocabTokenizer(["a"], 0)
    with pytest.raises(ValueError, match="empty"):
        tokenizers.VocabTokenizer.fit([], 4)
    with pytest.raises(ValueError, match="not one string"):
        tokenizers.WordPieceTokenizer.fit("grinning face", 4)
    with pytest.raises(ValueError, match="Received: vocabulary_size=2"):
        tokenizers.VocabTokenizer.fit(TEXTS, 4, vocabulary_size=2)
    with pytest.raises(ValueError, match="Received: vocabulary_size=3"):
        tokenizers.WordPieceTokenizer.fit(TEXTS, 4, vocabulary_size=3)
    with pytest.raises(ValueError, match="reserved_tokens"):
        tokenizers.WordPieceTokenizer.fit(TEXTS, 4, reserved_tokens=["[UNK]", "[PAD]"])
    with pytest.raises(FileNotFoundError, match="tokenizer config"):
        tokenizers.load_tokenizer(tmp_path)
    (tmp_path / tokenizers.CONFIG_FILE).write_text(json.dumps({"format_version": 1, "kind": "tf_hub"}))
    with pytest.raises(ValueError, match="kind='tf_hub'"):
        tokenizers.load_tokenizer(tmp_path)


def test_keras_hub_tokenizer_matches_preprocessor_and_reloads_offline(tmp_path, caplog):
    import keras_hub

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "grinning", "face", "cat"]
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True), sequence_length=8
    )
    tok = KerasHubTokenizer(preprocessor, sequence_length=6)
    assert tok.sequence_length == 6 and tok.vocabulary_size == len(vocab)
    ids = tok(tf.constant(["Grinning face", "cat zebra"]))
    assert ids.dtype == tf.int32 and ids.numpy().tolist() == [[2, 5, 6, 3, 0, 0], [2, 7, 1, 3, 0, 0]]
    np.testing.assert_array_equal(ids.numpy(), preprocessor(tf.constant(["Grinning face", "cat zebra"]))["token_ids"])
    assert tok(tf.constant("grinning cat")).numpy().tolist() == [2, 5, 7, 3, 0, 0]  # a scalar, as in TextColumn
    fn = tf.function(lambda s: tok(s), input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(fn(tf.constant(TEXTS)).numpy(), tok(tf.constant(TEXTS)).numpy())
    tok.save(tmp_path / "tok")
    again = tokenizers.load_tokenizer(tmp_path / "tok")
    assert isinstance(again, KerasHubTokenizer) and again.get_config() == tok.get_config()
    np.testing.assert_array_equal(again(tf.constant(TEXTS)).numpy(), tok(tf.constant(TEXTS)).numpy())
    with pytest.raises(ValueError, match="`preprocessor`"):
        KerasHubTokenizer(preprocessor.tokenizer)
    # fit: same signature; a pretrained vocabulary is checked, not learned; losses are logged once.
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        fitted = KerasHubTokenizer.fit(TEXTS, 4, preprocessor=preprocessor)
    assert fitted.sequence_length == 4
    # [CLS] + words + [SEP]: 9 words + 8 special ids; "grinning squinting face" needs 5 ids; squinting, red,
    # heart are unknown.
    assert _warnings(caplog) == [
        (
            "KerasHubTokenizer.fit: 1 of 4 training texts (25.0%) are longer than sequence_length=4 tokens and will "
            "be truncated (longest: 5 tokens)."
        ),
        (
            "KerasHubTokenizer.fit: 3 of 17 training tokens (17.6%) map to the unknown token (words the pretrained "
            "vocabulary cannot spell)."
        ),
    ]
    with pytest.raises(ValueError, match="Received: vocabulary_size=100"):
        KerasHubTokenizer.fit(TEXTS, 4, vocabulary_size=100, preprocessor=preprocessor)


def test_fitting_on_many_texts_shows_progress(capsys, monkeypatch):
    from mmzoo.data.tokenizers import base

    monkeypatch.setattr(base, "PROGRESS_MIN_TEXTS", 10)
    texts = [f"a smiling face number {i}" for i in range(5000)]
    tokenizers.VocabTokenizer.fit(texts, 8)
    out = capsys.readouterr().out
    assert "VocabTokenizer.fit: counting words" in out and "5000/5000" in out
    tokenizers.VocabTokenizer.fit(texts[:5], 8)
    assert "counting words" not in capsys.readouterr().out


def test_tokenizers_save_to_and_load_from_a_tensorflow_file_system(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # whatever a local-only implementation would write lands here, not in the repo
    root = f"ram://{uuid.uuid4().hex}"
    vocab = ["[PAD]", "[UNK]", "smil", "##ing", "face", "cat", ","]
    with tf.io.gfile.GFile(f"{root}/vocab.txt", "w") as f:  # a vocabulary file read from there too
        f.write("\r\n".join(vocab) + "\r\n")
    texts = tf.constant(["Smiling face, cat", "grinning dog face", ""])
    for tok in (tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=5),
                tokenizers.WordPieceTokenizer(f"{root}/vocab.txt", sequence_length=6)):
        folder = f"{root}/{tok.kind}"
        tok.save(folder)
        assert tf.io.gfile.exists(f"{folder}/{tokenizers.CONFIG_FILE}")
        again = tokenizers.load_tokenizer(folder)
        assert type(again) is type(tok) and again.get_config() == tok.get_config()
        assert again.vocabulary == tok.vocabulary
        np.testing.assert_array_equal(again(texts).numpy(), tok(texts).numpy())
    assert tokenizers.load_tokenizer(f"{root}/wordpiece").vocabulary == vocab
    with pytest.raises(FileNotFoundError, match="No tokenizer config"):
        tokenizers.load_tokenizer(f"{root}/nothing")
