"""Fusion: layers that join the branches' feature vectors.

Every fusion is a serializable Keras layer called on a list of ``(batch,
width_i)`` tensors, one per modality, in the order of the branches:

============================  ==============================================
``concat()``                  concatenation (widths may differ)
``add(units=None)``           element-wise sum
``multiply(units=None)``      element-wise product
``weighted_sum(units=None)``  sum with one learned softmax weight per modality
``attention(units=None)``     per-example attention over modalities
``late(mode="mean")``         decision-level: combines per-modality logits
============================  ==============================================

Projection width. The element-wise kinds (``add``, ``multiply``,
``weighted_sum``, ``attention``) need one width, so each input gets its own
``Dense(units)`` projection when ``units`` is given or when the input widths
differ. With ``units=None`` and differing widths the width is
``min(narrowest input, DEFAULT_MAX_UNITS)`` (``DEFAULT_MAX_UNITS = 128``):
never wider than the narrowest modality (projecting up adds weights but no
information) and never more than 128, so a flattened conv map cannot make the
fusion huge by accident. The projections then hold
``units * (sum of input widths + number of inputs)`` weights: on the zoo's
flattened AV-digits branches (1600 and 5120 wide) ``attention()`` holds
860,416 projection weights instead of 34.4M with the widest-input rule. With
equal widths and ``units=None`` they add no projection. Pass ``units=`` to
choose the width yourself.

Mixed precision: every sublayer is made with the fusion's
``dtype=self.dtype_policy``, so a fusion built with ``dtype="mixed_float16"``
computes and returns float16 with float32 weights; the softmax over
modalities runs in float32 and is cast back.
"""

from __future__ import annotations

import keras
from keras import ops

from mmzoo import _validation as check

DEFAULT_MAX_UNITS = 128
"""Cap of the default projection width (``units=None`` with differing input widths)."""


def default_units(widths):
    """The projection width an element-wise fusion uses when ``units`` is None.

    Args:
        widths: The input feature widths, one per modality.

    Returns:
        The common width when all widths are equal (no projection is made),
        else ``min(min(widths), DEFAULT_MAX_UNITS)``.

    Example:

    >>> from mmzoo import fusion
    >>> fusion.default_units([1600, 5120])
    128
    >>> fusion.default_units([6, 3])
    3
    >>> fusion.default_units([512, 512])
    512
    """
    widths = [int(w) for w in widths]
    if len(set(widths)) == 1:
        return widths[0]
    return min(min(widths), DEFAULT_MAX_UNITS)


def _softmax_float32(logits, dtype, axis=-1):
    """Softmax computed in float32 (safe under float16 policies), returned in ``dtype``."""
    return ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=axis), dtype)


