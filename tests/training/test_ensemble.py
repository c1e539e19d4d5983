"""Uni-modal ensemble training (``mmzoo.training.ensemble``) on the embedded AV-digits."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, fusion, heads
from mmzoo.training import ensemble


def _late_model(mode="weighted"):
    keras.utils.set_random_seed(0)
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


def test_needs_a_weighted_late_fusion_model():
    with pytest.raises(ValueError, match="mode='weighted'"):
        ensemble.branch_models(_late_model("mean"))
