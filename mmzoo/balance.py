"""Training against modality imbalance, and absent modalities.

A fused model trained end to end often learns to ignore its weaker modality:
the modality that lowers the loss fastest takes the gradient and the other
branch stays under-trained (Wang et al., "What makes training multi-modal
classification networks hard?", CVPR 2020; Peng et al., OGM-GE, CVPR 2022).
``compose`` takes three remedies, alone or together:

* ``modality_dropout=rate``: a ``ModalityDropout`` layer zeroes a whole
  modality's features per example at train time, so the head must learn to
  answer from each modality alone (and from any non-empty subset).
* ``auxiliary_loss_weight=w``: one auxiliary head per branch (on the branch's
  own features) adds ``w * mean_i loss(y, aux_i)`` to the loss, so every
  encoder is trained on the task by itself (multi-task). The auxiliary heads
  live in the model but are not outputs: exports and ``predict`` return the
  fused prediction only.
* ``gradient_modulation="ogm"`` / ``"ogm_ge"``: On-the-fly Gradient
  Modulation. Each step measures each modality's confidence on the true
  class (its auxiliary head's probability of ``y``); the encoder of the
  modality that is ahead by the ratio ``rho > 1`` gets its gradient scaled by
  ``1 - tanh(alpha * (rho - 1))``; ``"ogm_ge"`` also adds Gaussian noise with
  the gradient's own standard deviation (generalisation enhancement).

Absent modalities. A model with a ``ModalityDropout`` layer reads an
all-zeros input (a black image, a silent waveform, all-padding token ids) as
*absent*: that modality's features are zeroed, exactly as in training, so the
model answers from the other modalities. ``mmzoo.export``'s raw signature
maps an empty string to that all-zeros input.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from mmzoo import _keras_compat
from mmzoo import _validation as check
from mmzoo import heads as heads_lib

MODULATIONS = ("ogm", "ogm_ge")
"""Gradient-modulation methods ``compose(gradient_modulation=...)`` accepts."""


def presence(inputs):
    """``(batch, 1)`` float: 1 where an input holds any non-zero value, 0 where it is all zeros (absent)."""
    x = ops.convert_to_tensor(inputs)
    flat = ops.reshape(ops.cast(ops.not_equal(x, ops.zeros_like(x)), "float32"), (ops.shape(x)[0], -1))
    return ops.max(flat, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="mmzoo")
class ModalityDropout(keras.layers.Layer):
    """Zeroes whole modalities: absent ones always, random ones at train time.

    Called on one list ``[features_1, ..., features_M, input_1, ..., input_M]``:
    the ``M`` branch feature tensors ``(batch, width_i)`` followed by the ``M``
    model inputs they came from. It returns the ``M`` feature tensors, each
    multiplied per example by

    * 0 if that example's input is all zeros (the modality is absent), and
    * at train time, 0 with probability ``rate`` (independently per modality
      and example), except that an example never loses all of its present
      modalities: if every one was drawn for dropping, all present ones are kept.

    No rescaling is applied (unlike ``Dropout``): a dropped modality looks
    exactly like an absent one, which is what the model must learn to handle.

    Args:
        rate: Probability of dropping a modality at train time, in [0, 1).
        seed: Seed of the dropout draws.
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: If ``rate`` is not in [0, 1).

    Example:

    >>> import numpy as np
    >>> from mmzoo.balance import ModalityDropout
    >>> layer = ModalityDropout(rate=0.3)
    >>> image = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")  # features
    >>> audio = np.array([[5.0], [6.0]], "float32")
    >>> raw_image = np.ones((2, 4, 4), "float32")
    >>> raw_audio = np.array([[0.1, 0.0], [0.0, 0.0]], "float32")  # example 2: silent, i.e. absent
    >>> out = layer([image, audio, raw_image, raw_audio])  # inference: only absent modalities are zeroed
    >>> [o.numpy().tolist() for o in out]
    [[[1.0, 2.0], [3.0, 4.0]], [[5.0], [0.0]]]
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"`rate` must be a number in [0, 1). Received: rate={rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _split(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2 or len(inputs) % 2:
            raise ValueError(
                "ModalityDropout must be called on [features_1..features_M, input_1..input_M] (an even-length list). "
                f"Received {type(inputs).__name__} of length {len(inputs) if isinstance(inputs, (list, tuple)) else 1}"
            )
        m = len(inputs) // 2
        return list(inputs[:m]), list(inputs[m:])

    def call(self, inputs, training=None):
        features, raw = self._split(inputs)
        present = ops.concatenate([presence(x) for x in raw], axis=1)  # (batch, M)
        keep = present
        if training and self.rate > 0:
            draw = keras.random.uniform(ops.shape(present), seed=self.seed_generator)
            kept = present * ops.cast(draw >= self.rate, "float32")
            nothing_left = ops.sum(kept, axis=1, keepdims=True) == 0
            keep = ops.where(nothing_left, present, kept)
        keep = ops.cast(keep, self.compute_dtype)
        return [ops.cast(x, self.compute_dtype) * keep[:, i : i + 1] for i, x in enumerate(features)]

    def compute_output_shape(self, input_shape):
        features, _ = self._split(input_shape)
        return [tuple(shape) for shape in features]

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


