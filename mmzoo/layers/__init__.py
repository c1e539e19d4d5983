"""Custom Keras layers used by the branches (all serializable, no ``Lambda``)."""

from mmzoo.layers.audio import Spectrogram
from mmzoo.layers.pooling import SequencePooling
from mmzoo.layers.transformer import TokenAndPositionEmbedding, TransformerEncoder

__all__ = ["SequencePooling", "Spectrogram", "TokenAndPositionEmbedding", "TransformerEncoder"]
