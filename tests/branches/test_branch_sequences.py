"""Branches' per-step ``sequence`` (and ``sequence_mask``): what sequence fusions (cross-attention) attend over."""

import keras
import numpy as np
import pytest

from mmzoo import branches
from mmzoo.branches.base import Branch

TEXT = {"sequence_length": 6, "vocabulary_size": 30}
IDS = np.array([[3, 7, 9, 0, 0, 0], [4, 4, 4, 4, 4, 2]], "int32")


def _sequence_model(branch):
    return keras.Model(branch.input, [branch.features, branch.sequence, branch.sequence_mask])


@pytest.mark.parametrize(
    "build, width",
    [
        (lambda: branches.text_embedding(**TEXT, embedding_dim=4), 4),
        (lambda: branches.text_embedding(**TEXT, embedding_dim=4, reduction="flatten"), 4),
        (lambda: branches.text_rnn(**TEXT, embedding_dim=4, rnn="gru", units=3), 3),
        (lambda: branches.text_rnn(**TEXT, embedding_dim=4, rnn="lstm", units=3, num_layers=2, bidirectional=True), 6),
        (lambda: branches.text_transformer(**TEXT, hidden_dim=8, num_heads=2, intermediate_dim=8, num_layers=1), 8),
        (lambda: branches.text_bert(**TEXT, hidden_dim=8, num_layers=1, num_heads=2, intermediate_dim=8), 8),
    ],
    ids=["embedding", "embedding_flatten", "gru", "bilstm2", "transformer", "bert"],
)
def test_text_branches_expose_per_token_outputs_and_the_padding_mask(build, width):
    branch = build()
    assert branch.sequence.shape == (None, 6, width)
    _, sequence, mask = _sequence_model(branch)(IDS)
    np.testing.assert_array_equal(np.asarray(mask), (IDS != 0).astype("int32"))
    assert np.asarray(sequence).shape == (2, 6, width) and np.std(np.asarray(sequence)) > 0


def test_text_embedding_sequence_is_the_token_embeddings():
    branch = branches.text_embedding(**TEXT, embedding_dim=4)
    features, sequence, _ = _sequence_model(branch)(IDS)
    table = branch.encoder().get_layer("text_embedding").embeddings.numpy()
    np.testing.assert_allclose(np.asarray(sequence), table[IDS], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(features)[0], table[[3, 7, 9]].mean(0), rtol=1e-5)  # pooling unchanged


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_text_rnn_features_are_the_final_state_as_without_a_sequence(rnn, bidirectional):
    """The last layer returns its sequence and states now; the features are the same values as before."""
    keras.utils.set_random_seed(0)
    branch = branches.text_rnn(**TEXT, embedding_dim=4, rnn=rnn, units=3, bidirectional=bidirectional)
    encoder = branch.encoder()
    # The former wiring: the last recurrent layer returns its final output only.
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[rnn](3)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    embedding = encoder.get_layer("text_embedding")
    layer.build(embedding(IDS).shape)
    layer.set_weights(encoder.get_layer(f"text_{'bi' if bidirectional else ''}{rnn}1").get_weights())
    features, sequence, _ = _sequence_model(branch)(IDS)
    np.testing.assert_allclose(np.asarray(features), np.asarray(layer(embedding(IDS))), rtol=1e-5, atol=1e-6)
    if not bidirectional:  # forward: the state is the output at the last real token
        np.testing.assert_allclose(np.asarray(features)[0], np.asarray(sequence)[0, 2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["avg", "max"])
def test_image_cnn_sequence_is_the_last_feature_map_as_regions(reduction, real_data):
    branch = branches.image_cnn((16, 16, 3), filters=(4, 5), reduction=reduction, padding="same", name="image")
    assert branch.sequence.shape == (None, 16, 5) and branch.sequence_mask is None  # a 4x4 map: 16 regions
    features, regions = keras.Model(branch.input, [branch.features, branch.sequence])(real_data.image((16, 16, 3))[:3])
    pool = np.mean if reduction == "avg" else np.max
    np.testing.assert_allclose(np.asarray(features), pool(np.asarray(regions), axis=1), rtol=1e-5, atol=1e-6)


def test_image_resnet_sequence_is_its_feature_map_as_regions(real_data):
    branch = branches.image_resnet((32, 32, 3), stackwise_num_blocks=(1, 1), stackwise_num_filters=(64, 8),
                                   block_type="basic_block", name="image")
    assert branch.sequence.shape == (None, 16, 8) and branch.sequence_mask is None
    features, regions = keras.Model(branch.input, [branch.features, branch.sequence])(real_data.image((32, 32, 3))[:2])
    np.testing.assert_allclose(np.asarray(features), np.asarray(regions).mean(1), rtol=1e-5, atol=1e-5)


def test_branches_without_a_sequence_and_sequence_validation():
    assert branches.audio_conv1d(2000, filters=(4,)).sequence is None
    inputs = keras.Input((6,), dtype="int32")
    features = keras.Input((4,))
    with pytest.raises(ValueError, match="rank-3"):
        Branch("text", inputs, features, "text", sequence=features)
    with pytest.raises(ValueError, match="sequence_mask"):
        Branch("text", inputs, features, "text", sequence=keras.Input((6, 4)), sequence_mask=keras.Input((5,)))
    with pytest.raises(ValueError, match="sequence_mask"):
        Branch("text", inputs, features, "text", sequence_mask=keras.Input((6,)))
