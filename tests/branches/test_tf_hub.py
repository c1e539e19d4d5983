"""TF Hub branches through mmzoo.layers.HubLayer, on TF2 SavedModels the tests write (no network)."""

import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, heads
from mmzoo.layers import HubLayer

SEQ = 6
VOCAB = 50
SAMPLES = 64


def _save(path, call, specs, variables, trainable_variables, extra=None):
    """Saves ``call`` as a Reusable SavedModel (``__call__`` traced for training True and False)."""
    obj = tf.train.Checkpoint()
    obj.tracked = list(variables)
    for training in (True, False):
        call.get_concrete_function(specs, training=training)
    obj.__call__ = call
    obj.variables = list(variables)
    obj.trainable_variables = list(trainable_variables)
    for key, value in (extra or {}).items():
        setattr(obj, key, value)
    tf.saved_model.save(obj, str(path))
    return str(path)


def _image_encoder(path):
    w = tf.Variable(tf.random.stateless_normal([3, 4], seed=(1, 2)), name="dense/kernel")
    mean = tf.Variable(tf.fill([4], 0.1), trainable=False, name="moving_mean")

    @tf.function
    def call(images, training=False):
        y = tf.tanh(tf.reduce_mean(images, axis=[1, 2]) @ w) - mean
        return y * 0.5 if training else y

    return _save(path, call, tf.TensorSpec([None, 8, 8, 3], tf.float32), [w, mean], [w])


def _audio_encoder(path):
    """Like YAMNet: one unbatched waveform in, (scores, frame embeddings) out."""
    w = tf.Variable(tf.random.stateless_normal([16, 4], seed=(3, 4)), name="frames/kernel")
    mean = tf.Variable(tf.fill([4], 0.1), trainable=False, name="moving_mean")

    @tf.function
    def call(waveform, training=False):
        frames = tf.reshape(waveform, [-1, 16])
        embeddings = tf.tanh(frames @ w) - mean
        embeddings = embeddings * 0.5 if training else embeddings
        return tf.nn.softmax(embeddings), embeddings

    return _save(path, call, tf.TensorSpec([None], tf.float32), [w, mean], [w])


def _text_encoder(path):
    """Like TF Hub BERT: a dict of word ids, mask and type ids in, pooled and sequence outputs out."""
    table = tf.Variable(tf.random.stateless_normal([VOCAB, 4], seed=(5, 6)), name="embeddings")
    w = tf.Variable(tf.random.stateless_normal([4, 4], seed=(7, 8)), name="pooler/kernel")
    mean = tf.Variable(tf.fill([4], 0.1), trainable=False, name="moving_mean")
    specs = {k: tf.TensorSpec([None, SEQ], tf.int32) for k in ("input_word_ids", "input_mask", "input_type_ids")}

    @tf.function
    def call(inputs, training=False):
        mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
        sequence = tf.gather(table, inputs["input_word_ids"] + inputs["input_type_ids"]) * mask - mean
        sequence = sequence * 0.5 if training else sequence
        return {"pooled_output": tf.tanh(sequence[:, 0] @ w), "sequence_output": sequence}

    return _save(path, call, specs, [table, w, mean], [table, w])


