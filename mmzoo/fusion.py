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
``gated(units=None)``         Gated Multimodal Unit: per-unit gates mix
                              ``tanh`` projections
``low_rank(units, rank=4)``   Low-rank Multimodal Fusion (multiplicative
                              interactions through rank-``rank`` factors)
``cross_attention(units)``    two *sequences* (text tokens, image regions)
                              attend to each other; pooled and summed
============================  ==============================================

``cross_attention`` is called on the branches' ``sequence`` tensors (and
``sequence_mask``) instead of their feature vectors (``uses_sequences =
True``); ``compose`` does that for it.

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
    """Modality-level attention: a per-example weighting of the modalities that cannot collapse onto one.

    Each modality is projected (``h_i``, see ``units``), layer-normalised
    (``n_i = LayerNorm_i(h_i)``) and scored ``s_i = v . tanh(W n_i + b)``.
    The weights mix the softmax of the scores with uniform weights,
    ``a_i = uniform_mix / M + (1 - uniform_mix) * softmax(s)_i`` over the
    ``M`` modalities present in the example, so each keeps at least
    ``uniform_mix / M``. The output, with ``c_i = M * a_i`` (1 for equal
    weights):

    * ``output_mode="concat"`` (default): the inputs side by side, each
      scaled by its weight, ``[c_1 x_1, ..., c_M x_M]`` (equal weights give
      plain concatenation, so nothing is lost to a projection);
    * ``output_mode="sum"``: ``sum_i c_i n_i``, ``(batch, units)``.

    The weights depend on the example, so a model can lean on the clean
    modality when the other is noisy; ``attention_weights`` reads them out. A
    modality whose feature vector is all zeros (absent, see
    ``mmzoo.balance``) gets weight 0.

    Why this form (measured on the embedded AV-digits, the zoo's encoders,
    15 epochs, test accuracy; concat 0.919 mean of seeds 0-2): a plain
    softmax over modalities collapses. The modality that lowers the loss
    first gets more weight, hence more gradient, hence more weight: the
    unnormalised layer ended with weight 1.000 on the image and 0.000 on the
    audio (0.784, seed 0); layer-normalising alone still gave 0.985 / 0.015
    (0.748). With ``uniform_mix=0.5`` the audio keeps its floor (weights
    about 0.72 / 0.28) and the layer reaches 0.864 with the summed output and
    0.912 with the weighted concatenation (seeds 0-2).

    Args:
        units: Projection width used for scoring (and the ``"sum"`` output).
            ``None`` (default): no projection when the input widths are
            equal, else ``min(narrowest input, 128)`` (see ``default_units``).
        attention_dim: Width of the scoring MLP.
        uniform_mix: Share of the uniform weights in ``a`` (in [0, 1)).
        output_mode: ``"concat"`` (default) or ``"sum"``.
        **kwargs: Standard layer arguments (``name``, ``dtype``).
    """

    def __init__(self, units=None, attention_dim=64, uniform_mix=0.5, output_mode="concat", **kwargs):
        super().__init__(units=units, **kwargs)
        self.attention_dim = check.positive_int("attention_dim", attention_dim)
        self.uniform_mix = check.fraction("uniform_mix", uniform_mix)
        self.output_mode = check.choice("output_mode", output_mode, {"sum", "concat"})

    def build(self, input_shape):
        super().build(input_shape)
        self.norms = [
            keras.layers.LayerNormalization(name=f"norm_{i}", dtype=self.dtype_policy) for i in range(len(input_shape))
        ]
        for layer in self.norms:
            layer.build((None, self.fused_width))
        self.score_hidden = keras.layers.Dense(
            self.attention_dim, activation="tanh", name="score_hidden", dtype=self.dtype_policy
        )
        self.score_hidden.build((None, self.fused_width))
        self.score = keras.layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)
        self.score.build((None, self.attention_dim))

    def _stack(self, inputs):
        vectors = [norm(x) for norm, x in zip(self.norms, self.project(inputs))]
        return ops.stack(vectors, axis=1)  # (batch, modalities, width)

    @staticmethod
    def _present(inputs):
        """``(batch, modalities)`` float32: 1 where the modality's input features are not all zero."""
        return ops.stack(
            [ops.cast(ops.any(ops.not_equal(x, 0), axis=-1), "float32") for x in inputs], axis=1
        )

    def _weights(self, stacked, present):
        scores = ops.squeeze(self.score(self.score_hidden(stacked)), -1)  # (batch, modalities)
        scores = ops.cast(scores, "float32")
        scores = ops.where(present > 0, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        if self.uniform_mix:
            uniform = present / ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0)
            weights = self.uniform_mix * uniform + (1.0 - self.uniform_mix) * weights
        return ops.cast(weights, self.compute_dtype)

    def compute_weights(self, inputs):
        """Returns the ``(batch, modalities)`` attention weights for ``inputs`` (builds the layer if needed)."""
        if not self.built:
            self.build([tuple(x.shape) for x in inputs])
        inputs = [ops.cast(x, self.compute_dtype) for x in inputs]
        return self._weights(self._stack(inputs), self._present(inputs))

    def call(self, inputs):
        present = self._present(inputs)
        stacked = self._stack(inputs)
        weights = self._weights(stacked, present)
        count = ops.cast(ops.sum(present, axis=1, keepdims=True), self.compute_dtype)
        scale = weights * count  # (batch, modalities); 1 for every modality when the weights are equal
        if self.output_mode == "concat":
            return ops.concatenate([x * scale[:, i : i + 1] for i, x in enumerate(inputs)], axis=-1)
        return ops.sum(stacked * ops.expand_dims(scale, -1), axis=1)

    def compute_output_shape(self, input_shape):
        if self.output_mode == "concat":
            return (input_shape[0][0], sum(shape[-1] for shape in input_shape))
        return super().compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(attention_dim=self.attention_dim, uniform_mix=self.uniform_mix, output_mode=self.output_mode)
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


