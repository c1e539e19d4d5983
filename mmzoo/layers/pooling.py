"""Masking-aware sequence pooling."""

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
