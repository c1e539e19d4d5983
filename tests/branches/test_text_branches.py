import inspect
import subprocess
import sys

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
    recurrent = encoder.get_layer(f"text_{rnn}1")  # returns its sequence and states; features are the state h
    unpadded = recurrent(embedding(np.array([[5, 6]], "int32")))[1].numpy()
    np.testing.assert_allclose(padded, unpadded, rtol=1e-5, atol=1e-6)


def test_text_rnn_bidirectional_and_stacked():
    b = branches.text_rnn(sequence_length=5, vocabulary_size=30, rnn="gru", units=3, num_layers=2, bidirectional=True)
    assert b.features.shape == (None, 6)
    names = [layer.name for layer in b.encoder().layers]
    assert "text_bigru1" in names and "text_bigru2" in names


def _copy_weights(source, target):
    """Copies ``source``'s weights into ``target`` layer by layer, cutting position tables to ``target``'s length."""
    for ls, lt in zip(source.layers, target.layers):
        lt.set_weights([w[: t.shape[0]] for w, t in zip(ls.get_weights(), lt.weights)])


def test_text_transformer_is_keras_hub_layers_and_masks_padding(real_data):
    import keras_hub

    keras.utils.set_random_seed(0)
    kwargs = {"vocabulary_size": 100, "hidden_dim": 8, "num_heads": 2, "intermediate_dim": 16, "num_layers": 2,
              "dropout": 0.0}
    long = branches.text_transformer(sequence_length=8, **kwargs).encoder()
    assert isinstance(long.get_layer("text_embeddings"), keras_hub.layers.TokenAndPositionEmbedding)
    assert isinstance(long.get_layer("text_encoder2"), keras_hub.layers.TransformerEncoder)
    assert long.output.shape == (None, 8)
    out = long(real_data.text(8)[:4]).numpy()
    assert np.std(out) > 0
    # Same tokens, 2 vs 6 padding positions (same weights): identical features, because padding is
    # masked out of attention and of the average pooling (positions are absolute).
    short = branches.text_transformer(sequence_length=4, **kwargs).encoder()
    _copy_weights(long, short)
    a = short(np.array([[4, 9, 0, 0]], "int32")).numpy()
    b = long(np.array([[4, 9, 0, 0, 0, 0, 0, 0]], "int32")).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    c = long(np.array([[4, 10, 0, 0, 0, 0, 0, 0]], "int32")).numpy()
    assert not np.allclose(b, c, rtol=1e-3, atol=1e-4)  # while a real token does count


@pytest.mark.parametrize("reduction", ["max", "first"])
def test_text_transformer_reductions(reduction):
    b = branches.text_transformer(sequence_length=6, vocabulary_size=30, hidden_dim=4, num_heads=1,
                                  intermediate_dim=8, num_layers=1, reduction=reduction)
    assert b.features.shape == (None, 4)
    assert f"text_{reduction}_pool" in [layer.name for layer in b.encoder().layers]


def test_text_transformer_model_reloads_in_safe_mode(tmp_path, real_data):
    import mmzoo
    from mmzoo import heads

    text = branches.text_transformer(sequence_length=8, vocabulary_size=100, hidden_dim=8, num_heads=2,
                                     intermediate_dim=16, num_layers=1)
    model = mmzoo.compose([text], head=heads.multiclass(3), hidden=(4,))
    x = {"text": real_data.text(8)[:4]}
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded(x), model(x), rtol=1e-6, atol=1e-6)


TINY_BERT = {"vocabulary_size": 100, "hidden_dim": 8, "num_layers": 1, "num_heads": 2, "intermediate_dim": 16}


def test_text_bert_is_a_keras_hub_backbone_of_bert_base_size():
    import keras_hub

    tiny = branches.text_bert(sequence_length=8, **TINY_BERT)
    assert tiny.features.shape == (None, 8) and tiny.input.dtype == "int32"
    backbone = tiny.encoder().get_layer("text_backbone")
    assert isinstance(backbone, keras_hub.models.BertBackbone)
    assert backbone.max_sequence_length == 8
    assert branches.text_bert(sequence_length=8, max_sequence_length=32, **TINY_BERT).encoder().get_layer(
        "text_backbone").max_sequence_length == 32
    # BERT-base (bert_base_en_uncased) has 109,482,240 weights, 7,087,872 per layer: one layer of it is cheaper.
    defaults = inspect.signature(branches.text_bert).parameters
    assert {k: defaults[k].default for k in ("vocabulary_size", "hidden_dim", "num_layers", "num_heads",
                                             "intermediate_dim")} == {
        "vocabulary_size": 30522, "hidden_dim": 768, "num_layers": 12, "num_heads": 12, "intermediate_dim": 3072}
    one_layer = branches.text_bert(sequence_length=128, max_sequence_length=512, num_layers=1).encoder()
    assert one_layer.count_params() == 109_482_240 - 11 * 7_087_872


def test_text_bert_is_wired_like_a_pretrained_backbone():
    """Random and pretrained BERT share one code path: text_bert == text_keras_hub(BertBackbone)."""
    import keras_hub

    random = branches.text_bert(sequence_length=8, **TINY_BERT).encoder()
    backbone = keras_hub.models.BertBackbone(max_sequence_length=8, **TINY_BERT)
    wired = branches.text_keras_hub(backbone, sequence_length=8).encoder()

    def structure(model):
        return [(type(layer).__name__, layer.name, [w.shape for w in layer.weights]) for layer in model.layers]

    assert structure(random) == structure(wired)


def test_text_bert_pooled_output_ignores_padding(real_data):
    import keras_hub

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(max_sequence_length=16, dropout=0.0, **TINY_BERT)
    short = branches.text_keras_hub(backbone, sequence_length=8).encoder()
    long = branches.text_keras_hub(backbone, sequence_length=16).encoder()
    ids = real_data.text(8)[:4]
    ids[:, 6:] = 0  # at least two padding positions in each row
    padded = np.concatenate([ids, np.zeros_like(ids)], axis=1)
    a, b = short(ids).numpy(), long(padded).numpy()
    assert np.std(a) > 0
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_import_does_not_load_keras_hub():
    code = ("import sys, mmzoo, mmzoo.branches, mmzoo.layers, mmzoo.zoo; "
            "assert 'keras_hub' not in sys.modules, 'keras_hub was imported'")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "builder, kwargs, argument",
    [
        (branches.text_embedding, {"vocabulary_size": 0}, "vocabulary_size"),
        (branches.text_embedding, {"reduction": "sum"}, "reduction"),
        (branches.text_rnn, {"rnn": "transformer"}, "rnn"),
        (branches.text_rnn, {"num_layers": 0}, "num_layers"),
        (branches.text_transformer, {"hidden_dim": 10, "num_heads": 4}, "hidden_dim=10"),
        (branches.text_transformer, {"dropout": 1.5}, "dropout"),
        (branches.text_transformer, {"sequence_length": -3}, "sequence_length"),
        (branches.text_transformer, {"reduction": "pooled"}, "reduction"),
        (branches.text_bert, {"hidden_dim": 10, "num_heads": 4}, "hidden_dim=10"),
        (branches.text_bert, {"vocabulary_size": 0}, "vocabulary_size"),
        (branches.text_bert, {"sequence_length": 16, "max_sequence_length": 8}, "max_sequence_length=8"),
        (branches.text_bert, {"reduction": "max"}, "reduction"),
    ],
)
def test_text_builders_reject_bad_arguments(builder, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        builder(**kwargs)
