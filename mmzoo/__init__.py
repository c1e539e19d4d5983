"""mmzoo: a Keras 3 / TensorFlow model zoo for multimodal deep learning."""

from mmzoo import branches, datasets, fusion, heads
from mmzoo.compose import compile_model, compose

__version__ = "0.1.0"

__all__ = ["branches", "compile_model", "compose", "datasets", "fusion", "heads"]
