"""``mmzoo.training.adapt``: AdaBN and cross-modal adaptation on a real new voice."""

import keras
import numpy as np
import pytest

import mmzoo
from mmzoo import branches, heads
from mmzoo.datasets import av_digits_recipe as recipe
from mmzoo.training.adapt import adapt_batch_norm, batch_norm_layers, cross_modal_adapt


def _recordings(data_dir, speaker, n=40):
    paths = sorted((data_dir / "fsdd" / "recordings").glob(f"*_{speaker}_*.wav"))[:n]
    waves = np.stack([recipe.fit_waveform(recipe.read_wav_int16(str(p))[0]) for p in paths])
    labels = np.array([recipe.parse_fsdd_name(p.name)[0] for p in paths])
    return waves, labels


@pytest.fixture(scope="module")
def trained():
    """An audio + image model trained briefly on the embedded AV-digits."""
    keras.utils.set_random_seed(0)
    audio = branches.audio_spectrogram_cnn(4000, 8000, filters=(8, 16), reduction="flatten")
    image = branches.image_cnn((28, 28, 1), filters=(8,), name="image")
    model = mmzoo.compose([image, audio], head=heads.multiclass(10), hidden=(16,))
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=32)
    model.fit(train_ds.take(10), epochs=1, verbose=0)
    return model


def test_adapt_sets_exact_statistics_of_a_new_voice_and_nothing_else(trained, data_dir, tmp_path):
    """The statistics become the new speaker's (exactly, in any batch size); weights and gamma/beta stay."""
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    waves, _ = _recordings(data_dir, "jackson")
    layer = model.get_layer("audio_spec_norm")
    assert batch_norm_layers(model) == [layer]
    before = {w.path: w.numpy() for w in model.weights}
    probe = {"image": np.zeros((len(waves), 28, 28, 1), "float32"), "audio": waves}
    answer_before = model.predict(probe, verbose=0)

    spectra = np.asarray(keras.Model(model.input["audio"], layer.input)(waves), np.float64)
    assert adapt_batch_norm(model, {"audio": waves}, batch_size=7) == {"audio_spec_norm": len(waves)}
    np.testing.assert_allclose(layer.moving_mean.numpy(), spectra.mean(axis=(0, 1)), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_variance.numpy(), spectra.var(axis=(0, 1)), rtol=1e-3, atol=1e-4)
    adapted_mean = layer.moving_mean.numpy()
    adapt_batch_norm(model, {"audio": waves}, batch_size=1000)  # one batch: the same statistics
    np.testing.assert_allclose(layer.moving_mean.numpy(), adapted_mean, rtol=1e-4, atol=1e-5)
    # A new voice's spectra are not centred by the training statistics: adapting moves them.
    assert np.abs(layer.moving_mean.numpy() - before[layer.moving_mean.path]).max() > 0.05
    for w in model.weights:
        if w.path not in (layer.moving_mean.path, layer.moving_variance.path):
            np.testing.assert_array_equal(w.numpy(), before[w.path])
    adapted_answer = model.predict(probe, verbose=0)
    assert np.abs(adapted_answer - answer_before).max() > 1e-3

    path = str(tmp_path / "adapted.keras")  # the adapted statistics are the model's: they save and reload
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(probe, verbose=0), adapted_answer, atol=1e-6)


def test_adapt_takes_a_dataset_with_labels(trained, data_dir):
    import tensorflow as tf

    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    waves, labels = _recordings(data_dir, "lucas", n=24)
    dataset = tf.data.Dataset.from_tensor_slices(({"audio": waves}, labels)).batch(5)
    assert adapt_batch_norm(model, dataset) == {"audio_spec_norm": 24}
    spectra = np.asarray(keras.Model(model.input["audio"], model.get_layer("audio_spec_norm").input)(waves))
    np.testing.assert_allclose(model.get_layer("audio_spec_norm").moving_mean.numpy(), spectra.mean(axis=(0, 1)),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"inputs": [np.zeros((4, 4000))]}, "`inputs` must be a dict"),
        ({"inputs": {"audio": np.zeros((0, 4000), "float32")}}, "no example"),
        ({"inputs": {"image": np.zeros((4, 28, 28, 1), "float32")}}, "holds none of the inputs"),
        ({"inputs": {"image": np.zeros((4, 28, 28, 1), "float32")}, "layers": "audio_spec_norm"},
         "lacks \\['audio'\\]"),
        ({"layers": ["image_bn"]}, "`layers` names no BatchNormalization layer.*image_bn"),
        ({"batch_size": 0}, "`batch_size`"),
        ({"inputs": {"audio": np.zeros((4, 4000)), "image": np.zeros((3, 28, 28, 1))}}, "one length"),
    ],
)
def test_adapt_rejects_bad_arguments(trained, kwargs, match):
    arguments = {"inputs": {"audio": np.zeros((4, 4000), "float32")}, **kwargs}
    with pytest.raises(ValueError, match=match):
        adapt_batch_norm(trained, **arguments)


