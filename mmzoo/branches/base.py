"""The ``Branch``: what every branch builder returns and ``compose`` accepts."""

from __future__ import annotations

import dataclasses

import keras

from mmzoo import _validation as check


@dataclasses.dataclass(frozen=True)
class Branch:
    """One modality's input and encoder, as symbolic Keras tensors.

    Attributes:
        name: The input's name; the key of this modality in the model's input
            dict and the prefix of every layer the branch made.
        input: The branch's ``keras.Input``.
        features: The encoder's output: a rank-2 ``(batch, width)`` tensor.
        modality: ``"image"``, ``"text"`` or ``"audio"``.
        sequence: The encoder's per-step outputs before the reduction to
            ``features``, a rank-3 ``(batch, steps, width)`` tensor (text:
            one step per token; image: one per feature-map region, ``H * W``
            of them), or ``None`` when the encoder has none. Sequence fusions
            (``mmzoo.fusion.cross_attention``) attend over it.
        sequence_mask: ``(batch, steps)`` validity of the ``sequence`` steps
            (int or bool, nonzero = real step; text: token id != 0), or
            ``None`` when every step is valid.
    """

    name: str
    input: keras.KerasTensor
    features: keras.KerasTensor
    modality: str
    sequence: keras.KerasTensor = None
    sequence_mask: keras.KerasTensor = None

    def __post_init__(self):
        if len(self.features.shape) != 2:
            raise ValueError(
                f"Branch '{self.name}' must end in rank-2 (batch, width) features. "
                f"Received: features.shape={self.features.shape}"
            )
        if self.sequence is not None and len(self.sequence.shape) != 3:
            raise ValueError(
                f"Branch '{self.name}': `sequence` must be a rank-3 (batch, steps, width) tensor. "
                f"Received: sequence.shape={self.sequence.shape}"
            )
        if self.sequence_mask is not None and (
            self.sequence is None
            or len(self.sequence_mask.shape) != 2
            or self.sequence_mask.shape[1] != self.sequence.shape[1]
        ):
            raise ValueError(
                f"Branch '{self.name}': `sequence_mask` must be a (batch, steps) tensor matching `sequence`. "
                f"Received: sequence_mask.shape={self.sequence_mask.shape}, "
                f"sequence.shape={None if self.sequence is None else self.sequence.shape}"
            )

    @property
    def width(self):
        """The feature width (last dimension of ``features``)."""
        return self.features.shape[-1]

    def encoder(self):
        """Returns the branch alone as a ``keras.Model`` (input -> features)."""
        return keras.Model(self.input, self.features, name=f"{self.name}_encoder")


_RNNS = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def recurrent_stack(x, rnn, units, num_layers, bidirectional, name, return_sequence=False):
    """Stacks ``num_layers`` recurrent layers; the last returns its final state.

    Args:
        x: ``(batch, steps, width)`` symbolic tensor (a mask on it is honoured).
        rnn: ``"simple"``, ``"lstm"`` or ``"gru"``.
        units: Units per layer.
        num_layers: Number of layers.
        bidirectional: Wrap each layer in ``Bidirectional`` (doubles the width).
        name: Layer-name prefix; layers are ``{name}_{rnn}{i}`` (``{name}_bi{rnn}{i}``).
        return_sequence: Also return the last layer's per-step outputs. The
            last layer then returns its sequence and its states
            (``return_state``), and the final state is read from the states
            (bidirectional: forward and backward concatenated by
            ``{name}_bi{rnn}{num_layers}_state``): the same values as
            without it.

    Returns:
        The ``(batch, units)`` (or ``2 * units``) final state; with
        ``return_sequence``, a tuple ``(final_state, sequence)`` with
        ``sequence`` ``(batch, steps, units)`` (or ``2 * units``).

    Raises:
        ValueError: If ``rnn``, ``units`` or ``num_layers`` is invalid.
    """
    layer_cls = _RNNS[check.choice("rnn", rnn, set(_RNNS))]
    check.positive_int("units", units)
    check.positive_int("num_layers", num_layers)
    for i in range(1, num_layers + 1):
        last = i == num_layers
        if last and return_sequence:
            layer = layer_cls(units, return_sequences=True, return_state=True, name=f"{name}_{rnn}{i}")
        else:
            layer = layer_cls(units, return_sequences=not last, name=f"{name}_{rnn}{i}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"{name}_bi{rnn}{i}")
        x = layer(x)
    if not return_sequence:
        return x
    sequence, *states = x
    if not bidirectional:
        return states[0], sequence  # the hidden state h (an LSTM's states are [h, c])
    forward, backward = states[: len(states) // 2], states[len(states) // 2:]
    state = keras.layers.Concatenate(name=f"{name}_bi{rnn}{num_layers}_state")([forward[0], backward[0]])
    return state, sequence
