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


def test_image_resnet_is_resnet18_by_default_and_configurable():
    b = branches.image_resnet((64, 64, 3), name="image")
    assert b.features.shape == (None, 512)
    model = b.encoder()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # ResNet18: stem + 8 blocks x 2 convs + 3 projection shortcuts = 20 convolutions.
    assert len(convs) == 20
    tiny = branches.image_resnet((32, 32, 3), stack_sizes=(1, 1), filters=(4, 8), bottleneck=True, stem_filters=4)
    assert tiny.features.shape == (None, 32)


def test_image_resnet_rejects_mismatched_stages():
    with pytest.raises(ValueError, match="filters"):
        branches.image_resnet(stack_sizes=(2, 2), filters=(64,))


def test_image_resnet50_is_keras_application():
    b = branches.image_resnet50((32, 32, 3))
    assert b.features.shape == (None, 2048)
    assert b.encoder().get_layer("image_resnet50").count_params() == 23_587_712
    with pytest.raises(ValueError, match="input_shape"):
        branches.image_resnet50((16, 16, 3))