# --- Gated, low-rank and cross-modal attention fusions ---------------------------------------------


@keras.saving.register_keras_serializable(package="mmzoo")
class GatedFusion(_ProjectedFusion):
    """The Gated Multimodal Unit (Arevalo et al., 2017): learned per-unit gates choose between modalities.

    Each modality gets its own ``h_i = tanh(W_i x_i + b_i)`` of width
    ``units``; a gate computed from all inputs together mixes them per
    example and per unit. With two modalities (the paper's GMU)
    ``z = sigmoid(W_z [x_1; x_2] + b_z)`` and ``h = z * h_1 + (1 - z) * h_2``;
    with ``M > 2``, ``W_z [x_1; ...; x_M] + b_z`` is read as ``(units, M)``
    logits and a softmax over the ``M`` modalities gives each unit's gates
    (for ``M = 2`` the same family as the sigmoid). ``gate_values`` reads the
    per-example mean gate of each modality.

    Args:
        units: Width of the ``h_i`` and of the output. ``None`` (default):
            the common input width when the widths are equal, else
            ``min(narrowest input, 128)`` (see ``default_units``).
        **kwargs: Standard layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: If ``units`` is not a positive integer or None.
    """

    def build(self, input_shape):
        self._check_inputs(input_shape)
        self.fused_width = self._fused_width(input_shape)
        self.num_modalities = len(input_shape)
        # The h_i = tanh(W_i x_i): always made (unlike the projections of the element-wise fusions).
        self.projections = [
            keras.layers.Dense(self.fused_width, activation="tanh", name=f"projection_{i}", dtype=self.dtype_policy)
            for i in range(self.num_modalities)
        ]
        for layer, shape in zip(self.projections, input_shape):
            layer.build(shape)
        gates = self.fused_width if self.num_modalities == 2 else self.fused_width * self.num_modalities
        self.gate = keras.layers.Dense(gates, name="gate", dtype=self.dtype_policy)
        self.gate.build((None, sum(shape[-1] for shape in input_shape)))
        self.built = True

    def _gates(self, inputs):
        """The ``(batch, units, modalities)`` gates, summing to 1 over modalities, in the compute dtype."""
        logits = ops.cast(self.gate(ops.concatenate(list(inputs), axis=-1)), "float32")
        if self.num_modalities == 2:
            z = ops.sigmoid(logits)
            gates = ops.stack([z, 1.0 - z], axis=-1)
        else:
            logits = ops.reshape(logits, (-1, self.fused_width, self.num_modalities))
            gates = ops.softmax(logits, axis=-1)
        return ops.cast(gates, self.compute_dtype)

    def call(self, inputs):
        hidden = ops.stack(self.project(inputs), axis=-1)  # (batch, units, modalities)
        return ops.sum(self._gates(inputs) * hidden, axis=-1)

    def gate_values(self, inputs):
        """The per-example mean gate of each modality (builds the layer if needed).

        Args:
            inputs: The fusion's inputs: a list of ``(batch, width_i)`` arrays.

        Returns:
            A numpy array ``(batch, modalities)``: the gate of each modality
            averaged over the ``units``; each row sums to 1. Columns follow
            the order of ``inputs``.
        """
        if not self.built:
            self.build([tuple(x.shape) for x in inputs])
        gates = self._gates([ops.cast(x, self.compute_dtype) for x in inputs])
        return keras.ops.convert_to_numpy(ops.mean(ops.cast(gates, "float32"), axis=1))


