"""``keras.applications`` image models (random, ImageNet or file weights) as image branches.

The application's own ``preprocess_input`` runs inside the model as the
serializable ``mmzoo.layers.ApplicationPreprocess`` layer, so the model keeps
the package's image contract (float32 in [0, 1]) and loads in safe mode.
``image_keras_app("ResNet50")`` is the ``keras.applications`` ResNet50 branch,
random (``weights=None``) or pretrained from the same builder.
"""

from __future__ import annotations

import os

import keras

from mmzoo import _validation as check
from mmzoo._offline import KERAS_APP_LOCAL_COPY, fetch
from mmzoo.branches.pretrained import PretrainedBranch
from mmzoo.layers import ApplicationPreprocess
from mmzoo.layers.preprocess import APPLICATION_MODULES


def _check_weights(weights):
    if weights is None or weights == "imagenet":
        return weights
    if isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights):
        return os.fspath(weights)
    raise ValueError(
        "`weights` must be None (random), 'imagenet' or the path of an existing weights file. "
        f"Received: weights={weights!r}"
    )


def image_keras_app(
    application="ResNet50",
    input_shape=(224, 224, 3),
    weights=None,
    reduction="avg",
    trainable=True,
    name="image",
    **application_kwargs,
):
    """A ``keras.applications`` model without its top as an image branch.

    Inputs in [0, 1] are scaled to [0, 255] and passed through the
    application's ``preprocess_input`` (``ApplicationPreprocess``), then the
    application (nested as one layer ``{name}_{application.lower()}``) with
    global pooling. Freeze it with ``trainable=False`` or
    ``mmzoo.finetune.freeze``; frozen BatchNormalization runs in inference mode.

    Args:
        application: A ``keras.applications`` model name, e.g. ``"ResNet50"``,
            ``"EfficientNetB0"``, ``"MobileNetV2"``.
        input_shape: ``(height, width, 3)``.
        weights: ``None`` (random), ``"imagenet"`` (downloaded once into
            ``~/.keras/models``) or the path of a weights file of the
            include-top-free model (e.g. a downloaded ``*_notop.h5``, or
            ``save_weights`` output of this branch's application layer).
        reduction: ``"avg"`` or ``"max"`` global pooling.
        trainable: Whether the application's weights train.
        name: Input name and layer-name prefix.
        **application_kwargs: Further arguments of the application (e.g.
            ``alpha`` for MobileNet).

    Returns:
        A ``PretrainedBranch`` (no preprocessor; ``source`` is the weights).

    Raises:
        ValueError: If an argument is invalid.
        ConnectionError: If ``weights="imagenet"`` must be downloaded and
            cannot be (the message names the URL and how to pass a file).

    Example::

        resnet50 = branches.image_keras_app("ResNet50", (224, 224, 3))  # random weights, 2,048 features
        pretrained = branches.image_keras_app("ResNet50", (224, 224, 3), weights="weights/resnet50_notop.h5")
    """
    check.choice("application", application, set(APPLICATION_MODULES))
    input_shape = check.shape("input_shape", input_shape, 3)
    if input_shape[-1] != 3:
        raise ValueError(f"`input_shape` must have 3 channels. Received: input_shape={input_shape!r}")
    weights = _check_weights(weights)
    check.choice("reduction", reduction, {"avg", "max"})
    check.identifier("name", name)
    builder = getattr(keras.applications, application)

    def build():
        return builder(
            include_top=False, weights=weights, input_shape=input_shape, pooling=reduction,
            name=f"{name}_{application.lower()}", **application_kwargs,
        )

    backbone = fetch(f"keras.applications {application} weights", weights, build, KERAS_APP_LOCAL_COPY)
    backbone.trainable = bool(trainable)
    inputs = keras.Input(input_shape, name=name)
    x = ApplicationPreprocess(application, name=f"{name}_preprocess")(inputs)
    return PretrainedBranch(name, inputs, backbone(x), "image", source=weights or application)