def _text_preprocessor(path):
    """Strings -> BERT-style dict: hashed words, padded to SEQ."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def call(texts):
        words = tf.strings.split(tf.strings.lower(texts))
        ids = tf.cast(tf.strings.to_hash_bucket_fast(words, VOCAB - 1) + 1, tf.int32)
        ids = ids.to_tensor(0, shape=[None, SEQ])
        return {"input_word_ids": ids, "input_mask": tf.cast(ids > 0, tf.int32), "input_type_ids": tf.zeros_like(ids)}

    obj = tf.train.Checkpoint()
    obj.__call__ = call
    tf.saved_model.save(obj, str(path))
    return str(path)


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    return {
        "image": _image_encoder(root / "image"),
        "audio": _audio_encoder(root / "audio"),
        "text": _text_encoder(root / "text"),
        "preprocessor": _text_preprocessor(root / "preprocess"),
    }


def _branch(kind, hub_dir, trainable):
    if kind == "image":
        return branches.image_tf_hub(hub_dir["image"], (8, 8, 3), trainable=trainable)
    if kind == "audio":
        return branches.audio_tf_hub(hub_dir["audio"], SAMPLES, output_key=1, trainable=trainable)
    return branches.text_tf_hub(
        hub_dir["text"], SEQ, preprocessor_handle=hub_dir["preprocessor"], trainable=trainable
    )


def _batch(kind, n=4):
    rng = np.random.default_rng(0)
    if kind == "image":
        return rng.uniform(size=(n, 8, 8, 3)).astype("float32")
    if kind == "audio":
        return rng.uniform(-1, 1, size=(n, SAMPLES)).astype("float32")
    return rng.integers(1, VOCAB - 1, size=(n, SEQ)).astype("int32")


def _model(branch):
    return mmzoo.compose([branch], head=heads.multiclass(3), hidden=(4,), learning_rate=0.05)


def _hub_weights(model):
    return [w for layer in model.layers if isinstance(layer, HubLayer) for w in layer.weights]


@pytest.mark.parametrize("kind", ["image", "audio", "text"])
def test_trainable_hub_branch_fine_tunes_and_exports(kind, hub_dir, tmp_path):
    keras.utils.set_random_seed(0)
    branch = _branch(kind, hub_dir, trainable=True)
    model = _model(branch)
    hub_weights = _hub_weights(model)
    trainable_ids = {id(w) for w in model.trainable_weights}
    assert sum(id(w) in trainable_ids for w in hub_weights) == (2 if kind == "text" else 1)
    assert not any(id(w) in trainable_ids for w in hub_weights if "moving_mean" in w.name)
    x, y = {kind: _batch(kind)}, np.array([0, 1, 2, 1])
    before = [w.numpy().copy() for w in hub_weights]
    model.train_on_batch(x, y)
    changed = [not np.allclose(a, w.numpy()) for a, w in zip(before, hub_weights)]
    assert changed == [w.trainable for w in hub_weights]

    expected = model.predict(x, verbose=0)
    mmzoo.export(model, str(tmp_path / "export"))
    reloaded = tf.saved_model.load(str(tmp_path / "export"))
    served = reloaded.signatures["serving_default"](**{kind: tf.constant(x[kind])})["probabilities"]
    np.testing.assert_allclose(served.numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["image", "audio", "text"])
def test_frozen_hub_branch_keeps_weights_and_trains_head(kind, hub_dir):
    model = _model(_branch(kind, hub_dir, trainable=False))
    hub_weights = _hub_weights(model)
    trainable_ids = {id(w) for w in model.trainable_weights}
    assert hub_weights and not any(id(w) in trainable_ids for w in hub_weights)
    before = [w.numpy().copy() for w in hub_weights]
    head_before = model.get_layer("head_dense1").kernel.numpy().copy()
    model.train_on_batch({kind: _batch(kind)}, np.array([0, 1, 2, 1]))
    for a, w in zip(before, hub_weights):
        np.testing.assert_array_equal(a, w.numpy())
    assert not np.allclose(head_before, model.get_layer("head_dense1").kernel.numpy())


def test_training_flag_reaches_the_saved_model_only_when_trainable(hub_dir):
    x = tf.constant(_batch("image"))
    module = tf.saved_model.load(hub_dir["image"])
    trainable = HubLayer(hub_dir["image"], trainable=True)
    frozen = HubLayer(hub_dir["image"], trainable=False)
    assert trainable.accepts_training
    np.testing.assert_allclose(trainable(x, training=True), module(x, training=True), rtol=1e-6)
    np.testing.assert_allclose(trainable(x, training=False), module(x, training=False), rtol=1e-6)
    np.testing.assert_allclose(frozen(x, training=True), module(x, training=False), rtol=1e-6)


def test_hub_layer_config_round_trip_and_safe_mode(hub_dir):
    layer = HubLayer(hub_dir["text"], output_key="pooled_output", name="enc")
    config = layer.get_config()
    assert config["handle"] == hub_dir["text"] and config["output_key"] == "pooled_output"
    with pytest.raises(ValueError, match="safe mode"):
        HubLayer.from_config(config)
    clone = HubLayer.from_config(config, safe_mode=False)
    ids = {
        "input_word_ids": tf.constant(_batch("text")),
        "input_mask": tf.ones([4, SEQ], tf.int32),
        "input_type_ids": tf.zeros([4, SEQ], tf.int32),
    }
    np.testing.assert_allclose(clone(ids), layer(ids), rtol=1e-6)


def test_text_preprocessor_runs_in_tf_data(hub_dir):
    text = _branch("text", hub_dir, trainable=False)
    model = _model(text)
    raw = tf.data.Dataset.from_tensor_slices(({"text": ["a grinning face", "red heart", "flag"]}, [0, 1, 2]))
    ds = branches.apply_preprocessors(raw.batch(3), [text])
    features, _ = next(iter(ds))
    assert features["text"].dtype == tf.int32 and features["text"].shape == (3, SEQ)
    assert features["text"].numpy()[0, 2] > 0 and features["text"].numpy()[2, 1] == 0
    assert model.predict(ds, verbose=0).shape == (3, 3)
    with pytest.raises(ValueError, match="sequence_length=6"):
        branches.text_tf_hub(hub_dir["text"], 7, preprocessor_handle=hub_dir["preprocessor"])


def test_text_mean_pooling_over_sequence_output(hub_dir):
    text = branches.text_tf_hub(hub_dir["text"], SEQ, reduction="avg")
    assert text.features.shape == (None, 4)
    ids = _batch("text", 2)
    ids[:, 3:] = 0
    out = text.encoder()(ids)
    module = tf.saved_model.load(hub_dir["text"])
    seq = module({"input_word_ids": ids, "input_mask": (ids > 0).astype("int32"),
                  "input_type_ids": np.zeros_like(ids)}, training=False)["sequence_output"]
    np.testing.assert_allclose(out, seq.numpy()[:, :3].mean(axis=1), rtol=1e-5)


def test_bad_handles_fail_fast_with_clear_errors(hub_dir, tmp_path):
    with pytest.raises(ValueError, match="handle="):
        branches.image_tf_hub(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="output_key"):
        branches.text_tf_hub(hub_dir["text"], SEQ, output_key="nope")
    with pytest.raises(ValueError, match="reduction"):
        branches.image_tf_hub(hub_dir["image"], (8, 8, 3), reduction="median")
    url = "http://127.0.0.1:9/no_network/model.tar.gz"
    start = time.monotonic()
    with pytest.raises(ConnectionError, match="127.0.0.1:9/no_network") as error:
        branches.image_tf_hub(url, (8, 8, 3))
    assert "pass its path as the handle" in str(error.value)
    assert time.monotonic() - start < 30


def test_sequence_length_must_match_the_encoder(hub_dir):
    with pytest.raises(ValueError, match="sequence_length=9"):
        branches.text_tf_hub(hub_dir["text"], 9)