class _ProjectedFusion(keras.layers.Layer):
    """Base of the element-wise fusions: optional per-input projection to a common width."""

    def __init__(self, units=None, **kwargs):
        super().__init__(**kwargs)
        self.units = None if units is None else check.positive_int("units", units)
        self.projections = []

    def _check_inputs(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(
            input_shape[0], (list, tuple)
        ):
            raise ValueError(
                f"{type(self).__name__} must be called on a list of (batch, width) tensors, one per "
                f"modality. Received input shape: {input_shape}"
            )
        for shape in input_shape:
            if len(shape) != 2:
                raise ValueError(
                    f"{type(self).__name__} expects rank-2 (batch, width) inputs. Received shapes: {input_shape}"
                )
            if shape[-1] is None:
                raise ValueError(
                    f"{type(self).__name__} needs a known feature width for every input. "
                    f"Received shapes: {input_shape}"
                )

    def _fused_width(self, input_shape):
        return self.units or default_units([shape[-1] for shape in input_shape])

    def build(self, input_shape):
        self._check_inputs(input_shape)
        widths = [shape[-1] for shape in input_shape]
        self.fused_width = self._fused_width(input_shape)
        if self.units is not None or len(set(widths)) > 1:
            self.projections = [
                keras.layers.Dense(self.fused_width, name=f"projection_{i}", dtype=self.dtype_policy)
                for i in range(len(widths))
            ]
            for layer, shape in zip(self.projections, input_shape):
                layer.build(shape)
        self.built = True

    def project(self, inputs):
        if self.projections:
            return [layer(x) for layer, x in zip(self.projections, inputs)]
        return list(inputs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self._fused_width(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class ConcatFusion(keras.layers.Layer):
    """Concatenates the modality features along the last axis."""

    def call(self, inputs):
        return ops.concatenate(list(inputs), axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], sum(shape[-1] for shape in input_shape))


@keras.saving.register_keras_serializable(package="mmzoo")
class AddFusion(_ProjectedFusion):
    """Sums the (projected) modality features."""

    def call(self, inputs):
        projected = self.project(inputs)
        out = projected[0]
        for x in projected[1:]:
            out = out + x
        return out


@keras.saving.register_keras_serializable(package="mmzoo")
class MultiplyFusion(_ProjectedFusion):
    """Multiplies the (projected) modality features element-wise."""

    def call(self, inputs):
        projected = self.project(inputs)
        out = projected[0]
        for x in projected[1:]:
            out = out * x
        return out


@keras.saving.register_keras_serializable(package="mmzoo")
class WeightedSumFusion(_ProjectedFusion):
    """A sum weighted by one learned, softmax-normalised scalar per modality.

    The weights start equal; ``modality_weights()`` returns their current values.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.weight_logits = self.add_weight(
            shape=(len(input_shape),), initializer="zeros", name="weight_logits"
        )

    def modality_weights(self):
        """Returns the current softmax weights, one per modality (numpy)."""
        return keras.ops.convert_to_numpy(ops.softmax(self.weight_logits))

    def call(self, inputs):
        weights = _softmax_float32(self.weight_logits, self.compute_dtype)
        projected = self.project(inputs)
        out = projected[0] * weights[0]
        for i, x in enumerate(projected[1:], start=1):
            out = out + x * weights[i]
        return out


@keras.saving.register_keras_serializable(package="mmzoo")
class AttentionFusion(_ProjectedFusion):
    """Modality-level attention: a per-example softmax over modalities.

    Each (projected) modality vector ``h_i`` gets a score
    ``v . tanh(W h_i + b)``; the scores are softmax-normalised across
    modalities and the output is ``sum_i a_i h_i``. Unlike
    ``WeightedSumFusion`` the weights depend on the example, so a model can
    lean on the clean modality when the other is noisy. ``attention_weights``
    reads them out for a batch.

    Args:
        units: Projection width. ``None`` (default): no projection when the
            input widths are equal, else ``min(narrowest input, 128)`` (see
            ``default_units``).
        attention_dim: Width of the scoring MLP.
        **kwargs: Standard layer arguments (``name``, ``dtype``).
    """

    def __init__(self, units=None, attention_dim=64, **kwargs):
        super().__init__(units=units, **kwargs)
        self.attention_dim = check.positive_int("attention_dim", attention_dim)

    def build(self, input_shape):
        super().build(input_shape)
        self.score_hidden = keras.layers.Dense(
            self.attention_dim, activation="tanh", name="score_hidden", dtype=self.dtype_policy
        )
        self.score_hidden.build((None, self.fused_width))
        self.score = keras.layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)
        self.score.build((None, self.attention_dim))

    def _stack(self, inputs):
        return ops.stack(self.project(inputs), axis=1)  # (batch, modalities, width)

    def _weights(self, stacked):
        scores = ops.squeeze(self.score(self.score_hidden(stacked)), -1)  # (batch, modalities)
        return _softmax_float32(scores, self.compute_dtype, axis=-1)

    def compute_weights(self, inputs):
        """Returns the ``(batch, modalities)`` attention weights for ``inputs`` (builds the layer if needed)."""
        if not self.built:
            self.build([tuple(x.shape) for x in inputs])
        return self._weights(self._stack([ops.cast(x, self.compute_dtype) for x in inputs]))

    def call(self, inputs):
        stacked = self._stack(inputs)
        weights = self._weights(stacked)
        return ops.sum(stacked * ops.expand_dims(weights, -1), axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(attention_dim=self.attention_dim)
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class LateFusion(keras.layers.Layer):
    """Decision-level fusion: combines per-modality logits of the same shape.

    ``compose`` gives each branch its own output layer (logits) and joins them
    with this layer before the head's activation. Combining logits (not
    probabilities) keeps the loss numerically stable; summing logits is a
    product of the per-modality experts.

    Args:
        mode: ``"mean"``, ``"sum"`` or ``"weighted"`` (one learned,
            softmax-normalised weight per modality).
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        self.mode = check.choice("mode", mode, {"mean", "sum", "weighted"})

    def build(self, input_shape):
        shapes = {tuple(shape) for shape in input_shape}
        if len({shape[1:] for shape in shapes}) > 1:
            raise ValueError(f"LateFusion needs logits of one shape per modality. Received shapes: {input_shape}")
        if self.mode == "weighted":
            self.weight_logits = self.add_weight(
                shape=(len(input_shape),), initializer="zeros", name="weight_logits"
            )
        self.built = True

    def call(self, inputs):
        stacked = ops.stack(list(inputs), axis=0)
        if self.mode == "sum":
            return ops.sum(stacked, axis=0)
        if self.mode == "mean":
            return ops.mean(stacked, axis=0)
        weights = _softmax_float32(self.weight_logits, self.compute_dtype)
        return ops.tensordot(weights, stacked, axes=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config


def concat(name="fusion"):
    """Concatenation fusion: ``(batch, sum of widths)``, no weights.

    Args:
        name: Layer name.

    Returns:
        A ``ConcatFusion`` layer.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> tuple(fusion.concat()([np.ones((2, 6)), np.ones((2, 3))]).shape)
    (2, 9)
    """
    return ConcatFusion(name=name)


def add(units=None, name="fusion"):
    """Element-wise sum of the modality features, projected to a common width when needed.

    Args:
        units: Common width of the modalities. ``None`` (default): no
            projection when the input widths are equal, else each input is
            projected to ``min(narrowest input, 128)`` (see ``default_units``).
        name: Layer name.

    Returns:
        An ``AddFusion`` layer.

    Raises:
        ValueError: If ``units`` is not a positive integer or None.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> tuple(fusion.add()([np.ones((2, 6)), np.ones((2, 3))]).shape)  # projected to the narrowest
    (2, 3)
    """
    return AddFusion(units=units, name=name)


def multiply(units=None, name="fusion"):
    """Element-wise product of the modality features, projected to a common width when needed.

    Args:
        units: Common width of the modalities. ``None`` (default): no
            projection when the input widths are equal, else each input is
            projected to ``min(narrowest input, 128)`` (see ``default_units``).
        name: Layer name.

    Returns:
        A ``MultiplyFusion`` layer.

    Raises:
        ValueError: If ``units`` is not a positive integer or None.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> tuple(fusion.multiply(units=4)([np.ones((2, 6)), np.ones((2, 3))]).shape)
    (2, 4)
    """
    return MultiplyFusion(units=units, name=name)


def weighted_sum(units=None, name="fusion"):
    """Learned weighted sum: one softmax-normalised weight per modality (equal at start).

    Args:
        units: Common width of the modalities. ``None`` (default): no
            projection when the input widths are equal, else each input is
            projected to ``min(narrowest input, 128)`` (see ``default_units``).
        name: Layer name.

    Returns:
        A ``WeightedSumFusion`` layer; ``modality_weights()`` reads the weights.

    Raises:
        ValueError: If ``units`` is not a positive integer or None.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.weighted_sum()
    >>> tuple(layer([np.ones((2, 4)), np.ones((2, 4))]).shape)
    (2, 4)
    >>> layer.modality_weights().tolist()
    [0.5, 0.5]
    """
    return WeightedSumFusion(units=units, name=name)


def attention(units=None, attention_dim=64, name="fusion"):
    """Per-example modality attention; read the weights with ``attention_weights``.

    Args:
        units: Common width of the modalities. ``None`` (default): no
            projection when the input widths are equal, else each input is
            projected to ``min(narrowest input, 128)`` (see ``default_units``).
        attention_dim: Width of the scoring MLP.
        name: Layer name.

    Returns:
        An ``AttentionFusion`` layer.

    Raises:
        ValueError: If ``units`` or ``attention_dim`` is not a positive integer.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.attention()
    >>> tuple(layer([np.ones((2, 1600)), np.ones((2, 5120))]).shape)  # the width is capped at 128
    (2, 128)
    >>> layer.count_params()  # 128 * (1600 + 5120 + 2) projection + 128 * 64 + 64 + 64 scorer
    868736
    """
    return AttentionFusion(units=units, attention_dim=attention_dim, name=name)


def late(mode="mean", name="fusion"):
    """Decision-level fusion: one output layer per modality, logits combined by ``mode``.

    Args:
        mode: ``"mean"``, ``"sum"`` or ``"weighted"`` (one learned,
            softmax-normalised weight per modality).
        name: Layer name.

    Returns:
        A ``LateFusion`` layer.

    Raises:
        ValueError: If ``mode`` is not one of the three.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> fusion.late("sum")([np.ones((1, 2)), np.ones((1, 2))]).numpy().tolist()
    [[2.0, 2.0]]
    """
    return LateFusion(mode=mode, name=name)


FUSIONS = {
    "concat": concat,
    "add": add,
    "multiply": multiply,
    "weighted_sum": weighted_sum,
    "attention": attention,
    "late": late,
}


def get(identifier):
    """Returns a fusion layer from a name in ``FUSIONS`` or passes a layer through.

    Raises:
        ValueError: If ``identifier`` is neither a known name nor a Keras layer.
    """
    if isinstance(identifier, keras.layers.Layer):
        return identifier
    if isinstance(identifier, str) and identifier in FUSIONS:
        return FUSIONS[identifier]()
    raise ValueError(f"`fusion` must be a fusion layer or one of {sorted(FUSIONS)}. Received: fusion={identifier!r}")


def _attention_layer(model, layer_name):
    """The ``AttentionFusion`` layer of ``model`` named ``layer_name``, or None."""
    try:
        layer = model.get_layer(layer_name)
    except ValueError:
        return None
    return layer if isinstance(layer, AttentionFusion) else None


def attention_weights(model, inputs, layer_name="fusion"):
    """Reads per-example modality attention weights out of a composed model.

    Args:
        model: A model built by ``compose`` with ``fusion.attention()``.
        inputs: A batch of model inputs (dict keyed by modality).
        layer_name: Name of the ``AttentionFusion`` layer.

    Returns:
        A numpy array ``(batch, modalities)``; columns follow the order of the
        fusion's inputs (the branches' order in ``compose``).

    Raises:
        ValueError: If the model has no ``AttentionFusion`` layer of that name.

    Example::

        model = mmzoo.build("av_digits_attention")
        train_ds, test_ds = mmzoo.datasets.av_digits()
        weights = fusion.attention_weights(model, next(iter(test_ds))[0])
    """
    layer = _attention_layer(model, layer_name)
    if layer is None:
        raise ValueError(f"Model {model.name!r} has no AttentionFusion layer named {layer_name!r}.")
    features = keras.Model(model.input, layer.input)(inputs)
    return keras.ops.convert_to_numpy(layer.compute_weights(features))
