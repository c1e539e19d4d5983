"""Modality dropout, auxiliary losses, gradient modulation and absent modalities (``mmzoo.balance``)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import balance, branches, cli, heads
from mmzoo.datasets import av_digits_recipe as recipe


def _av_model(**options):
    keras.utils.set_random_seed(0)
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    audio = branches.audio_spectrogram_cnn(4000, 8000, filters=(4,), name="audio")
    head = heads.multiclass(10, top_k=3, class_names=recipe.CLASS_NAMES)
    return mmzoo.compose([image, audio], head=head, hidden=(8,), **options)


@pytest.fixture(scope="module")
def av_data():
    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=64)
    return train_ds.take(8), next(iter(test_ds))


def test_modality_dropout_never_drops_every_present_modality():
    layer = balance.ModalityDropout(rate=0.9, seed=1)
    n = 2000
    features = [np.ones((n, 3), "float32"), np.ones((n, 2), "float32")]
    raw = [np.ones((n, 5), "float32"), np.ones((n, 5), "float32")]
    raw[1][: n // 2] = 0.0  # the first half has no audio: its image must always be kept
    image, audio = (keras.ops.convert_to_numpy(x) for x in layer([*features, *raw], training=True))
    kept_image, kept_audio = image[:, 0] == 1, audio[:, 0] == 1
    assert kept_image[: n // 2].all() and not kept_audio[: n // 2].any()
    assert (kept_image | kept_audio).all()
    # Both present: each is dropped with probability 0.9 unless that would drop both (then both stay).
    both = kept_image[n // 2 :] & kept_audio[n // 2 :]
    assert 0.6 < both.mean() < 0.95 and 0.02 < (kept_image[n // 2 :] & ~kept_audio[n // 2 :]).mean() < 0.2


def test_modality_dropout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rate"):
        balance.ModalityDropout(rate=1.0)
    with pytest.raises(ValueError, match="even-length"):
        balance.ModalityDropout()([np.ones((1, 2), "float32")] * 3)


def test_modulation_coefficients_follow_the_ogm_formula():
    scores = np.array([0.9, 0.3, 0.3])
    got = balance.modulation_coefficients(scores, alpha=0.5).numpy()
    ratio = scores / np.array([0.3, 0.6, 0.6])
    want = 1 - np.tanh(0.5 * np.maximum(ratio - 1, 0))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[0] < 1 and got[1] == got[2] == 1


@pytest.mark.parametrize(
    "options",
    [
        {"modality_dropout": 0.3},
        {"modality_dropout": 0.3, "auxiliary_loss_weight": 0.5},
        {"auxiliary_loss_weight": 0.0, "gradient_modulation": "ogm_ge"},
    ],
    ids=["dropout", "dropout+aux", "ogm_ge"],
)
def test_balanced_training_trains_and_round_trips(options, av_data, tmp_path):
    train_ds, (x, _) = av_data
    model = _av_model(**options)
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(train_ds, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), "every weight (both encoders and the head) is trained"
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert getattr(loaded, "balance", None) == getattr(model, "balance", None)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    loaded.fit(train_ds.take(1), epochs=1, verbose=0)  # a reloaded model trains with the same options


def test_auxiliary_heads_are_not_outputs():
    model = _av_model(auxiliary_loss_weight=0.5)
    assert isinstance(model, balance.FusionModel)
    assert [h.name for h in model.auxiliary_heads] == ["image_aux_head", "audio_aux_head"]
    assert model.output.shape == (None, 10)


def test_balance_options_are_checked():
    with pytest.raises(ValueError, match="gradient_modulation"):
        _av_model(gradient_modulation="blend")
    with pytest.raises(ValueError, match="auxiliary_loss_weight"):
        _av_model(auxiliary_loss_weight=-1)
    with pytest.raises(ValueError, match="two or more branches"):
        mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")], modality_dropout=0.2)


def test_export_serves_a_request_with_a_modality_absent(av_data, tmp_path, capsys):
    """The exported model answers with the audio absent (empty string) exactly as the Keras model with audio zeros."""
    train_ds, (x, _) = av_data
    model = _av_model(modality_dropout=0.5)
    model.fit(train_ds, epochs=2, verbose=0)
    assert balance.optional_inputs(model) == ["audio", "image"]
    path = mmzoo.export(model, os.path.join(tmp_path, "export"), preprocessing="av_digits")
    served = tf.saved_model.load(path)  # no mmzoo needed to serve
    meta = mmzoo.serving.read_metadata(path)
    assert meta["inputs"]["audio"]["optional"] and meta["inputs"]["image"]["optional"]

    images = (x["image"][:4].numpy() * 255).round().astype("uint8")
    pngs = tf.constant([tf.io.encode_png(im).numpy() for im in images])
    wavs = tf.constant([tf.audio.encode_wav(w[:, None], 8000).numpy() for w in x["audio"][:4].numpy()])
    raw = served.signatures["serving_raw"](image=pngs, audio=tf.constant([b""] * 4))["probabilities"].numpy()
    keras_out = model.predict({"image": images.astype("float32") / 255.0, "audio": np.zeros((4, 4000), "float32")},
                              verbose=0)
    np.testing.assert_allclose(raw, keras_out, atol=1e-4)
    # Mixed: example 0 without image, the others with both.
    mixed = served.signatures["serving_raw"](image=tf.concat([[b""], pngs[1:]], 0), audio=wavs)["probabilities"]
    both = served.signatures["serving_raw"](image=pngs, audio=wavs)["probabilities"].numpy()
    np.testing.assert_allclose(mixed.numpy()[1:], both[1:], atol=1e-5)
    assert not np.allclose(mixed.numpy()[0], both[0], atol=1e-4)

    # `mmzoo predict` without --audio: the audio is absent, the answer the one above.
    png_path = os.path.join(tmp_path, "digit.png")
    with open(png_path, "wb") as f:
        f.write(pngs[0].numpy())
    assert cli.main(["predict", path, "--image", png_path, "--json"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "(audio absent)" in record["example"]
    assert record["predictions"][0]["class"] == recipe.CLASS_NAMES[int(raw[0].argmax())]


def test_a_model_without_modality_dropout_refuses_an_empty_input(av_data, tmp_path):
    _, (x, _) = av_data
    model = _av_model()
    path = mmzoo.export(model, os.path.join(tmp_path, "export"), preprocessing="av_digits")
    served = tf.saved_model.load(path)
    png = tf.io.encode_png((x["image"][0].numpy() * 255).astype("uint8"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="serving input `audio`"):
        served.signatures["serving_raw"](image=tf.stack([png]), audio=tf.constant([b""]))
