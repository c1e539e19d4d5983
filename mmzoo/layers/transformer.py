"""Transformer building blocks for the text branches (masking-aware)."""

from __future__ import annotations

import keras
from keras import ops

from mmzoo import _validation as check


@keras.saving.register_keras_serializable(package="mmzoo")
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Token embedding plus a learned position embedding.

    Token id 0 is padding: the layer emits a mask that downstream
    ``TransformerEncoder`` blocks and masked poolings honour.

    Args:
        vocabulary_size: Number of token ids (ids are in ``[0, vocabulary_size)``).
        sequence_length: Maximum sequence length (positions).
        embed_dim: Embedding width.
        **kwargs: Standard layer arguments.

    Input shape: ``(batch, length)`` int ids, ``length <= sequence_length``.
    Output shape: ``(batch, length, embed_dim)``.
    """

    def __init__(self, vocabulary_size, sequence_length, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = check.positive_int("vocabulary_size", vocabulary_size)
        self.sequence_length = check.positive_int("sequence_length", sequence_length)
        self.embed_dim = check.positive_int("embed_dim", embed_dim)
        self.token_embedding = keras.layers.Embedding(vocabulary_size, embed_dim, name="token_embedding")
        self.position_embedding = keras.layers.Embedding(sequence_length, embed_dim, name="position_embedding")
        self.supports_masking = True

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build((input_shape[-1],))
        self.built = True

    def call(self, inputs):
        positions = ops.arange(ops.shape(inputs)[-1])
        return self.token_embedding(inputs) + self.position_embedding(positions)

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size, sequence_length=self.sequence_length, embed_dim=self.embed_dim
        )
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class TransformerEncoder(keras.layers.Layer):
    """One post-norm Transformer encoder block (self-attention + feed-forward).

    Args:
        num_heads: Attention heads.
        intermediate_dim: Width of the feed-forward layer.
        dropout: Dropout rate after attention and feed-forward.
        activation: Feed-forward activation (``"gelu"`` as in BERT, or ``"relu"``).
        layer_norm_epsilon: Epsilon of the two layer norms.
        **kwargs: Standard layer arguments.

    Input shape: ``(batch, length, width)``; an incoming padding mask is used
    as the attention mask and passed on. Output shape: same as input.
    """

    def __init__(
        self, num_heads, intermediate_dim, dropout=0.0, activation="gelu", layer_norm_epsilon=1e-12, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_heads = check.positive_int("num_heads", num_heads)
        self.intermediate_dim = check.positive_int("intermediate_dim", intermediate_dim)
        self.dropout = check.fraction("dropout", dropout)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.num_heads:
            raise ValueError(
                f"The input width ({width}) must be divisible by `num_heads`. Received: num_heads={self.num_heads}"
            )
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, width // self.num_heads, dropout=self.dropout, name="attention"
        )
        self.attention.build(input_shape, input_shape)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="attention_norm")
        self.attention_norm.build(input_shape)
        self.intermediate = keras.layers.Dense(self.intermediate_dim, activation=self.activation, name="intermediate")
        self.intermediate.build(input_shape)
        self.output_dense = keras.layers.Dense(width, name="output_dense")
        self.output_dense.build((*input_shape[:-1], self.intermediate_dim))
        self.output_norm = keras.layers.LayerNormalization(epsilon=self.layer_norm_epsilon, name="output_norm")
        self.output_norm.build(input_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        self.built = True

    def call(self, inputs, mask=None, training=None):
        attention_mask = None if mask is None else ops.expand_dims(ops.cast(mask, "bool"), 1)
        attended = self.attention(inputs, inputs, attention_mask=attention_mask, training=training)
        x = self.attention_norm(inputs + self.dropout_layer(attended, training=training))
        ff = self.output_dense(self.intermediate(x))
        return self.output_norm(x + self.dropout_layer(ff, training=training))

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
        )
        return config
