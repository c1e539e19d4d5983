"""Text branch builders: inputs are int32 token ids ``(sequence_length,)``, 0 = padding.

Tokenization (strings to ids) happens in the input pipeline (``mmzoo.data``),
never inside the trainable model. The Transformer branches are built from
KerasHub layers and backbones (``keras_hub`` is imported inside the builders,
so ``import mmzoo.branches`` does not pay for it).
"""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch, recurrent_stack
from mmzoo.branches.keras_hub import text_keras_hub
from mmzoo.layers import SequencePooling, TokenIdsToEncoderInputs


def _token_input(sequence_length, vocabulary_size, name):
    check.positive_int("sequence_length", sequence_length)
    check.positive_int("vocabulary_size", vocabulary_size)
    check.identifier("name", name)
    return keras.Input((sequence_length,), dtype="int32", name=name)


def _padding_mask(token_ids, name):
    """The ``(batch, steps)`` int32 padding mask of ``token_ids`` (1 for ids != 0): layer ``{name}_padding_mask``."""
    masks = TokenIdsToEncoderInputs("token_ids", "padding_mask", None, name=f"{name}_padding_mask")(token_ids)
    return masks["padding_mask"]


def _check_heads(hidden_dim, num_heads):
    check.positive_int("hidden_dim", hidden_dim)
    check.positive_int("num_heads", num_heads)
    if hidden_dim % num_heads:
        raise ValueError(
            f"`hidden_dim` must be divisible by num_heads={num_heads}. Received: hidden_dim={hidden_dim}"
        )


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
        A ``Branch``; its ``sequence`` is the ``(batch, sequence_length,
        embedding_dim)`` token embeddings with ``sequence_mask`` = ids != 0.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> text = branches.text_embedding(sequence_length=100, vocabulary_size=10000)
    >>> text.features.shape
    (None, 64)
    >>> text.sequence.shape, text.sequence_mask.shape
    ((None, 100, 64), (None, 100))
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
    return Branch(name, inputs, features, "text", sequence=x, sequence_mask=_padding_mask(inputs, name))


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
        A ``Branch`` with ``units`` (or ``2 * units``) features: the last
        layer's final state. Its ``sequence`` is that layer's per-token
        outputs, with ``sequence_mask`` = ids != 0.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> text = branches.text_rnn(sequence_length=10, rnn="gru", bidirectional=True)
    >>> text.features.shape
    (None, 128)
    >>> text.sequence.shape
    (None, 10, 128)
    """
    inputs = _token_input(sequence_length, vocabulary_size, name)
    check.positive_int("embedding_dim", embedding_dim)
    check.choice("rnn", rnn, {"simple", "lstm", "gru"})
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, mask_zero=bool(mask_padding), name=f"{name}_embedding")(
        inputs
    )
    state, sequence = recurrent_stack(x, rnn, units, num_layers, bidirectional, name, return_sequence=True)
    return Branch(name, inputs, state, "text", sequence=sequence, sequence_mask=_padding_mask(inputs, name))


def text_transformer(
    sequence_length=128,
    vocabulary_size=10000,
    hidden_dim=64,
    num_heads=4,
    intermediate_dim=128,
    num_layers=2,
    dropout=0.1,
    activation="gelu",
    reduction="avg",
    name="text",
):
    """KerasHub token + position embedding and ``num_layers`` KerasHub Transformer encoder blocks.

    ``keras_hub.layers.TokenAndPositionEmbedding`` -> ``LayerNormalization``
    -> ``Dropout`` -> ``num_layers`` x ``keras_hub.layers.TransformerEncoder``
    (post-norm) -> ``SequencePooling``. The padding mask (ids != 0, from
    ``TokenIdsToEncoderInputs``) is passed to every encoder block and to the
    pooling, so padding is left out of attention and of the ``"avg"`` /
    ``"max"`` pooling.

    Args:
        sequence_length: Token ids per example (also the number of learned
            positions).
        vocabulary_size: Number of distinct ids (id 0 is padding).
        hidden_dim: Model width; must be divisible by ``num_heads``.
        num_heads: Attention heads.
        intermediate_dim: Feed-forward width.
        num_layers: Encoder blocks.
        dropout: Dropout rate (embeddings, attention, feed-forward).
        activation: Feed-forward activation.
        reduction: ``"avg"`` / ``"max"`` over non-padding tokens, or
            ``"first"`` (the first token, a ``[CLS]`` position).
        name: Input name and layer-name prefix (``{name}_embeddings``,
            ``{name}_encoder1``, ...).

    Returns:
        A ``Branch`` with ``hidden_dim`` features; its ``sequence`` is the
        last encoder block's per-token outputs, with ``sequence_mask`` the
        padding mask.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> text = branches.text_transformer(sequence_length=32, hidden_dim=64, num_heads=4)
    >>> text.features.shape
    (None, 64)
    """
    import keras_hub  # noqa: PLC0415

    inputs = _token_input(sequence_length, vocabulary_size, name)
    _check_heads(hidden_dim, num_heads)
    check.positive_int("intermediate_dim", intermediate_dim)
    check.positive_int("num_layers", num_layers)
    check.fraction("dropout", dropout)
    check.choice("reduction", reduction, {"avg", "max", "first"})
    masks = TokenIdsToEncoderInputs("token_ids", "padding_mask", None, name=f"{name}_padding_mask")(inputs)
    padding_mask = masks["padding_mask"]  # int32, 1 for real tokens
    x = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size, sequence_length, hidden_dim, name=f"{name}_embeddings"
    )(inputs)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name=f"{name}_embeddings_norm")(x)
    x = keras.layers.Dropout(dropout, name=f"{name}_embeddings_dropout")(x)
    for i in range(1, num_layers + 1):
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim, num_heads, dropout=dropout, activation=activation, name=f"{name}_encoder{i}"
        )(x, padding_mask=padding_mask)
    features = SequencePooling(reduction, name=f"{name}_{reduction}_pool")(x, mask=padding_mask)
    return Branch(name, inputs, features, "text", sequence=x, sequence_mask=padding_mask)


def text_bert(
    sequence_length=128,
    vocabulary_size=30522,
    hidden_dim=768,
    num_layers=12,
    num_heads=12,
    intermediate_dim=3072,
    dropout=0.1,
    max_sequence_length=None,
    reduction="pooled",
    name="text",
):
    """A ``keras_hub.models.BertBackbone`` with random weights; features are its pooled output.

    The defaults are BERT-base's shape: WordPiece vocabulary of 30,522, 12
    layers of width 768 with 12 heads, GELU feed-forward of 3,072, and the
    tanh pooler on the first (``[CLS]``) token; 109,482,240 weights with
    ``max_sequence_length=512`` (BERT-base's position table), 109,187,328 with
    the default 128 positions. Pass smaller sizes for tests.

    The branch is wired exactly as ``text_keras_hub(backbone)``: the model
    input is int32 token ids (padding 0), from which the padding mask and
    zero segment ids are made inside the model. A pretrained BERT is the same
    branch from a preset: ``text_keras_hub("bert_base_en_uncased")``.

    Args:
        sequence_length: Token ids per example (first id is ``[CLS]``).
        vocabulary_size: WordPiece vocabulary size.
        hidden_dim: Model width; must be divisible by ``num_heads``.
        num_layers: Encoder blocks.
        num_heads: Attention heads.
        intermediate_dim: Feed-forward width.
        dropout: Dropout rate.
        max_sequence_length: Rows of the position table (``None``: the
            ``sequence_length``); at least ``sequence_length``.
        reduction: ``"pooled"`` (the BERT pooler on ``[CLS]``) or ``"avg"``
            (mean of the sequence output over non-padding tokens).
        name: Input name and layer-name prefix; the backbone is the nested
            layer ``{name}_backbone``.

    Returns:
        A ``PretrainedBranch`` (no preprocessor) with ``hidden_dim`` features;
        its ``sequence`` is the backbone's ``sequence_output`` with
        ``sequence_mask`` the padding mask.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> text = branches.text_bert(sequence_length=64, hidden_dim=128, num_layers=2, num_heads=2,
    ...                           intermediate_dim=256)
    >>> text.features.shape
    (None, 128)
    """
    import keras_hub  # noqa: PLC0415

    _token_input(sequence_length, vocabulary_size, name)  # validates before building the backbone
    _check_heads(hidden_dim, num_heads)
    check.positive_int("num_layers", num_layers)
    check.positive_int("intermediate_dim", intermediate_dim)
    check.fraction("dropout", dropout)
    check.choice("reduction", reduction, {"pooled", "avg"})
    if max_sequence_length is None:
        max_sequence_length = sequence_length
    if check.positive_int("max_sequence_length", max_sequence_length) < sequence_length:
        raise ValueError(
            f"`max_sequence_length` must be at least sequence_length={sequence_length}. "
            f"Received: max_sequence_length={max_sequence_length}"
        )
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        num_layers=num_layers,
        num_heads=num_heads,
        hidden_dim=hidden_dim,
        intermediate_dim=intermediate_dim,
        dropout=dropout,
        max_sequence_length=max_sequence_length,
        name=f"{name}_backbone",
    )
    return text_keras_hub(backbone, sequence_length=sequence_length, reduction=reduction, name=name)
