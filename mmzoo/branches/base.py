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
    """

    name: str
    input: keras.KerasTensor
    features: keras.KerasTensor
    modality: str

    def __post_init__(self):
        if len(self.features.shape) != 2:
            raise ValueError(
                f"Branch '{self.name}' must end in rank-2 (batch, width) features. "
                f"Received: features.shape={self.features.shape}"
            )

    @property
    def width(self):
        """The feature width (last dimension of ``features``)."""
        return self.features.shape[-1]

    def encoder(self):
        """Returns the branch alone as a ``keras.Model`` (input -> features)."""
        return keras.Model(self.input, self.features, name=f"{self.name}_encoder")


_RNNS = {"simple": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def recurrent_stack(x, rnn, units, num_layers, bidirectional, name):
    """Stacks ``num_layers`` recurrent layers; the last returns its final state.

    Args:
        x: ``(batch, steps, width)`` symbolic tensor (a mask on it is honoured).
        rnn: ``"simple"``, ``"lstm"`` or ``"gru"``.
        units: Units per layer.
        num_layers: Number of layers.
        bidirectional: Wrap each layer in ``Bidirectional`` (doubles the width).
        name: Layer-name prefix; layers are ``{name}_{rnn}{i}`` (``{name}_bi{rnn}{i}``).

    Returns:
        The ``(batch, units)`` (or ``2 * units``) final state.

    Raises:
        ValueError: If ``rnn``, ``units`` or ``num_layers`` is invalid.
    """
    layer_cls = _RNNS[check.choice("rnn", rnn, set(_RNNS))]
    check.positive_int("units", units)
    check.positive_int("num_layers", num_layers)
    for i in range(1, num_layers + 1):
        layer = layer_cls(units, return_sequences=i < num_layers, name=f"{name}_{rnn}{i}")
        if bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"{name}_bi{rnn}{i}")
        x = layer(x)
    return x