def test_adapt_refuses_models_it_cannot_adapt():
    inputs = keras.Input((3,), name="x")
    with pytest.raises(ValueError, match="no BatchNormalization"):
        adapt_batch_norm(keras.Model(inputs, keras.layers.Dense(2)(inputs)), {"x": np.zeros((2, 3))})
    inner = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(name="inner_bn")], name="inner")
    with pytest.raises(ValueError, match="'inner' .* BatchNormalization layers of its own"):
        adapt_batch_norm(keras.Model(inputs, inner(inputs)), {"x": np.zeros((2, 3))})


# ----------------------------------------------------------------------------------- cross_modal_adapt


def _new_voice_pairs(data_dir, speaker="jackson", takes=4):
    """``takes`` recordings of each digit by ``speaker``, each paired with an MNIST image of that digit."""
    paths = [data_dir / "fsdd" / "recordings" / f"{d}_{speaker}_{i}.wav" for d in range(10) for i in range(takes)]
    waves = np.stack([recipe.fit_waveform(recipe.read_wav_int16(str(p))[0]) for p in paths])
    labels = np.repeat(np.arange(10), takes)
    images, image_labels = recipe.read_mnist(str(data_dir / "mnist"))
    chosen = recipe.pair_images(labels, image_labels, np.arange(1, len(image_labels), 2))
    return {"audio": waves, "image": images[chosen].astype("float32")[..., None] / 255.0}, labels


@pytest.fixture(scope="module")
def audio_and_image_models():
    """An audio model (the student) and an image model (the teacher), each trained alone on the embedded data."""
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=32)
    models = {}
    for name, branch in (("audio", lambda: branches.audio_spectrogram_cnn(4000, 8000, filters=(8, 16),
                                                                          reduction="flatten")),
                         ("image", lambda: branches.image_cnn((28, 28, 1), filters=(16, 32), reduction="flatten",
                                                              name="image"))):
        keras.utils.set_random_seed(0)
        model = mmzoo.compose([branch()], head=heads.multiclass(10), hidden=(32,))
        only = train_ds.map(lambda x, y, n=name: ({n: x[n]}, y))
        model.fit(only.take(20) if name == "audio" else only, epochs=2 if name == "audio" else 3, verbose=0)
        models[name] = model
    return models


def test_cross_modal_adapt_fine_tunes_the_student_on_the_teachers_confident_labels(audio_and_image_models, data_dir):
    """Only the examples the teacher is sure of are used, with its labels, and the student learns them."""
    student, teacher = audio_and_image_models["audio"], audio_and_image_models["image"]
    student = keras.models.clone_model(student)
    student.set_weights(audio_and_image_models["audio"].get_weights())
    pairs, labels = _new_voice_pairs(data_dir)
    probabilities = teacher.predict({"image": pairs["image"]}, verbose=0)
    threshold = 0.8
    expected = np.flatnonzero(probabilities.max(1) >= threshold)
    assert 10 <= len(expected) < len(labels), "the teacher should be sure of some, not all, of these pairs"
    pseudo = probabilities.argmax(1)[expected]
    agreement_before = (student.predict({"audio": pairs["audio"][expected]}, verbose=0).argmax(1) == pseudo).mean()

    train_ds, _ = mmzoo.datasets.av_digits(batch_size=256, shuffle=False)
    replay_x, replay_y = next(iter(train_ds))
    replay = ({"audio": replay_x["audio"].numpy()}, replay_y.numpy())
    report = cross_modal_adapt(student, teacher, pairs, labeled=replay, threshold=threshold, rounds=1)
    assert report["selected"] == len(expected) and report["examples"] == len(labels)
    np.testing.assert_array_equal(report["positions"], expected)
    np.testing.assert_array_equal(report["labels"], pseudo)
    np.testing.assert_allclose(report["confidence"], probabilities.max(1), rtol=1e-5, atol=1e-6)
    assert len(report["history"]["loss"]) == 5  # the default epochs
    agreement_after = (student.predict({"audio": pairs["audio"][expected]}, verbose=0).argmax(1) == pseudo).mean()
    print(f"agreement with the teacher on {len(expected)} pairs: {agreement_before:.2f} -> {agreement_after:.2f}")
    assert agreement_after > agreement_before + 0.2
    # The teacher is untouched.
    np.testing.assert_allclose(teacher.predict({"image": pairs["image"]}, verbose=0), probabilities, atol=1e-6)

    # A second round labels with both models: the student now knows the voice, so more pairs pass the threshold.
    student.set_weights(audio_and_image_models["audio"].get_weights())
    report = cross_modal_adapt(student, teacher, pairs, labeled=replay, threshold=threshold, rounds=2)
    first, second = report["rounds"]
    print(f"pairs selected in rounds 1 and 2: {first['selected']}, {second['selected']}")
    assert first["selected"] == len(expected) and second["selected"] == report["selected"]
    assert second["selected"] > first["selected"]
    assert (report["confidence"][report["positions"]] >= threshold).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"threshold": 0}, "`threshold` must be a probability"),
        ({"threshold": 1.5}, "`threshold` must be a probability"),
        ({"epochs": 0}, "`epochs` must be a positive integer"),
        ({"rounds": 0}, "`rounds` must be a positive integer"),
        ({"repeat": 2.5}, "`repeat` must be a positive integer"),
        ({"learning_rate": -1.0}, "`learning_rate` must be positive"),
        ({"inputs": {"audio": np.zeros((4, 4000), "float32")}}, "`inputs` lacks \\['image'\\]"),
        ({"inputs": [np.zeros((4, 4000))]}, "`inputs` must be a dict"),
        ({"inputs": {"audio": np.zeros((4, 4000)), "image": np.zeros((3, 28, 28, 1))}}, "one length"),
        ({"inputs": {"audio": np.zeros((0, 4000)), "image": np.zeros((0, 28, 28, 1))}}, "no example"),
        ({"labeled": ({"audio": np.zeros((4, 4000), "float32")}, np.zeros(3))}, "4 examples but 3 labels"),
        ({"labeled": {"audio": np.zeros((4, 4000))}}, "`labeled` must be a tuple"),
        ({"labeled": ({"image": np.zeros((4, 28, 28, 1))}, np.zeros(4))}, "`labeled\\[0\\]` lacks \\['audio'\\]"),
    ],
)
def test_cross_modal_adapt_rejects_bad_arguments(audio_and_image_models, kwargs, match):
    arguments = {"inputs": {"audio": np.zeros((4, 4000), "float32"), "image": np.zeros((4, 28, 28, 1), "float32")},
                 "threshold": 0.01, **kwargs}
    with pytest.raises(ValueError, match=match):
        cross_modal_adapt(audio_and_image_models["audio"], audio_and_image_models["image"], **arguments)


