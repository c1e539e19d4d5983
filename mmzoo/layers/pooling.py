"""Masking-aware sequence pooling, and CLIP's end-token pooling."""

from __future__ import annotations

import keras
from keras import ops

from mmzoo import _validation as check


@keras.saving.register_keras_serializable(package="mmzoo")
class SequencePooling(keras.layers.Layer):
    """Reduces ``(batch, length, width)`` to ``(batch, width)``, ignoring padding.

    Args:
        mode: ``"avg"`` (mean over unmasked steps), ``"max"`` (max over
            unmasked steps) or ``"first"`` (the first step, BERT's ``[CLS]``).
        **kwargs: Standard layer arguments (``name``, ``dtype``...).

    Raises:
        ValueError: If ``mode`` is not one of the three.

    Under a float16 policy the masked ``"max"`` fills padding with ``-1e4``
    (float16's range ends at 65504) instead of ``-1e9``.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import SequencePooling
    >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
    >>> mask = np.array([[True, True, False]])
    >>> SequencePooling("avg")(x, mask=mask).numpy().tolist()
    [[2.0]]
    >>> SequencePooling("max")(x, mask=mask).numpy().tolist()
    [[3.0]]
    """

    def __init__(self, mode="avg", **kwargs):
        super().__init__(**kwargs)
        self.mode = check.choice("mode", mode, {"avg", "max", "first"})
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if self.mode == "first":
            return inputs[:, 0, :]
        if mask is None:
            return ops.mean(inputs, axis=1) if self.mode == "avg" else ops.max(inputs, axis=1)
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        if self.mode == "avg":
            return ops.sum(inputs * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        lowest = ops.cast(-1e4 if inputs.dtype == "float16" else -1e9, inputs.dtype)
        return ops.max(ops.where(weights > 0, inputs, lowest), axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class ArgmaxTokenPooling(keras.layers.Layer):
    """``(sequence, token_ids)`` -> the sequence's step at each row's largest token id.

    CLIP's text pooling: CLIP's end-of-text token has the largest id of its
    vocabulary, so this picks the output at the end token whatever padding
    follows it (the first one if it repeats).

    Args:
        **kwargs: Standard layer arguments.

    Example:

    >>> import numpy as np
    >>> sequence = np.arange(12, dtype="float32").reshape(1, 3, 4)
    >>> ArgmaxTokenPooling()([sequence, np.array([[5, 9, 0]], "int32")]).numpy().tolist()
    [[4.0, 5.0, 6.0, 7.0]]
    """

    def call(self, inputs):
        sequence, token_ids = inputs
        index = ops.argmax(token_ids, axis=-1)[:, None, None]
        return ops.squeeze(ops.take_along_axis(sequence, index, axis=1), axis=1)

    def compute_output_shape(self, input_shape):
        sequence_shape = input_shape[0]
        return (sequence_shape[0], sequence_shape[-1])