@keras.saving.register_keras_serializable(package="mmzoo")
class LowRankFusion(_ProjectedFusion):
    """Low-rank Multimodal Fusion (Liu et al., ACL 2018): a tensor fusion with low-rank factors.

    Each input gets a constant 1 appended, ``x_i' = [x_i; 1]``, and its own
    factors ``W_i`` of shape ``(rank, width_i + 1, units)``; the output is
    ``h = sum_r prod_i (x_i' W_i^r) + b``. That is the outer-product tensor
    fusion of the ``x_i'`` (every multiplicative interaction between the
    modalities, and through the appended 1 each modality alone) followed by
    a linear map whose weight tensor has rank ``rank``, at a cost linear in
    the number of modalities instead of exponential.

    Initialisation: ``W_i`` is drawn from ``N(0, 1 / ((width_i + 1) *
    rank ** (1 / M)))`` for ``M`` modalities, so on zero-mean unit-variance
    inputs each factor ``x_i' W_i^r`` has variance ``rank ** (-1 / M)``,
    their product over the ``M`` modalities ``1 / rank`` and the sum over the
    ranks variance 1: the output neither vanishes nor explodes at the start
    however many modalities, wide inputs or ranks there are (Glorot on the
    3-D factors gives an output std of about 0.04 for widths 6 and 3 with
    ``units=128``). ``b`` starts at zero.

    Args:
        units: Output width. ``None`` (default): the common input width when
            the widths are equal, else ``min(narrowest input, 128)`` (see
            ``default_units``).
        rank: Rank of the fusion weight tensor (number of factor sets).
        **kwargs: Standard layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: If ``units`` or ``rank`` is not a positive integer.
    """

    def __init__(self, units=None, rank=4, **kwargs):
        super().__init__(units=units, **kwargs)
        self.rank = check.positive_int("rank", rank)

    def build(self, input_shape):
        self._check_inputs(input_shape)
        self.fused_width = self._fused_width(input_shape)
        num_modalities = len(input_shape)
        self.factors = []
        for i, shape in enumerate(input_shape):
            fan_in = shape[-1] + 1
            stddev = (fan_in * self.rank ** (1.0 / num_modalities)) ** -0.5
            self.factors.append(self.add_weight(
                shape=(self.rank, fan_in, self.fused_width),
                initializer=keras.initializers.RandomNormal(stddev=stddev),
                name=f"factor_{i}",
            ))
        self.bias = self.add_weight(shape=(self.fused_width,), initializer="zeros", name="bias")
        self.built = True

    def call(self, inputs):
        product = None
        for x, factor in zip(inputs, self.factors):
            x = ops.concatenate([x, ops.ones_like(x[:, :1])], axis=-1)  # x_i' = [x_i; 1]
            term = ops.einsum("bw,rwu->bru", x, factor)  # (batch, rank, units)
            product = term if product is None else product * term
        return ops.sum(product, axis=1) + self.bias

    def get_config(self):
        config = super().get_config()
        config.update(rank=self.rank)
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class CrossModalAttention(keras.layers.Layer):
    """Bidirectional cross-modal attention between two sequences, pooled to one vector.

    The cross-attention of the BERT + ResNet design: the steps of sequence
    ``a`` (e.g. text tokens) attend to the steps of sequence ``b`` (e.g.
    image regions) and ``b``'s attend to ``a``'s, each direction a
    multi-head ``softmax(Q K^T / sqrt(d)) V`` with its own query, key, value
    and output projections (``{a,b}_to_{b,a}_{query,key,value,output}``).
    Each direction's ``(batch, steps, units)`` result is mean-pooled over the
    valid query steps and the two are summed: ``(batch, units)``.

    Masks: ``masks=[mask_a, mask_b]`` (``(batch, steps)``, nonzero = valid;
    ``None`` = all valid) keep padding out of both the keys (padded steps get
    no attention) and the pooling (padded queries are not averaged), so the
    values at padded steps cannot change the output. An example whose
    sequence has no valid step contributes zero from the direction that
    attends to it. Pass the masks explicitly: ``compose`` passes the
    branches' ``sequence_mask``.

    ``uses_sequences = True``: ``compose`` calls it on the branches'
    ``sequence`` tensors (and masks) instead of their feature vectors.

    Args:
        units: Output width (and of each direction's attention output).
            ``None`` (default): the common width when the two widths are
            equal, else ``min(narrowest input, 128)`` (see ``default_units``).
        num_heads: Attention heads; each has ``ceil(units / num_heads)``
            query/key/value dimensions.
        **kwargs: Standard layer arguments (``name``, ``dtype``).

    Raises:
        ValueError: If ``units`` or ``num_heads`` is not a positive integer.
    """

    uses_sequences = True
    _DIRECTIONS = ((0, 1, "a_to_b"), (1, 0, "b_to_a"))

    def __init__(self, units=None, num_heads=4, **kwargs):
        super().__init__(**kwargs)
        self.units = None if units is None else check.positive_int("units", units)
        self.num_heads = check.positive_int("num_heads", num_heads)

    def _check_inputs(self, input_shape):
        if (
            not isinstance(input_shape, (list, tuple))
            or len(input_shape) != 2
            or not all(isinstance(shape, (list, tuple)) and len(shape) == 3 for shape in input_shape)
        ):
            raise ValueError(
                "CrossModalAttention must be called on a list of two (batch, steps, width) sequences. "
                f"Received input shape: {input_shape}"
            )
        if any(shape[-1] is None for shape in input_shape):
            raise ValueError(f"CrossModalAttention needs known feature widths. Received shapes: {input_shape}")

    def _fused_width(self, input_shape):
        return self.units or default_units([shape[-1] for shape in input_shape])

    def build(self, input_shape):
        self._check_inputs(input_shape)
        self.fused_width = self._fused_width(input_shape)
        self.head_dim = -(-self.fused_width // self.num_heads)
        heads = (self.num_heads, self.head_dim)
        for query, context, prefix in self._DIRECTIONS:
            for role in ("query", "key", "value"):
                layer = keras.layers.EinsumDense(
                    "abc,cde->abde", (None, *heads), bias_axes="de", name=f"{prefix}_{role}", dtype=self.dtype_policy
                )
                layer.supports_masking = True  # per-step, like Dense: a Keras mask on a sequence passes (unused)
                layer.build(input_shape[query if role == "query" else context])
                setattr(self, f"{prefix}_{role}", layer)
            layer = keras.layers.EinsumDense(
                "abcd,cde->abe", (None, self.fused_width), bias_axes="e", name=f"{prefix}_output",
                dtype=self.dtype_policy,
            )
            layer.build((None, None, *heads))
            setattr(self, f"{prefix}_output", layer)
        self.built = True

    def _attend(self, prefix, query, context, query_mask, context_mask):
        """One direction: ``query`` steps attend to ``context`` steps; returns the pooled ``(batch, units)``."""
        q = getattr(self, f"{prefix}_query")(query)  # (batch, q_steps, heads, head_dim)
        k = getattr(self, f"{prefix}_key")(context)
        v = getattr(self, f"{prefix}_value")(context)
        scores = ops.einsum("bqhd,bkhd->bhqk", q, k)
        scores = ops.cast(scores, "float32") / float(self.head_dim) ** 0.5
        if context_mask is not None:
            valid = ops.cast(context_mask, "bool")[:, None, None, :]
            scores = ops.where(valid, scores, -1e9)
        weights = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)  # float32 softmax, cast back
        attended = getattr(self, f"{prefix}_output")(ops.einsum("bhqk,bkhd->bqhd", weights, v))  # (b, q, units)
        if query_mask is None:
            pooled = ops.mean(attended, axis=1)
        else:
            w = ops.cast(query_mask, self.compute_dtype)[:, :, None]
            pooled = ops.sum(attended * w, axis=1) / ops.maximum(ops.sum(w, axis=1), ops.cast(1.0, w.dtype))
        if context_mask is not None:  # no valid context step: this direction contributes nothing
            any_valid = ops.max(ops.cast(context_mask, self.compute_dtype), axis=1, keepdims=True)
            pooled = pooled * any_valid
        return pooled

    def call(self, inputs, masks=None):
        inputs = list(inputs)
        masks = [None, None] if masks is None else list(masks)
        if len(masks) != 2:
            raise ValueError(f"`masks` must be a list of two masks (or None). Received: masks={masks!r}")
        out = None
        for query, context, prefix in self._DIRECTIONS:
            pooled = self._attend(prefix, inputs[query], inputs[context], masks[query], masks[context])
            out = pooled if out is None else out + pooled
        return out

    def compute_mask(self, inputs, mask=None):
        return None  # the pooled output has no steps (and a mask on an input sequence is not passed on)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self._fused_width(input_shape))

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, num_heads=self.num_heads)
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