def test_cross_modal_adapt_says_how_sure_the_teacher_was_when_it_is_never_sure_enough(audio_and_image_models):
    keras.utils.set_random_seed(0)
    untrained = mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")],
                              head=heads.multiclass(10))
    inputs = {"audio": np.zeros((4, 4000), "float32"), "image": np.zeros((4, 28, 28, 1), "float32")}
    with pytest.raises(ValueError, match="No example of `inputs` reaches threshold=0.99: the teacher's highest "
                                         "confidence is 0\\.[0-9]{3}"):
        cross_modal_adapt(audio_and_image_models["audio"], untrained, inputs, threshold=0.99)


def test_cross_modal_adapt_refuses_models_without_matching_multiclass_heads(audio_and_image_models):
    audio = audio_and_image_models["audio"]
    image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
    inputs = {"audio": np.zeros((4, 4000), "float32"), "image": np.zeros((4, 28, 28, 1), "float32")}
    with pytest.raises(ValueError, match="`teacher` predicts 3 classes but `student` 10"):
        cross_modal_adapt(audio, mmzoo.compose([image], head=heads.multiclass(3)), inputs)
    binary = mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")], head=heads.binary())
    with pytest.raises(ValueError, match="`teacher` must end in a multiclass head.*'binary'"):
        cross_modal_adapt(audio, binary, inputs)
    plain_input = keras.Input((4000,), name="audio")
    with pytest.raises(ValueError, match="`student`: `model` .* has no mmzoo head"):
        cross_modal_adapt(keras.Model(plain_input, keras.layers.Dense(10)(plain_input)), image_model(), inputs)


def test_cross_modal_adapt_on_a_late_fusion_models_branches_adapts_the_fused_model():
    from mmzoo import fusion
    from mmzoo.training import ensemble

    keras.utils.set_random_seed(0)
    model = mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image"),
                           branches.audio_spectrogram_cnn(4000, 8000, filters=(4,), name="audio")],
                          fusion=fusion.late("weighted"), head=heads.multiclass(10))
    rng = np.random.default_rng(0)
    inputs = {"audio": rng.normal(0, 0.1, (8, 4000)).astype("float32"),
              "image": rng.uniform(0, 1, (8, 28, 28, 1)).astype("float32")}
    before = model.predict(inputs, verbose=0)
    image_weights = [w.numpy() for w in model.get_layer("image_logits").weights]
    alone = ensemble.branch_models(model)
    report = cross_modal_adapt(alone["audio"], alone["image"], inputs, threshold=0.01, rounds=1, epochs=1)
    assert report["selected"] == 8
    assert np.abs(model.predict(inputs, verbose=0) - before).max() > 1e-4  # the fused model's audio branch moved
    for kept, now in zip(image_weights, model.get_layer("image_logits").weights):
        np.testing.assert_array_equal(now.numpy(), kept)  # the teacher's layers did not


def image_model():
    return mmzoo.compose([branches.image_cnn((28, 28, 1), filters=(4,), name="image")], head=heads.multiclass(10))
