import keras
import numpy as np
import pytest

from mmzoo import branches


def test_image_cnn_shapes_names_and_reductions():
    b = branches.image_cnn((28, 28, 1), filters=(8, 16), name="img")
    assert b.name == "img" and b.modality == "image"
    assert b.input.shape == (None, 28, 28, 1)
    assert b.features.shape == (None, 16)
    model = b.encoder()
    assert all(layer.name.startswith("img") for layer in model.layers)
    assert branches.image_cnn((28, 28, 1), filters=(8,), reduction="flatten").features.shape == (None, 13 * 13 * 8)
    assert branches.image_cnn((28, 28, 1), filters=(8,), reduction="max").features.shape == (None, 8)
    bn = branches.image_cnn((16, 16, 3), filters=(4,), batch_norm=True, padding="same").encoder()
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in bn.layers)


def test_image_cnn_encodes_real_images(real_data):
    encoder = branches.image_cnn((28, 28, 1), filters=(4,)).encoder()
    features = encoder(real_data.image((28, 28, 1))[:8])
    assert features.shape == (8, 4)
    assert np.std(np.asarray(features)) > 0


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"input_shape": (28, 28)}, "input_shape"),
        ({"filters": ()}, "filters"),
        ({"filters": (8, -1)}, "filters"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"reduction": "mean"}, "reduction"),
        ({"padding": "full"}, "padding"),
        ({"name": "bad name"}, "name"),
        ({"input_shape": (4, 4, 1), "filters": (4, 4, 4)}, "input_shape"),
    ],
)
def test_image_cnn_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        branches.image_cnn(**kwargs)


def test_image_resnet_is_a_keras_hub_resnet18_by_default():
    import keras_hub

    b = branches.image_resnet((64, 64, 3), name="image")
    assert b.features.shape == (None, 512)
    encoder = b.encoder()
    backbone = encoder.get_layer("image_backbone")
    assert isinstance(backbone, keras_hub.models.ResNetBackbone)
    assert backbone.stackwise_num_blocks == [2, 2, 2, 2] and backbone.block_type == "basic_block"
    assert encoder.count_params() == 11_186_112  # ResNet18 without its classifier
    # Random weights: the [0, 1] images go in as they are (no converter, no rescaling).
    assert not any(isinstance(layer, keras.layers.Rescaling) for layer in encoder.layers)


def test_image_resnet_depths_and_tiny_versions_from_one_builder(real_data):
    resnet50 = branches.image_resnet((64, 64, 3), depth=50).encoder().get_layer("image_backbone")
    assert resnet50.stackwise_num_blocks == [3, 4, 6, 3] and resnet50.block_type == "bottleneck_block"
    assert resnet50.output.shape[-1] == 2048
    tiny = branches.image_resnet((32, 32, 3), stackwise_num_blocks=(1, 1), stackwise_num_filters=(64, 8),
                                 block_type="bottleneck_block", reduction="max")
    assert tiny.features.shape == (None, 32)
    features = tiny.encoder()(real_data.image((32, 32, 3))[:8])
    assert features.shape == (8, 32) and np.std(np.asarray(features)) > 0


def test_image_resnet_is_wired_like_a_pretrained_backbone():
    """Random and pretrained ResNets share one code path: image_resnet == image_keras_hub(ResNetBackbone)."""
    import keras_hub

    config = {"stackwise_num_blocks": [1, 1], "stackwise_num_filters": [64, 8], "block_type": "basic_block"}
    random = branches.image_resnet((32, 32, 3), **config).encoder()
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_strides=[1, 2], image_shape=(32, 32, 3),
        **config,
    )
    wired = branches.image_keras_hub(backbone, (32, 32, 3)).encoder()

    def structure(model):
        return [(type(layer).__name__, layer.name, [w.shape for w in layer.weights]) for layer in model.layers]

    assert structure(random) == structure(wired)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"depth": 20}, "depth=20"),
        ({"stackwise_num_blocks": (2, 2), "stackwise_num_filters": (64,)}, "stackwise_num_filters"),
        ({"stackwise_num_blocks": (1, 1), "stackwise_num_filters": (4, 8)}, "stackwise_num_filters"),
        ({"stackwise_num_blocks": (1,) * 5}, "stackwise_num_filters=None"),
        ({"stackwise_num_blocks": (0, 1)}, "stackwise_num_blocks"),
        ({"block_type": "basic_block_vd"}, "block_type"),
        ({"reduction": "mean"}, "reduction"),
        ({"input_shape": (32, 32)}, "input_shape"),
    ],
)
def test_image_resnet_rejects_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        branches.image_resnet(**kwargs)
