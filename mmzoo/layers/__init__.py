"""Custom Keras layers used by the branches (all serializable, no ``Lambda``)."""

from mmzoo.layers.audio import Spectrogram
from mmzoo.layers.hub import HubLayer
from mmzoo.layers.pooling import SequencePooling
from mmzoo.layers.preprocess import ApplicationPreprocess, TokenIdsToEncoderInputs
from mmzoo.layers.transformer import TokenAndPositionEmbedding, TransformerEncoder

__all__ = [
    "ApplicationPreprocess",
    "HubLayer",
    "SequencePooling",
    "Spectrogram",
    "TokenAndPositionEmbedding",
    "TokenIdsToEncoderInputs",
    "TransformerEncoder",
]
