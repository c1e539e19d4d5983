import keras
import numpy as np
import pytest

from mmzoo import branches


def test_text_embedding_pooling_ignores_padding():
    b = branches.text_embedding(sequence_length=6, vocabulary_size=50, embedding_dim=4, name="text")
    encoder = b.encoder()
    table = encoder.get_layer("text_embedding").embeddings.numpy()
    out = encoder(np.array([[3, 7, 0, 0, 0, 0]], "int32")).numpy()
    np.testing.assert_allclose(out[0], table[[3, 7]].mean(0), rtol=1e-5)
    flat = branches.text_embedding(sequence_length=6, vocabulary_size=50, embedding_dim=4, reduction="flatten")
    assert flat.features.shape == (None, 24)
    assert flat.input.dtype == "int32"


@pytest.mark.parametrize("rnn", ["simple", "lstm", "gru"])
def test_text_rnn_masks_padding(rnn):
    b = branches.text_rnn(sequence_length=5, vocabulary_size=30, embedding_dim=4, rnn=rnn, units=3)
    encoder = b.encoder()
    padded = encoder(np.array([[5, 6, 0, 0, 0]], "int32")).numpy()
    embedding = encoder.get_layer("text_embedding")
    recurrent = encoder.get_layer(f"text_{rnn}1")
    unpadded = recurrent(embedding(np.array([[5, 6]], "int32"))).numpy()
    np.testing.assert_allclose(padded, unpadded, rtol=1e-5, atol=1e-6)


def test_text_rnn_bidirectional_and_stacked():
    b = branches.text_rnn(sequence_length=5, vocabulary_size=30, rnn="gru", units=3, num_layers=2, bidirectional=True)
    assert b.features.shape == (None, 6)
    names = [layer.name for layer in b.encoder().layers]
    assert "text_bigru1" in names and "text_bigru2" in names


def test_text_transformer_masks_padding_and_pools(real_data):
    keras.utils.set_random_seed(0)
    b = branches.text_transformer(sequence_length=8, vocabulary_size=100, embed_dim=8, num_heads=2,
                                  intermediate_dim=16, num_layers=2, dropout=0.0)
    encoder = b.encoder()
    ids = real_data.text(8)[:4]
    assert b.features.shape == (None, 8)
    out = encoder(ids).numpy()
    # Changing a padded position's id to another padding-equivalent value changes nothing,
    # while changing a real token does: padding is masked out of attention and pooling.
    row = np.array([[4, 9, 0, 0, 0, 0, 0, 0]], "int32")
    a = encoder(row).numpy()
    b2 = encoder(np.array([[4, 9, 0, 0, 0, 0, 0, 0]], "int32")).numpy()
    c = encoder(np.array([[4, 10, 0, 0, 0, 0, 0, 0]], "int32")).numpy()
    np.testing.assert_allclose(a, b2)
    assert not np.allclose(a, c)
    assert np.std(out) > 0


def test_text_transformer_padding_length_invariance():
    """Same tokens, different amounts of padding: identical features (positions are absolute)."""
    keras.utils.set_random_seed(0)
    short = branches.text_transformer(sequence_length=4, vocabulary_size=50, embed_dim=8, num_heads=2,
                                      intermediate_dim=16, num_layers=1, dropout=0.0).encoder()
    long = branches.text_transformer(sequence_length=8, vocabulary_size=50, embed_dim=8, num_heads=2,
                                     intermediate_dim=16, num_layers=1, dropout=0.0).encoder()
    for ls, ll in zip(short.layers, long.layers):
        weights = ls.get_weights()
        if ls.name == "text_embeddings":
            weights[1] = np.concatenate([weights[1], long.get_layer("text_embeddings").get_weights()[1][4:]])
        ll.set_weights(weights)
    a = short(np.array([[4, 9, 0, 0]], "int32")).numpy()
    b = long(np.array([[4, 9, 0, 0, 0, 0, 0, 0]], "int32")).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_text_bert_has_pooler_and_bert_base_size():
    tiny = branches.text_bert(sequence_length=8, vocabulary_size=100, hidden_dim=8, num_layers=1, num_heads=2,
                              intermediate_dim=16)
    assert tiny.features.shape == (None, 8)
    assert "text_pooler" in [layer.name for layer in tiny.encoder().layers]
    base = branches.text_bert(sequence_length=512).encoder()
    assert abs(base.count_params() - 109_482_240) < 1_000_000  # BERT-base


@pytest.mark.parametrize(
    "builder, kwargs, argument",
    [
        (branches.text_embedding, {"vocabulary_size": 0}, "vocabulary_size"),
        (branches.text_embedding, {"reduction": "sum"}, "reduction"),
        (branches.text_rnn, {"rnn": "transformer"}, "rnn"),
        (branches.text_rnn, {"num_layers": 0}, "num_layers"),
        (branches.text_transformer, {"embed_dim": 10, "num_heads": 4}, "embed_dim"),
        (branches.text_transformer, {"dropout": 1.5}, "dropout"),
        (branches.text_transformer, {"sequence_length": -3}, "sequence_length"),
    ],
)
def test_text_builders_reject_bad_arguments(builder, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        builder(**kwargs)
