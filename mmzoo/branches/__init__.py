"""Branch builders: one ``keras.Input`` and encoder per modality.

Each builder returns a ``Branch`` (name, input, features, modality) that
``mmzoo.compose`` joins into a model.
"""

from mmzoo.branches.audio import audio_conv1d, audio_rnn, audio_spectrogram_cnn
from mmzoo.branches.base import Branch
from mmzoo.branches.efficientnet_lite import image_efficientnet_lite0
from mmzoo.branches.image import image_cnn, image_resnet
from mmzoo.branches.keras_app import image_keras_app
from mmzoo.branches.keras_hub import image_keras_hub, text_keras_hub
from mmzoo.branches.mobilenet import image_mobilenet_v2
from mmzoo.branches.pretrained import PretrainedBranch, apply_preprocessors
from mmzoo.branches.tabular import tabular_categorical, tabular_numeric
from mmzoo.branches.text import text_bert, text_embedding, text_rnn, text_transformer
from mmzoo.branches.tf_hub import audio_tf_hub, image_tf_hub, text_tf_hub

__all__ = [
    "Branch",
    "PretrainedBranch",
    "apply_preprocessors",
    "audio_conv1d",
    "audio_rnn",
    "audio_spectrogram_cnn",
    "audio_tf_hub",
    "image_cnn",
    "image_efficientnet_lite0",
    "image_keras_app",
    "image_keras_hub",
    "image_mobilenet_v2",
    "image_resnet",
    "image_tf_hub",
    "tabular_categorical",
    "tabular_numeric",
    "text_bert",
    "text_embedding",
    "text_keras_hub",
    "text_rnn",
    "text_tf_hub",
    "text_transformer",
]
