"""Image branch builders: inputs are float32 ``(H, W, C)`` images in [0, 1]."""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch

_REDUCTIONS = {"avg", "max", "flatten"}


def reduce_feature_map(x, reduction, name):
    """Reduces a ``(batch, H, W, C)`` map to ``(batch, features)``."""
    if reduction == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    if reduction == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(x)
    return keras.layers.Flatten(name=f"{name}_flatten")(x)


def image_cnn(
    input_shape=(28, 28, 1),
    filters=(32, 64),
    kernel_size=3,
    pool_size=2,
    reduction="avg",
    activation="relu",
    batch_norm=False,
    padding="valid",
    name="image",
):
    """A stack of Conv2D + MaxPooling2D blocks.

    Block ``i`` is ``Conv2D(filters[i], kernel_size)`` (+ ``BatchNormalization``)
    + activation, then ``MaxPooling2D(pool_size)``.

    Args:
        input_shape: ``(height, width, channels)`` of the input image.
        filters: Filters of each block (one block per entry).
        kernel_size: Convolution kernel size.
        pool_size: Max-pooling window and stride (``1`` disables pooling).
        reduction: How the last feature map becomes a vector: ``"avg"`` or
            ``"max"`` (global pooling) or ``"flatten"``.
        activation: Activation after each convolution.
        batch_norm: Insert ``BatchNormalization`` before each activation.
        padding: ``"valid"`` or ``"same"`` convolution padding.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` whose features have shape ``(batch, filters[-1])`` (or
        the flattened map for ``reduction="flatten"``).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> image = branches.image_cnn((28, 28, 1), filters=(32, 64), name="image")
    >>> image.features.shape
    (None, 64)
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    filters = check.positive_ints("filters", filters)
    kernel_size = check.positive_int("kernel_size", kernel_size)
    pool_size = check.positive_int("pool_size", pool_size)
    check.choice("reduction", reduction, _REDUCTIONS)
    check.choice("padding", padding, {"valid", "same"})
    check.identifier("name", name)

    inputs = keras.Input(input_shape, name=name)
    x = inputs
    for i, width in enumerate(filters, start=1):
        if padding == "valid" and min(x.shape[1], x.shape[2]) < kernel_size:
            raise ValueError(
                f"`input_shape` {input_shape} is too small for {len(filters)} blocks with "
                f"kernel_size={kernel_size}, pool_size={pool_size}: block {i} sees a "
                f"{x.shape[1]}x{x.shape[2]} map."
            )
        x = keras.layers.Conv2D(
            width, kernel_size, padding=padding, use_bias=not batch_norm, name=f"{name}_conv{i}"
        )(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_bn{i}")(x)
        x = keras.layers.Activation(activation, name=f"{name}_act{i}")(x)
        if pool_size > 1:
            if min(x.shape[1], x.shape[2]) < pool_size:
                raise ValueError(
                    f"`input_shape` {input_shape} is too small for {len(filters)} blocks with "
                    f"kernel_size={kernel_size}, pool_size={pool_size}: block {i} sees a "
                    f"{x.shape[1]}x{x.shape[2]} map."
                )
            x = keras.layers.MaxPooling2D(pool_size, name=f"{name}_pool{i}")(x)
    return Branch(name, inputs, reduce_feature_map(x, reduction, name), "image")


def _residual_block(x, filters, stride, bottleneck, name):
    """A ResNet v1 basic (two 3x3) or bottleneck (1x1-3x3-1x1, 4x wider) block."""
    out_width = filters * 4 if bottleneck else filters
    shortcut = x
    if stride != 1 or x.shape[-1] != out_width:
        shortcut = keras.layers.Conv2D(out_width, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = keras.layers.BatchNormalization(
            epsilon=1.001e-5, synchronized=True, name=f"{name}_0_bn"
        )(shortcut)
    if bottleneck:
        convs = [(filters, 1, stride), (filters, 3, 1), (out_width, 1, 1)]
    else:
        convs = [(filters, 3, stride), (filters, 3, 1)]
    for j, (width, kernel, s) in enumerate(convs, start=1):
        x = keras.layers.Conv2D(width, kernel, strides=s, padding="same", use_bias=False, name=f"{name}_{j}_conv")(x)
        x = keras.layers.BatchNormalization(epsilon=1.001e-5, synchronized=True, name=f"{name}_{j}_bn")(x)
        if j < len(convs):
            x = keras.layers.Activation("relu", name=f"{name}_{j}_relu")(x)
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def image_resnet(
    input_shape=(224, 224, 3),
    stack_sizes=(2, 2, 2, 2),
    filters=(64, 128, 256, 512),
    bottleneck=False,
    stem_filters=64,
    reduction="avg",
    name="image",
):
    """A ResNet (v1) image encoder; the defaults are ResNet18.

    ResNet34 is ``stack_sizes=(3, 4, 6, 3)``; ResNet50 is ``stack_sizes=(3, 4,
    6, 3), bottleneck=True``. Small ``filters``/``stack_sizes`` give tiny
    versions for tests.

    Args:
        input_shape: ``(height, width, channels)``.
        stack_sizes: Residual blocks per stage.
        filters: Base filters per stage (same length as ``stack_sizes``).
        bottleneck: Use 1x1-3x3-1x1 bottleneck blocks (4x output width).
        stem_filters: Filters of the 7x7/2 stem convolution.
        reduction: ``"avg"``, ``"max"`` or ``"flatten"``.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` with features of width ``filters[-1]`` (x4 if bottleneck).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> resnet18 = branches.image_resnet((224, 224, 3), name="image")
    >>> resnet18.features.shape
    (None, 512)
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    stack_sizes = check.positive_ints("stack_sizes", stack_sizes)
    filters = check.positive_ints("filters", filters)
    if len(filters) != len(stack_sizes):
        raise ValueError(
            f"`filters` needs one entry per stage ({len(stack_sizes)} stages). Received: filters={filters!r}"
        )
    stem_filters = check.positive_int("stem_filters", stem_filters)
    check.choice("reduction", reduction, _REDUCTIONS)
    check.identifier("name", name)

    inputs = keras.Input(input_shape, name=name)
    x = keras.layers.Conv2D(stem_filters, 7, strides=2, padding="same", use_bias=False, name=f"{name}_stem_conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1.001e-5, synchronized=True, name=f"{name}_stem_bn")(x)
    x = keras.layers.Activation("relu", name=f"{name}_stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_stem_pool")(x)
    for stage, (blocks, width) in enumerate(zip(stack_sizes, filters), start=2):
        for block in range(1, blocks + 1):
            stride = 2 if block == 1 and stage > 2 else 1
            x = _residual_block(x, width, stride, bottleneck, f"{name}_conv{stage}_block{block}")
    return Branch(name, inputs, reduce_feature_map(x, reduction, name), "image")


def image_resnet50(input_shape=(224, 224, 3), reduction="avg", name="image"):
    """``keras.applications.ResNet50`` (random weights) as an image branch.

    The application model is nested as one layer named ``{name}_resnet50``.
    Inputs in [0, 1] are scaled to [0, 255] first (the application's range).
    Pretrained weights are not loaded here (``weights=None``).

    Args:
        input_shape: ``(height, width, 3)``, at least 32x32.
        reduction: ``"avg"`` or ``"max"`` global pooling.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` with 2048 features.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> image = branches.image_resnet50((224, 224, 3))
    >>> image.features.shape
    (None, 2048)
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    if input_shape[-1] != 3 or min(input_shape[:2]) < 32:
        raise ValueError(f"`input_shape` must be (H, W, 3) with H, W >= 32. Received: input_shape={input_shape!r}")
    check.choice("reduction", reduction, {"avg", "max"})
    check.identifier("name", name)
    inputs = keras.Input(input_shape, name=name)
    x = keras.layers.Rescaling(255.0, name=f"{name}_rescale")(inputs)
    backbone = keras.applications.ResNet50(
        weights=None, include_top=False, pooling=reduction, input_shape=input_shape, name=f"{name}_resnet50"
    )
    return Branch(name, inputs, backbone(x), "image")