def optional_inputs(model):
    """The names of ``model``'s inputs that may be absent (all zeros): those gated by a ``ModalityDropout`` layer.

    Args:
        model: A functional Keras model with dict inputs.

    Returns:
        A sorted list of input names (empty when the model has no
        ``ModalityDropout`` layer).

    Example:

    >>> import mmzoo
    >>> model = mmzoo.build("av_digits_concat", image_filters=(4,), audio_filters=(4,), hidden=(8,))
    >>> optional_inputs(model)
    []
    """
    inputs = getattr(model, "input", None)
    if not isinstance(inputs, dict):
        return []
    gated = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, ModalityDropout):
            gate_inputs = list(layer.input)
            gated += gate_inputs[len(gate_inputs) // 2:]
    return sorted(name for name, tensor in inputs.items() if any(tensor is g for g in gated))


def modulation_coefficients(scores, alpha):
    """OGM coefficients from per-modality confidence scores.

    Args:
        scores: ``(M,)`` tensor, each modality's mean probability of the true
            class on the batch.
        alpha: Modulation strength.

    Returns:
        ``(M,)`` coefficients ``1 - tanh(alpha * max(rho_i - 1, 0))`` with
        ``rho_i = score_i / mean(score_j, j != i)``: 1 for a modality that is
        not ahead, below 1 for the one that dominates.

    Example:

    >>> import numpy as np
    >>> from mmzoo.balance import modulation_coefficients
    >>> [round(float(c), 3) for c in modulation_coefficients(np.array([0.8, 0.4]), alpha=1.0)]
    [0.238, 1.0]
    """
    scores = tf.cast(tf.convert_to_tensor(scores), "float32")
    m = tf.cast(tf.shape(scores)[0], "float32")
    others = (tf.reduce_sum(scores) - scores) / tf.maximum(m - 1.0, 1.0)
    ratio = scores / tf.maximum(others, 1e-8)
    return 1.0 - tf.tanh(alpha * tf.nn.relu(ratio - 1.0))


def _true_class_probability(head, y, probabilities):
    """Mean probability the head gives the true target (classification heads)."""
    if head.kind == "multiclass":
        y = tf.cast(tf.reshape(y, [-1]), "int32")
        return tf.reduce_mean(tf.gather(probabilities, y, axis=1, batch_dims=1))
    y = tf.cast(tf.reshape(y, tf.shape(probabilities)), probabilities.dtype)
    return tf.reduce_mean(y * probabilities + (1.0 - y) * (1.0 - probabilities))


@keras.saving.register_keras_serializable(package="mmzoo")
class FusionModel(keras.Model):
    """A functional multimodal model whose ``fit`` can fight modality imbalance.

    ``compose`` returns one when ``auxiliary_loss_weight`` or
    ``gradient_modulation`` is given. It is an ordinary functional model
    (``predict``, ``evaluate``, ``save``, ``mmzoo.export`` behave as usual and
    return the fused output only) plus, for training: one auxiliary head per
    branch (``Dense`` + the model's own head activation, on the features
    that enter the ``ModalityDropout`` layer), an auxiliary loss and optional
    gradient modulation. The settings are saved with the model.

    Build it with ``compose``; ``FusionModel(inputs=..., outputs=...)`` alone
    is a plain functional model until ``configure_balance`` is called.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.balance = None
        self.auxiliary_heads = []

    def configure_balance(self, branch_names, auxiliary_loss_weight=0.0, gradient_modulation=None,
                          modulation_alpha=0.5):
        """Adds the auxiliary heads and training options.

        Args:
            branch_names: The branch names, in the order of the
                ``ModalityDropout`` layer's inputs.
            auxiliary_loss_weight: Weight of the mean auxiliary loss (0: the
                auxiliary heads still learn, as probes for the modulation,
                but their loss does not reach the encoders).
            gradient_modulation: ``None``, ``"ogm"`` or ``"ogm_ge"``.
            modulation_alpha: OGM strength ``alpha``.

        Raises:
            ValueError: If an option is invalid or the model has no
                ``ModalityDropout`` layer named ``"modality_dropout"``.
        """
        weight = check.non_negative_number("auxiliary_loss_weight", auxiliary_loss_weight)
        if gradient_modulation is not None:
            check.choice("gradient_modulation", gradient_modulation, set(MODULATIONS))
        alpha = check.non_negative_number("modulation_alpha", modulation_alpha)
        try:
            gate = self.get_layer("modality_dropout")
        except ValueError:
            raise ValueError(
                f"FusionModel {self.name!r} needs a ModalityDropout layer named 'modality_dropout' (compose adds it)."
            ) from None
        features = list(gate.input)[: len(gate.input) // 2]
        branch_names = [check.identifier("branch_names", n) for n in branch_names]
        if len(branch_names) != len(features):
            raise ValueError(
                f"`branch_names` must name the {len(features)} fused branches. Received: branch_names={branch_names!r}"
            )
        head = heads_lib.from_model(self)
        if head.kind == "regression" and gradient_modulation:
            raise ValueError("gradient_modulation needs a classification head. Received a regression head.")
        self.balance = {
            "branch_names": branch_names,
            "auxiliary_loss_weight": weight,
            "gradient_modulation": gradient_modulation,
            "modulation_alpha": alpha,
        }
        self._head = head
        self.auxiliary_heads = [
            keras.Sequential(
                [
                    keras.layers.Dense(head.units, name=f"{name}_aux_logits"),
                    heads_lib.HeadActivation(**head.get_config(), activation=head.activation, dtype="float32",
                                             name=f"{name}_aux_output"),
                ],
                name=f"{name}_aux_head",
            )
            for name in branch_names
        ]
        for aux, x in zip(self.auxiliary_heads, features):
            aux.build(x.shape)
        self._aux_loss = head.loss
        # OGM-GE's gradient noise: a tracked generator, so a backup restores its state (exact resume).
        self.modulation_noise_seed = keras.random.SeedGenerator() if gradient_modulation == "ogm_ge" else None
        # Untracked (plain attribute) view of the same graph: fused output + the branch features.
        object.__setattr__(self, "_with_features", keras.Model(self.inputs, [self.outputs[0], *features]))
        graph_layers = [layer for layer in self.layers if all(layer is not aux for aux in self.auxiliary_heads)]
        self._branch_variables = [
            [v for layer in graph_layers if _belongs_to(layer.name, name) for v in layer.trainable_variables]
            for name in branch_names
        ]
        return self

    def train_step(self, data):
        if not self.balance:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        weight = self.balance["auxiliary_loss_weight"]
        with tf.GradientTape() as tape:
            y_pred, *features = self._with_features(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            aux_probs = [
                aux(f if weight else tf.stop_gradient(f), training=True)
                for aux, f in zip(self.auxiliary_heads, features)
            ]
            aux_losses = [self._aux_loss(y, p, sample_weight=sample_weight) for p in aux_probs]
            total = loss + (weight if weight else 1.0) * tf.add_n(aux_losses) / len(aux_losses)
            _keras_compat.update_loss_tracker(self, loss, x)
            scaled = self.optimizer.scale_loss(total) if self.optimizer is not None else total
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        if self.balance["gradient_modulation"]:
            gradients = self._modulate(gradients, variables, y, aux_probs)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _modulate(self, gradients, variables, y, aux_probs):
        scores = tf.stack([tf.stop_gradient(_true_class_probability(self._head, y, p)) for p in aux_probs])
        coefficients = modulation_coefficients(scores, self.balance["modulation_alpha"])
        noise = self.balance["gradient_modulation"] == "ogm_ge"
        index = {id(v): i for i, v in enumerate(variables)}
        gradients = list(gradients)
        for m, branch in enumerate(self._branch_variables):
            for v in branch:
                i = index.get(id(v))
                if i is None or gradients[i] is None:
                    continue
                g = gradients[i] * tf.cast(coefficients[m], gradients[i].dtype)
                if noise:
                    g = g + keras.random.normal(tf.shape(g), stddev=tf.math.reduce_std(gradients[i]) + 1e-8,
                                                dtype=g.dtype, seed=self.modulation_noise_seed)
                gradients[i] = g
        return gradients

    def get_config(self):
        config = super().get_config()
        if self.balance:
            config["balance"] = dict(self.balance)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        balance = config.pop("balance", None)
        model = super().from_config(config, custom_objects=custom_objects)
        if balance:
            model.configure_balance(**balance)
        return model


def _belongs_to(layer_name, branch_name):
    return layer_name == branch_name or layer_name.startswith(f"{branch_name}_")