def attention(units=None, attention_dim=64, uniform_mix=0.5, output_mode="concat", name="fusion"):
    """Per-example modality attention; read the weights with ``attention_weights``.

    Args:
        units: Common width of the modalities. ``None`` (default): no
            projection when the input widths are equal, else each input is
            projected to ``min(narrowest input, 128)`` (see ``default_units``).
        attention_dim: Width of the scoring MLP.
        uniform_mix: Share of uniform weights mixed into the softmax (each
            of ``M`` present modalities keeps at least ``uniform_mix / M``;
            see ``AttentionFusion`` for why and what was measured).
        output_mode: ``"concat"`` (default: the inputs side by side, each
            scaled by its weight) or ``"sum"`` (weighted sum of the
            normalised projections, ``(batch, units)``).
        name: Layer name.

    Returns:
        An ``AttentionFusion`` layer.

    Raises:
        ValueError: If ``units`` or ``attention_dim`` is not a positive
            integer, ``uniform_mix`` is not in [0, 1) or ``output_mode`` is unknown.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.attention()
    >>> tuple(layer([np.ones((2, 1600)), np.ones((2, 5120))]).shape)  # the weighted inputs side by side
    (2, 6720)
    >>> tuple(fusion.attention(output_mode="sum")([np.ones((2, 1600)), np.ones((2, 5120))]).shape)  # capped at 128
    (2, 128)
    >>> layer.count_params()  # 128 * (1600 + 5120 + 2) projection, 2 * 2 * 128 norms, 128 * 64 + 64 + 64 scorer
    869248
    """
    return AttentionFusion(units=units, attention_dim=attention_dim, uniform_mix=uniform_mix, output_mode=output_mode,
                           name=name)


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


