"""keras.applications branches: in-model preprocess_input, weights from a file, safe-mode reload."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, heads
from mmzoo.layers import ApplicationPreprocess

SHAPE = (32, 32, 3)
KWARGS = {"alpha": 0.25}


def _images(n=3):
    return np.random.default_rng(0).uniform(size=(n, *SHAPE)).astype("float32")


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    """A MobileNet branch with random weights and its application's weights file."""
    branch = branches.image_keras_app("MobileNet", SHAPE, weights=None, **KWARGS)
    encoder = branch.encoder()
    rng = np.random.default_rng(1)
    for w in encoder.get_layer("image_mobilenet").weights:  # non-trivial weights, so outputs are not ~0
        values = rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else rng.normal(0, 0.3, w.shape)
        w.assign(values.astype("float32"))
    path = str(tmp_path_factory.mktemp("app") / "mobilenet_notop.weights.h5")
    encoder.get_layer("image_mobilenet").save_weights(path)
    return encoder, path


def test_branch_from_weights_file_matches_the_saved_weights(saved_weights):
    encoder, path = saved_weights
    loaded = branches.image_keras_app("MobileNet", SHAPE, weights=path, **KWARGS)
    assert loaded.features.shape == (None, 256) and loaded.source == path
    x = _images()
    np.testing.assert_array_equal(loaded.encoder()(x), encoder(x))
    assert np.abs(encoder(x)).mean() > 1e-3
    fresh = branches.image_keras_app("MobileNet", SHAPE, weights=None, **KWARGS)
    assert not np.allclose(fresh.encoder()(x), encoder(x), atol=0)


def test_model_with_app_branch_reloads_in_safe_mode(saved_weights, tmp_path):
    _, path = saved_weights
    image = branches.image_keras_app("MobileNet", SHAPE, weights=path, **KWARGS)
    model = mmzoo.compose([image], head=heads.multiclass(3), hidden=(4,))
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model._flatten_layers())
    model.save(tmp_path / "m.keras")
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = {"image": _images()}
    np.testing.assert_array_equal(reloaded(x), model(x))


def test_resnet50_is_the_keras_application_with_its_preprocessing():
    b = branches.image_keras_app("ResNet50", SHAPE)
    assert b.features.shape == (None, 2048) and b.source == "ResNet50"
    encoder = b.encoder()
    assert encoder.get_layer("image_resnet50").count_params() == 23_587_712
    assert encoder.get_layer("image_preprocess").get_config()["application"] == "ResNet50"
    with pytest.raises(ValueError, match="input_shape"):
        branches.image_keras_app("ResNet50", (16, 16, 3))


def test_preprocess_layer_is_the_applications_own():
    x = _images()
    layer = ApplicationPreprocess("ResNet50")
    expected = keras.applications.resnet.preprocess_input(x * 255.0)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-6)
    clone = ApplicationPreprocess.from_config(layer.get_config())
    np.testing.assert_allclose(clone(x), expected, rtol=1e-6)
    np.testing.assert_allclose(ApplicationPreprocess("MobileNetV2")(x), x * 2.0 - 1.0, rtol=1e-6, atol=1e-6)


def test_frozen_app_branch_has_no_trainable_weights_and_keeps_batchnorm_statistics(saved_weights):
    _, path = saved_weights
    image = branches.image_keras_app("MobileNet", SHAPE, weights=path, trainable=False, **KWARGS)
    model = mmzoo.compose([image], head=heads.multiclass(3), hidden=(4,))
    backbone = model.get_layer("image_mobilenet")
    assert backbone.trainable_weights == [] and len(model.trainable_weights) == 4
    before = [w.numpy().copy() for w in backbone.weights]
    model.train_on_batch({"image": _images()}, np.array([0, 1, 2]))
    for a, w in zip(before, backbone.weights):
        np.testing.assert_array_equal(a, w.numpy())


def test_bad_arguments_and_offline_imagenet(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="application="):
        branches.image_keras_app("ResNet49", SHAPE)
    with pytest.raises(ValueError, match="weights="):
        branches.image_keras_app("MobileNet", SHAPE, weights=str(tmp_path / "missing.h5"))
    with pytest.raises(ValueError, match="input_shape="):
        branches.image_keras_app("MobileNet", (32, 32, 1))
    import urllib.error

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty download cache
    with pytest.raises(ConnectionError, match="storage.googleapis.com.*pass its path as `weights=`"):
        branches.image_keras_app("MobileNet", (128, 128, 3), weights="imagenet", **KWARGS)
