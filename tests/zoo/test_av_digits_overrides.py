"""AV-digits zoo models take their input geometry and modalities as overrides (real 1-second FSDD clips)."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import data, heads
from mmzoo.datasets import av_digits_recipe as av_digits

RATE = 8000
ONE_SECOND = 8000
SMALL = {"image_filters": (8,), "audio_filters": (8,), "hidden": (16,)}


@pytest.fixture(scope="module")
def one_second_pairs(shared_data):
    """Real FSDD clips (digits 0-9, 3 speakers, 2 takes), decoded to 1 s at 8 kHz, with MNIST images of their digit."""
    column = data.AudioColumn("audio", RATE, ONE_SECOND)
    folder = shared_data / "fsdd" / "recordings"
    names = [f"{d}_{s}_{i}.wav" for d in range(10) for s in ("jackson", "george", "nicolas") for i in (0, 1)]
    audio = np.stack([column.decode_bytes(tf.io.read_file(str(folder / n))).numpy() for n in names])
    lengths = [len(av_digits.read_wav_int16(str(folder / n))[0]) for n in names]
    labels = np.array([av_digits.parse_fsdd_name(n)[0] for n in names], "int32")
    images, image_labels = av_digits.read_mnist(os.fspath(shared_data / "mnist"))
    picks = [np.flatnonzero(image_labels == d)[k] for k, d in enumerate(labels)]
    return {"image": images[picks][..., None].astype("float32") / 255.0, "audio": audio}, labels, lengths


def test_concat_trains_on_one_second_clips(one_second_pairs):
    x, y, lengths = one_second_pairs
    assert max(lengths) > av_digits.NUM_SAMPLES, "some real clips must be longer than the default 0.5 s"
    assert x["audio"].shape == (len(y), ONE_SECOND) and np.std(x["audio"]) > 0
    keras.utils.set_random_seed(0)
    model = mmzoo.build("av_digits_concat", num_samples=ONE_SECOND, sampling_rate=RATE, **SMALL)
    assert tuple(model.input["audio"].shape) == (None, ONE_SECOND)
    history = model.fit(x, y, batch_size=20, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (len(y), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert heads.from_model(model).class_names == av_digits.CLASS_NAMES


def test_attention_builds_with_one_modality(one_second_pairs):
    x, y, _ = one_second_pairs
    keras.utils.set_random_seed(0)
    model = mmzoo.build("av_digits_attention", modalities=("image",), units=8, **SMALL)
    assert sorted(model.input) == ["image"]
    loss = model.train_on_batch({"image": x["image"]}, y)
    assert np.isfinite(np.asarray(loss, "float64")).all()
    assert model.predict({"image": x["image"]}, verbose=0).shape == (len(y), 10)


def test_attention_takes_the_audio_geometry_and_image_shape():
    model = mmzoo.build("av_digits_attention", num_samples=ONE_SECOND, image_shape=(32, 32, 3), units=8, **SMALL)
    assert tuple(model.input["audio"].shape) == (None, ONE_SECOND)
    assert tuple(model.input["image"].shape) == (None, 32, 32, 3)


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("av_digits_concat", {"num_samples": 0}, "Received: num_samples=0"),
        ("av_digits_concat", {"sampling_rate": 8000.5}, "Received: sampling_rate=8000.5"),
        ("av_digits_concat", {"image_shape": (28, 28)}, "Received: image_shape=\\(28, 28\\)"),
        ("av_digits_attention", {"modalities": ("image", "video")}, "Received: modalities=\\('image', 'video'\\)"),
    ],
)
def test_bad_geometry_names_the_argument(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        mmzoo.build(name, **kwargs)