def gated(units=None, name="fusion"):
    """Gated Multimodal Unit: per-example, per-unit gates mix ``tanh`` projections of the modalities.

    Args:
        units: Width of each modality's ``tanh`` projection and of the
            output. ``None`` (default): the common input width when the
            widths are equal, else ``min(narrowest input, 128)`` (see
            ``default_units``).
        name: Layer name.

    Returns:
        A ``GatedFusion`` layer; ``gate_values(inputs)`` reads the mean gate
        of each modality per example.

    Raises:
        ValueError: If ``units`` is not a positive integer or None.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.gated(units=4)
    >>> x = [np.ones((2, 6), "float32"), np.ones((2, 3), "float32")]
    >>> tuple(layer(x).shape)
    (2, 4)
    >>> layer.gate_values(x).sum(axis=1).round(5).tolist()  # one gate per modality, summing to 1
    [1.0, 1.0]
    """
    return GatedFusion(units=units, name=name)


def low_rank(units=None, rank=4, name="fusion"):
    """Low-rank Multimodal Fusion: ``sum_r prod_i ([x_i; 1] W_i^r) + b`` (Liu et al., 2018).

    Args:
        units: Output width. ``None`` (default): the common input width when
            the widths are equal, else ``min(narrowest input, 128)`` (see
            ``default_units``).
        rank: Rank of the fusion tensor: the number of factor sets.
        name: Layer name.

    Returns:
        A ``LowRankFusion`` layer with ``rank * (width_i + 1) * units``
        weights per modality and a bias.

    Raises:
        ValueError: If ``units`` or ``rank`` is not a positive integer.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.low_rank(units=4, rank=2)
    >>> tuple(layer([np.ones((2, 6), "float32"), np.ones((2, 3), "float32")]).shape)
    (2, 4)
    >>> layer.count_params()  # 2 * (6 + 1) * 4 + 2 * (3 + 1) * 4 + 4
    92
    """
    return LowRankFusion(units=units, rank=rank, name=name)


