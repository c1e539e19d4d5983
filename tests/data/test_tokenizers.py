import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import KerasHubTokenizer, tokenizers

TEXTS = ["grinning face", "grinning squinting face", "red heart", "cat face"]


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


def test_unicode_script_split_and_max_tokens():
    tok = tokenizers.VocabTokenizer.fit(["Café, naïve!", "café"], sequence_length=4, max_tokens=3)
    assert tok.vocabulary == ["[PAD]", "[UNK]", "café"]
    assert tok(tf.constant("CAFÉ,")).numpy().tolist() == [2, 1, 0, 0]  # comma split off, OOV
    ws = tokenizers.VocabTokenizer.fit(["a,b c"], sequence_length=3, split="whitespace")
    assert "a,b" in ws.vocabulary


def test_vocab_save_reload_gives_identical_ids(tmp_path):
    tok = tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=6)
    tok.save(tmp_path / "tok")
    again = tokenizers.load_tokenizer(tmp_path / "tok")
    batch = tf.constant(TEXTS + ["unknown words here", ""])
    np.testing.assert_array_equal(tok(batch).numpy(), again(batch).numpy())
    assert isinstance(again, tokenizers.VocabTokenizer) and again.vocabulary_size == tok.vocabulary_size


def test_tokenizer_works_in_tf_function_and_dataset():
    tok = tokenizers.VocabTokenizer.fit(TEXTS, sequence_length=4)
    fn = tf.function(lambda s: tok(s), input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_array_equal(fn(tf.constant(TEXTS)).numpy(), tok(tf.constant(TEXTS)).numpy())
    ds = tf.data.Dataset.from_tensor_slices(TEXTS).map(tok)
    assert [x.shape for x in ds] == [(4,)] * 4


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


def test_wordpiece_fit_learns_subwords():
    tok = tokenizers.WordPieceTokenizer.fit(TEXTS * 20, vocabulary_size=60, sequence_length=8)
    assert tok.vocabulary[:2] == ["[PAD]", "[UNK]"]
    ids = tok(tf.constant(["grinning face"])).numpy()[0]
    assert ids[0] > 1 and ids[-1] == 0


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
    with pytest.raises(FileNotFoundError, match="tokenizer config"):
        tokenizers.load_tokenizer(tmp_path)


def test_keras_hub_tokenizer_matches_preprocessor_and_reloads_offline(tmp_path):
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
