"""Image branch builders: inputs are float32 ``(H, W, C)`` images in [0, 1].

``image_resnet`` builds a ``keras_hub.models.ResNetBackbone`` (imported inside
the builder) and wires it as ``image_keras_hub`` wires a pretrained one. The
``keras.applications`` ResNet50 is ``image_keras_app("ResNet50")``.
"""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch

# How a feature map becomes a vector (``reduce_feature_map``).
MAP_REDUCTIONS = {"avg", "max", "flatten"}


def reduce_feature_map(x, reduction, name):
    """Reduces a ``(batch, H, W, C)`` map to ``(batch, features)``."""
    if reduction == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    if reduction == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(x)
    return keras.layers.Flatten(name=f"{name}_flatten")(x)


def feature_map_regions(x, name):
    """Reshapes a ``(batch, H, W, C)`` map to ``(batch, H * W, C)`` regions (layer ``{name}_regions``).

    Args:
        x: The symbolic feature map.
        name: Layer-name prefix.

    Returns:
        The ``(batch, H * W, C)`` tensor: one step per map position, row by
        row (a branch's ``sequence`` for cross-modal attention); ``None``
        when ``H``, ``W`` or ``C`` is unknown.

    Example:

    >>> import keras
    >>> from mmzoo.branches.image import feature_map_regions
    >>> feature_map_regions(keras.Input((5, 5, 8)), "image").shape
    (None, 25, 8)
    """
    height, width, channels = x.shape[1:]
    if None in (height, width, channels):
        return None
    return keras.layers.Reshape((height * width, channels), name=f"{name}_regions")(x)


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
        the flattened map for ``reduction="flatten"``); its ``sequence`` is
        the last feature map as ``(batch, H * W, filters[-1])`` regions
        (``feature_map_regions``), no mask.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> image = branches.image_cnn((28, 28, 1), filters=(32, 64), name="image")
    >>> image.features.shape
    (None, 64)
    """
    input_shape = check.shape("input_shape", input_shape, 3)
    filters = check.positive_ints("filters", filters)
    kernel_size = check.positive_int("kernel_size", kernel_size)
    pool_size = check.positive_int("pool_size", pool_size)
    check.choice("reduction", reduction, MAP_REDUCTIONS)
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
    return Branch(name, inputs, reduce_feature_map(x, reduction, name), "image", sequence=feature_map_regions(x, name))


# depth -> (residual blocks per stage, KerasHub block type), as in He et al. (2016), table 1.
RESNET_DEPTHS = {
    18: ((2, 2, 2, 2), "basic_block"),
    34: ((3, 4, 6, 3), "basic_block"),
    50: ((3, 4, 6, 3), "bottleneck_block"),
    101: ((3, 4, 23, 3), "bottleneck_block"),
    152: ((3, 8, 36, 3), "bottleneck_block"),
}
_RESNET_FILTERS = (64, 128, 256, 512)


def image_resnet(
    input_shape=(224, 224, 3),
    depth=18,
    stackwise_num_blocks=None,
    stackwise_num_filters=None,
    block_type=None,
    use_pre_activation=False,
    reduction="avg",
    name="image",
):
    """A ``keras_hub.models.ResNetBackbone`` with random weights; the defaults are ResNet18.

    ``depth`` picks the stage depths and block type of ResNet18/34 (basic
    blocks, 512 features) or ResNet50/101/152 (bottleneck blocks, 2,048
    features); ``stackwise_num_blocks`` / ``stackwise_num_filters`` override
    them for other sizes, e.g. tiny versions for tests. The stem is the
    usual 7x7/2 convolution with 64 filters and a 3x3/2 max-pooling; stage
    ``i > 0`` starts with a stride of 2.

    The backbone (nested as one layer, ``{name}_backbone``) is wired as
    ``image_keras_hub(backbone)`` wires a pretrained one, without an image
    converter: with random weights the [0, 1] inputs go in as they are (the
    first BatchNormalization absorbs the scale). A pretrained ResNet is the
    same branch from a preset, whose converter then rescales the inputs:
    ``image_keras_hub("resnet_50_imagenet")``.

    Args:
        input_shape: ``(height, width, channels)``.
        depth: 18, 34, 50, 101 or 152.
        stackwise_num_blocks: Residual blocks per stage (``None``: the
            ``depth``'s, e.g. ``(2, 2, 2, 2)`` for 18).
        stackwise_num_filters: Base filters per stage, one per stage; the
            first must be 64 (KerasHub's ``ResNetBackbone`` requires it).
            ``None``: ``(64, 128, 256, 512)`` cut to the number of stages.
        block_type: ``"basic_block"`` or ``"bottleneck_block"`` (4x wider
            output); ``None``: the ``depth``'s.
        use_pre_activation: ResNetV2 (BatchNormalization and ReLU before
            each convolution) instead of ResNet (v1).
        reduction: ``"avg"``, ``"max"`` or ``"flatten"``.
        name: Input name and layer-name prefix.

    Returns:
        A ``PretrainedBranch`` (no preprocessor) with features of width
        ``stackwise_num_filters[-1]`` (x4 for bottleneck blocks); its
        ``sequence`` is the last feature map as ``(batch, H * W, width)``
        regions.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> resnet18 = branches.image_resnet((224, 224, 3), name="image")
    >>> resnet18.features.shape
    (None, 512)
    >>> branches.image_resnet((64, 64, 3), depth=50).features.shape
    (None, 2048)
    """
    import keras_hub  # noqa: PLC0415

    from mmzoo.branches.keras_hub import image_keras_hub  # that module imports this one  # noqa: PLC0415

    input_shape = check.shape("input_shape", input_shape, 3)
    default_blocks, default_type = RESNET_DEPTHS[check.choice("depth", depth, set(RESNET_DEPTHS))]
    blocks = check.positive_ints("stackwise_num_blocks", default_blocks if stackwise_num_blocks is None
                                 else stackwise_num_blocks)
    if stackwise_num_filters is None:
        if len(blocks) > len(_RESNET_FILTERS):
            raise ValueError(
                f"`stackwise_num_filters` is needed for more than {len(_RESNET_FILTERS)} stages. "
                f"Received: stackwise_num_filters=None, stackwise_num_blocks={blocks}"
            )
        stackwise_num_filters = _RESNET_FILTERS[: len(blocks)]
    filters = check.positive_ints("stackwise_num_filters", stackwise_num_filters)
    if len(filters) != len(blocks) or filters[0] != 64:
        raise ValueError(
            f"`stackwise_num_filters` needs one entry per stage ({len(blocks)} stages), the first 64. "
            f"Received: stackwise_num_filters={stackwise_num_filters!r}"
        )
    block_type = default_type if block_type is None else block_type
    check.choice("block_type", block_type, {"basic_block", "bottleneck_block"})
    check.choice("reduction", reduction, MAP_REDUCTIONS)
    check.identifier("name", name)
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=list(filters),
        stackwise_num_blocks=list(blocks),
        stackwise_num_strides=[1] + [2] * (len(blocks) - 1),
        block_type=block_type,
        use_pre_activation=bool(use_pre_activation),
        image_shape=input_shape,
        name=f"{name}_backbone",
    )
    return image_keras_hub(backbone, input_shape, reduction=reduction, name=name)
