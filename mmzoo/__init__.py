"""mmzoo: a Keras 3 / TensorFlow model zoo for multimodal deep learning."""

from mmzoo import branches, datasets, distribute, finetune, fusion, heads, layers, retrieval, zoo
from mmzoo.compose import compile_model, compose
from mmzoo.saved_model import export, load
from mmzoo.tflite import export_tflite
from mmzoo.zoo import build, list_models

__version__ = "0.1.0"

__all__ = [
    "branches",
    "build",
    "compile_model",
    "compose",
    "datasets",
    "distribute",
    "export",
    "export_tflite",
    "finetune",
    "fusion",
    "heads",
    "layers",
    "list_models",
    "load",
    "retrieval",
    "zoo",
]