def cross_attention(units=None, num_heads=4, name="fusion"):
    """Bidirectional cross-modal attention between two branches' sequences, pooled and summed.

    ``compose`` feeds it the two branches' ``sequence`` tensors (text
    tokens, image regions) and their ``sequence_mask``; each sequence
    attends to the other and both results are mean-pooled over the valid
    steps and summed.

    Args:
        units: Output width. ``None`` (default): the common sequence width
            when equal, else ``min(narrowest, 128)`` (see ``default_units``).
        num_heads: Attention heads.
        name: Layer name.

    Returns:
        A ``CrossModalAttention`` layer (``uses_sequences = True``).

    Raises:
        ValueError: If ``units`` or ``num_heads`` is not a positive integer.

    Example:

    >>> import numpy as np
    >>> from mmzoo import fusion
    >>> layer = fusion.cross_attention(units=8, num_heads=2)
    >>> tokens, regions = np.ones((2, 5, 16), "float32"), np.ones((2, 9, 4), "float32")
    >>> mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    >>> tuple(layer([tokens, regions], masks=[mask, None]).shape)
    (2, 8)
    """
    return CrossModalAttention(units=units, num_heads=num_heads, name=name)


FUSIONS = {
    "concat": concat,
    "add": add,
    "multiply": multiply,
    "weighted_sum": weighted_sum,
    "attention": attention,
    "late": late,
    "gated": gated,
    "low_rank": low_rank,
    "cross_attention": cross_attention,
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
