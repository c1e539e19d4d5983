"""The bundled pretrained MobileNetV2 trunk: its weights, frozen, on real emoji, and safe-mode reload."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mmzoo import branches
from mmzoo.branches import mobilenet


def _emoji(shared_data, group, count, side):
    with open(shared_data / "openmoji" / "openmoji.jsonl") as f:
        rows = [r for r in map(json.loads, f) if r["group"] == group][:count]
    from mmzoo.data import image as image_lib

    return np.stack([image_lib.decode_image(tf.io.read_file(str(shared_data / "openmoji" / "images" /
                                                                f"{r['hexcode']}.png")), (side, side, 3)).numpy()
                     for r in rows])


def test_the_trunk_holds_the_bundled_weights_and_is_frozen():
    trunk = mobilenet.mobilenet_v2_trunk((32, 32, 3))
    stored = mobilenet._weights()
    assert len(stored) == sum(len(layer.weights) for layer in trunk.layers) == 160
    for layer in trunk.layers:
        for variable in layer.weights:
            np.testing.assert_array_equal(variable.numpy(), stored[f"{layer.name}/{variable.name}"])
    assert trunk.trainable_weights == [] and trunk.layers[-1].name == mobilenet.LAST_LAYER
    assert trunk.output.shape == (None, 2, 2, mobilenet.FEATURES // 2)
    # 8-bit weights dequantized: each tensor takes at most 256 values; BatchNorm variances are not negative.
    assert len(np.unique(stored["Conv1/kernel"])) <= 256 and (stored["bn_Conv1/moving_variance"] >= 0).all()


@pytest.mark.parametrize("shape", [(16, 16, 3), (64, 64, 1), (64, 64)])
def test_the_trunk_refuses_images_it_cannot_take(shape):
    with pytest.raises(ValueError, match="input_shape"):
        mobilenet.mobilenet_v2_trunk(shape)


def test_pretrained_features_tell_real_emoji_groups_apart_and_reload_in_safe_mode(shared_data, tmp_path):
    branch = branches.image_mobilenet_v2((96, 96, 3), name="picture")
    assert branch.features.shape == (None, mobilenet.FEATURES) and branch.modality == "image"
    encoder = keras.Model(branch.input, branch.features)
    assert [layer.name for layer in encoder.layers][:3] == ["picture", "picture_preprocess", "picture_mobilenet_v2"]
    groups = ("flags", "food-drink", "smileys-emotion")
    features = [encoder.predict(_emoji(shared_data, g, 30, 96), verbose=0) for g in groups]
    # Nearest class mean (standardised on the first 20 of each group), scored on the other 10.
    train = np.concatenate([f[:20] for f in features])
    mean, std = train.mean(0), train.std(0) + 1e-6
    centroids = np.stack([((f[:20] - mean) / std).mean(0) for f in features])
    correct = 0
    for label, f in enumerate(features):
        distances = (((f[20:] - mean) / std)[:, None, :] - centroids[None]) ** 2
        correct += int((distances.sum(-1).argmin(1) == label).sum())
    assert correct / 30 >= 0.8, correct

    encoder.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras", safe_mode=True)
    images = _emoji(shared_data, "flags", 4, 96)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), encoder.predict(images, verbose=0), atol=1e-4)
