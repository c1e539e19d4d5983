"""Uni-modal ensemble training (``mmzoo.training.ensemble``) on the embedded AV-digits."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, fusion, heads
from mmzoo.datasets import av_digits_recipe
from mmzoo.training import ensemble


def _late_model(mode="weighted", seed=0):
    keras.utils.set_random_seed(seed)
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    audio = branches.audio_spectrogram_cnn(4000, 8000, filters=(4,), name="audio")
    return mmzoo.compose([image, audio], fusion=fusion.late(mode), head=heads.multiclass(10), hidden=(8,))


@pytest.fixture(scope="module")
def av_data():
    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=64)
    return train_ds.take(6), test_ds


def test_each_branch_trains_alone_and_the_weights_fit_validation(av_data):
    train_ds, valid_ds = av_data
    model = _late_model()
    image_kernel = model.get_layer("image_logits").kernel.numpy().copy()
    audio_kernel = model.get_layer("audio_logits").kernel.numpy().copy()
    runs = ensemble.fit_branches(model, train_ds, valid_ds, epochs=2)
    assert set(runs) == {"image", "audio"} and all(1 <= r["best_epoch"] <= 2 for r in runs.values())
    # The branch models share the fused model's layers: both branches' logits layers were trained.
    assert not np.array_equal(image_kernel, model.get_layer("image_logits").kernel.numpy())
    assert not np.array_equal(audio_kernel, model.get_layer("audio_logits").kernel.numpy())

    uniform_loss = model.evaluate(valid_ds, verbose=0, return_dict=True)["loss"]
    weights = ensemble.fit_fusion_weights(model, valid_ds, steps=100)
    assert set(weights) == {"image", "audio"} and abs(sum(weights.values()) - 1) < 1e-3
    fitted_loss = model.evaluate(valid_ds, verbose=0, return_dict=True)["loss"]
    assert fitted_loss <= uniform_loss + 1e-4  # the weights minimise the validation loss (uniform is the start)
    logits = model.get_layer("fusion").weight_logits.numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(), list(weights.values()), atol=1e-3)


def test_cross_fitted_outputs_score_each_row_with_weights_fit_on_the_others(av_data):
    train_ds, valid_ds = av_data
    model = _late_model()
    ensemble.fit_branches(model, train_ds.take(2), None, epochs=1)
    logits, targets = ensemble.branch_logits(model, valid_ds.take(2))
    weights_before = model.get_layer("fusion").weight_logits.numpy().copy()
    honest = ensemble.cross_fitted_outputs(model, logits, targets, folds=2, seed=3, steps=100)
    assert honest.shape == (len(targets), 10) and np.allclose(honest.sum(1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(model.get_layer("fusion").weight_logits.numpy(), weights_before)  # left alone
    np.testing.assert_array_equal(honest, ensemble.cross_fitted_outputs(model, logits, targets, folds=2, seed=3,
                                                                        steps=100))
    # Weights fit on all rows and scored on them can only look better than weights that never saw the row.
    ensemble.fit_weights_to_logits(model, logits, targets, steps=100)
    in_sample = model.predict(valid_ds.take(2), verbose=0)

    def log_loss(p):
        return float(-np.log(np.clip(p[np.arange(len(targets)), targets], 1e-7, 1)).mean())

    assert log_loss(honest) >= log_loss(in_sample) - 1e-3
    with pytest.raises(ValueError, match="`folds` must be an integer from 2"):
        ensemble.cross_fitted_outputs(model, logits, targets, folds=1)
    with pytest.raises(ValueError, match="one entry per input"):
        ensemble.cross_fitted_outputs(model, {"image": logits["image"]}, targets)


def test_needs_a_weighted_late_fusion_model():
    with pytest.raises(ValueError, match="mode='weighted'"):
        ensemble.branch_models(_late_model("mean"))


def _arrays(n):
    x, y = av_digits_recipe.load_arrays()["train"]
    return {k: v[:n] for k, v in x.items()}, y[:n]


def test_out_of_group_logits_predict_each_group_with_branches_that_never_saw_it():
    x, y = _arrays(192)
    groups = np.where(np.arange(len(y)) % 3 == 0, "george", "lucas")
    built = []

    def build():
        built.append(_late_model())
        return built[-1]

    logits, targets, models = ensemble.out_of_group_logits(build, x, y, groups, epochs=1, return_models=True)
    assert len(built) == 2 and set(logits) == {"image", "audio"}
    assert [id(m) for m in models] == [id(m) for m in built]
    np.testing.assert_array_equal(targets, y)
    for model, group in zip(built, ("george", "lucas")):  # np.unique order
        held_out = groups == group
        ds = tf.data.Dataset.from_tensor_slices(({k: v[held_out] for k, v in x.items()}, y[held_out])).batch(64)
        expected, _ = ensemble.branch_logits(model, ds)
        for name in ("image", "audio"):
            np.testing.assert_allclose(logits[name][held_out], expected[name], rtol=1e-4, atol=1e-4)

    model = _late_model()
    weights = ensemble.fit_weights_to_logits(model, logits, targets, steps=50)
    assert set(weights) == {"image", "audio"} and abs(sum(weights.values()) - 1) < 1e-3
    fitted = model.get_layer("fusion").weight_logits.numpy()
    np.testing.assert_allclose(np.exp(fitted) / np.exp(fitted).sum(), list(weights.values()), atol=1e-3)


def test_out_of_group_logits_and_weights_refuse_bad_arguments():
    x, y = _arrays(64)
    with pytest.raises(ValueError, match="two distinct values"):
        ensemble.out_of_group_logits(_late_model, x, y, np.zeros(len(y)), epochs=1)
    with pytest.raises(ValueError, match="`groups` has 3 entries"):
        ensemble.out_of_group_logits(_late_model, x, y, np.arange(3), epochs=1)
    model = _late_model()
    with pytest.raises(ValueError, match="one entry per input"):
        ensemble.fit_weights_to_logits(model, {"image": np.zeros((len(y), 10))}, y)
    with pytest.raises(ValueError, match=r"`logits\['audio'\]` has 2 rows"):
        ensemble.fit_weights_to_logits(model, {"image": np.zeros((len(y), 10)), "audio": np.zeros((2, 10))}, y)


def test_branches_train_all_epochs_without_validation(av_data):
    model = _late_model()
    runs = ensemble.fit_branches(model, av_data[0].take(2), None, epochs=2)
    assert all(r["best_epoch"] == 2 and len(r["history"]["loss"]) == 2 for r in runs.values())


def test_bag_averages_the_branch_logits_round_trips_and_exports(tmp_path):
    x, y = _arrays(48)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model, *members = (_late_model(seed=seed) for seed in range(3))
    model.get_layer("fusion").weight_logits.assign([0.8, -0.4])
    bagged = ensemble.bag(model, members)
    assert bagged.name == f"{model.name}_bagged" and list(bagged.input) == list(model.input)

    each = [ensemble.branch_logits(m, ds)[0] for m in (model, *members)]
    logits, _ = ensemble.branch_logits(bagged, ds)  # still a late-fusion model for this module
    for name in ("image", "audio"):
        np.testing.assert_allclose(logits[name], np.mean([e[name] for e in each], axis=0), rtol=1e-4, atol=1e-5)
    weights = np.exp([0.8, -0.4]) / np.exp([0.8, -0.4]).sum()
    first, second = list(model.input)
    combined = weights[0] * logits[first] + weights[1] * logits[second]
    expected = np.asarray(tf.nn.softmax(combined))
    predicted = bagged.predict(x, verbose=0)
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-5)

    bagged.save(tmp_path / "bagged.keras")
    reloaded = keras.saving.load_model(tmp_path / "bagged.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), predicted, rtol=1e-5, atol=1e-6)
    served = tf.saved_model.load(mmzoo.export(bagged, str(tmp_path / "export"))).signatures["serving_default"]
    out = served(**{k: tf.constant(v) for k, v in x.items()})["probabilities"].numpy()
    np.testing.assert_allclose(out, predicted, rtol=1e-5, atol=1e-6)


def test_bag_refuses_members_that_do_not_match():
    model = _late_model()
    with pytest.raises(ValueError, match="at least one model"):
        ensemble.bag(model, [])
    keras.utils.set_random_seed(0)
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    other = mmzoo.compose([image, branches.audio_spectrogram_cnn(4000, 8000, filters=(4,), name="audio")],
                          fusion=fusion.late("weighted"), head=heads.multiclass(5), hidden=(8,))
    with pytest.raises(ValueError, match=r"`members\[0\]`"):
        ensemble.bag(model, [other])
    with pytest.raises(ValueError, match="mode='weighted'"):
        ensemble.bag(model, [_late_model("mean")])
