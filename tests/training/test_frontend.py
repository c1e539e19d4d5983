"""Front ends computed once for training (mmzoo.training.frontend): same features, same model, trained in place."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, heads
from mmzoo.training import frontend


@pytest.fixture(scope="module")
def batches():
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=32, shuffle=False)
    return train_ds.take(4)


def test_trunk_of_the_frontend_equals_the_model(batches):
    keras.utils.set_random_seed(0)
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    features, trunk = frontend.split(model)
    x, _ = next(iter(batches))
    assert [layer.name for layer in features.layers if layer.name.startswith("audio_")] == [
        "audio_level", "audio_mel", "audio_time_major"]
    assert trunk.count_params() == model.count_params()  # the same layers and weights
    np.testing.assert_allclose(trunk(features(x)), model(x), rtol=1e-5, atol=1e-6)


def test_cached_features_equal_the_in_model_features_and_training_trains_the_model(batches, tmp_path):
    keras.utils.set_random_seed(0)
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    in_model = keras.Model(model.input, model.get_layer("audio_time_major").output)
    trunk, features = frontend.cached(model, batches)
    for (x, _), (f, _) in zip(batches, features):
        # Log-mel dB values (tens of dB): tf.data and the model's call may round the FFT differently.
        np.testing.assert_allclose(f["audio"], in_model(x), rtol=0, atol=1e-2)
        np.testing.assert_array_equal(f["image"], x["image"])
    before = [w.copy() for w in model.get_weights()]
    trunk.fit(features, epochs=2, verbose=0)
    assert model.optimizer.iterations.numpy() == 8  # the model's own optimizer took the steps
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    x, _ = next(iter(batches))
    np.testing.assert_allclose(model.predict(x, verbose=0), trunk.predict(frontend.split(model)[0](x), verbose=0),
                               rtol=1e-5, atol=1e-6)
    # The model, front end included, still saves and reloads in safe mode after its trunk was cut out and trained.
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    _, shuffled = frontend.cached(model, batches, shuffle=True, batch_size=16, seed=0)
    assert int(shuffled.cardinality()) == 8  # known: Keras then takes one optimizer step per batch, not one more
    sizes = [int(y.shape[0]) for _, y in shuffled]
    assert sizes == [16] * 8 and sorted(np.concatenate([y for _, y in shuffled])) == sorted(
        np.concatenate([y for _, y in batches]))


def test_models_that_cannot_be_cached_are_refused_by_name():
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    audio = branches.audio_spectrogram_cnn(num_samples=4000, sampling_rate=8000, filters=(4,), name="audio")
    balanced = mmzoo.compose([image, audio], head=heads.multiclass(10), auxiliary_loss_weight=0.5)
    with pytest.raises(ValueError, match="its own train_step"):
        frontend.split(balanced)
    image_only = mmzoo.zoo.build_tiny("av_digits_concat", modalities=("image",))
    with pytest.raises(ValueError, match="no front end to cache"):
        frontend.split(image_only)
    model = mmzoo.zoo.build_tiny("av_digits_concat")
    with pytest.raises(ValueError, match="batch_size"):
        frontend.cached(model, mmzoo.datasets.av_digits(batch_size=8)[0], shuffle=True)
    uncompiled = keras.Model(model.input, model.output)
    with pytest.raises(ValueError, match="must be compiled"):
        frontend.cached(uncompiled, mmzoo.datasets.av_digits(batch_size=8)[0])
