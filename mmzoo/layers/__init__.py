"""Custom Keras layers used by the branches (all serializable, no ``Lambda``).

Transformer blocks are KerasHub's (``keras_hub.layers.TokenAndPositionEmbedding``,
``keras_hub.layers.TransformerEncoder``), used by ``mmzoo.branches.text_transformer``.
"""

from mmzoo.layers.audio import RandomTimeStretch, Spectrogram
from mmzoo.layers.audio_level import WaveformNormalization
from mmzoo.layers.hub import HubLayer
from mmzoo.layers.pooling import ArgmaxTokenPooling, SequencePooling
from mmzoo.layers.preprocess import ApplicationPreprocess, TokenIdsToEncoderInputs

__all__ = [
    "ApplicationPreprocess",
    "ArgmaxTokenPooling",
    "HubLayer",
    "RandomTimeStretch",
    "SequencePooling",
    "Spectrogram",
    "TokenIdsToEncoderInputs",
    "WaveformNormalization",
]
