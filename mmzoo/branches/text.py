"""Text branch builders: inputs are int32 token ids ``(sequence_length,)``, 0 = padding.

Tokenization (strings to ids) happens in the input pipeline (``mmzoo.data``),
never inside the trainable model.
"""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch, recurrent_stack
from mmzoo.layers import SequencePooling, TokenAndPositionEmbedding, TransformerEncoder

def _token_input(sequence_length, vocabulary_size, name):
    check.positive_int("sequence_length", sequence_length)
    check.positive_int("vocabulary_size", vocabulary_size)
    check.identifier("name", name)
    return keras.Input((sequence_length,), dtype="int32", name=name)


def text_embedding(sequence_length=100, vocabulary_size=10000, embedding_dim=64, reduction="avg", name="text"):
    """Token embedding followed by a pooling or a flatten.

    Args:
        sequence_length: Token ids per example.
        vocabulary_size: Number of distinct ids (id 0 is padding).
        embedding_dim: Embedding width.
        reduction: ``"avg"`` or ``"max"`` (pooling over non-padding tokens)
            or ``"flatten"`` (position-aware, ``sequence_length *
            embedding_dim`` features).
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch``.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> text = branches.text_embedding(sequence_length=100, vocabulary_size=10000)
    >>> text.features.shape
    (None, 64)
    """
    inputs = _token_input(sequence_length, vocabulary_size, name)
    check.positive_int("embedding_dim", embedding_dim)
    check.choice("reduction", reduction, {"avg", "max", "flatten"})
    x = keras.layers.Embedding(
        vocabulary_size, embedding_dim, mask_zero=reduction != "flatten", name=f"{name}_embedding"
    )(inputs)
    if reduction == "flatten":
        features = keras.layers.Flatten(name=f"{name}_flatten")(x)
    else:
        features = SequencePooling(reduction, name=f"{name}_{reduction}_pool")(x)
    return Branch(name, inputs, features, "text")


def text_rnn(
    sequence_length=100,
    vocabulary_size=10000,
    embedding_dim=64,
    rnn="lstm",
    units=64,
    num_layers=1,
    bidirectional=False,
    mask_padding=True,
    name="text",
):
    """Embedding followed by a stack of recurrent layers.

    Args:
        sequence_length: Token ids per example.
        vocabulary_size: Number of distinct ids.
        embedding_dim: Embedding width.
        rnn: ``"simple"`` (SimpleRNN), ``"lstm"`` or ``"gru"``.
        units: Units of each recurrent layer.
        num_layers: Stacked recurrent layers; the last returns its final state.
        bidirectional: Wrap each layer in ``Bidirectional`` (doubles the width).
        mask_padding: Mask id 0 so padding does not feed the recurrence.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` with ``units`` (or ``2 * units``) features.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> text = branches.text_rnn(sequence_length=10, rnn="gru", bidirectional=True)
    >>> text.features.shape
    (None, 128)
    """
    inputs = _token_input(sequence_length, vocabulary_size, name)
    check.positive_int("embedding_dim", embedding_dim)
    check.choice("rnn", rnn, {"simple", "lstm", "gru"})
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=bool(mask_padding), name=f"{name}_embedding")(
        inputs
    )
    x = recurrent_stack(x, rnn, units, num_layers, bidirectional, name)
    return Branch(name, inputs, x, "text")


def text_transformer(
    sequence_length=128,
    vocabulary_size=10000,
    embed_dim=64,
    num_heads=4,
    intermediate_dim=128,
    num_layers=2,
    dropout=0.1,
    activation="gelu",
    reduction="avg",
    pooler=False,
    name="text",
):
    """Token + position embedding and ``num_layers`` Transformer encoder blocks.

    Padding (id 0) is masked out of attention and pooling.

    Args:
        sequence_length: Token ids per example (also the number of positions).
        vocabulary_size: Number of distinct ids.
        embed_dim: Model width; must be divisible by ``num_heads``.
        num_heads: Attention heads.
        intermediate_dim: Feed-forward width.
        num_layers: Encoder blocks.
        dropout: Dropout rate.
        activation: Feed-forward activation.
        reduction: ``"avg"`` / ``"max"`` over tokens, or ``"first"`` (the
            first token, a ``[CLS]`` position).
        pooler: Add BERT's pooler (``Dense(embed_dim, tanh)``) after the
            reduction.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` with ``embed_dim`` features.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> text = branches.text_transformer(sequence_length=32, embed_dim=64, num_heads=4)
    >>> text.features.shape
    (None, 64)
    """
    inputs = _token_input(sequence_length, vocabulary_size, name)
    check.positive_int("embed_dim", embed_dim)
    check.positive_int("num_heads", num_heads)
    if embed_dim % num_heads:
        raise ValueError(
            f"`embed_dim` must be divisible by num_heads={num_heads}. Received: embed_dim={embed_dim}"
        )
    check.positive_int("intermediate_dim", intermediate_dim)
    check.positive_int("num_layers", num_layers)
    check.fraction("dropout", dropout)
    check.choice("reduction", reduction, {"avg", "max", "first"})
    x = TokenAndPositionEmbedding(vocabulary_size, sequence_length, embed_dim, name=f"{name}_embeddings")(inputs)
    x = keras.layers.LayerNormalization(epsilon=1e-12, name=f"{name}_embeddings_norm")(x)
    x = keras.layers.Dropout(dropout, name=f"{name}_embeddings_dropout")(x)
    for i in range(1, num_layers + 1):
        x = TransformerEncoder(num_heads, intermediate_dim, dropout, activation, name=f"{name}_encoder{i}")(x)
    x = SequencePooling(reduction, name=f"{name}_{reduction}_pool")(x)
    if pooler:
        x = keras.layers.Dense(embed_dim, activation="tanh", name=f"{name}_pooler")(x)
    return Branch(name, inputs, x, "text")


def text_bert(
    sequence_length=128,
    vocabulary_size=30522,
    hidden_dim=768,
    num_layers=12,
    num_heads=12,
    intermediate_dim=3072,
    dropout=0.1,
    name="text",
):
    """A BERT-style encoder (random weights); features are its pooled output.

    The defaults are BERT-base's shape (110M weights): WordPiece vocabulary of
    30,522, 12 layers of width 768 with 12 heads, GELU feed-forward of 3,072,
    and the tanh pooler on the first (``[CLS]``) token. Pass smaller sizes for
    tests. Loading pretrained weights is done with the pretrained branches.

    Args:
        sequence_length: Token ids per example (first id is ``[CLS]``).
        vocabulary_size: WordPiece vocabulary size.
        hidden_dim: Model width.
        num_layers: Encoder blocks.
        num_heads: Attention heads.
        intermediate_dim: Feed-forward width.
        dropout: Dropout rate.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` with ``hidden_dim`` features (the pooled output).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> text = branches.text_bert(sequence_length=64, hidden_dim=128, num_layers=2, num_heads=2,
    ...                           intermediate_dim=256)
    >>> text.features.shape
    (None, 128)
    """
    return text_transformer(
        sequence_length=sequence_length,
        vocabulary_size=vocabulary_size,
        embed_dim=hidden_dim,
        num_heads=num_heads,
        intermediate_dim=intermediate_dim,
        num_layers=num_layers,
        dropout=dropout,
        activation="gelu",
        reduction="first",
        pooler=True,
        name=name,
    )
