"""What the bundled pretrained image encoders share: input checks, loading the shipped weights, pooling."""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.pretrained import PretrainedBranch


def image_shape(input_shape):
    """``input_shape`` as a tuple, checked to be ``(H, W, 3)`` with sides of at least 32.

    Raises:
        ValueError: If it is not.
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    if input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"`input_shape` must be (height, width, 3) with sides of at least 32. "
                         f"Received: input_shape={input_shape!r}")
    return input_shape


def load_frozen(trunk, weights):
    """Assigns ``weights`` (``{"layer/variable": array}``) to every variable of ``trunk`` and freezes it."""
    for layer in trunk.layers:
        for variable in layer.weights:
            variable.assign(weights[f"{layer.name}/{variable.name}"])
    trunk.trainable = False
    return trunk


def pooled_branch(name, trunk, preprocess, source):
    """``inputs -> preprocess -> trunk (inference mode) -> [average, max] pooled`` as a ``PretrainedBranch``."""
    inputs = keras.Input(trunk.input_shape[1:], name=name)
    maps = trunk(preprocess(inputs), training=False)
    pooled = [keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(maps),
              keras.layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(maps)]
    features = keras.layers.Concatenate(name=f"{name}_pool")(pooled)
    return PretrainedBranch(name, inputs, features, "image", source=source)
