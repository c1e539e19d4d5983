"""The ``Branch``: what every branch builder returns and ``compose`` accepts."""

from __future__ import annotations

import dataclasses

import keras


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
