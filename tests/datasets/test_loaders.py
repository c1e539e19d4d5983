import numpy as np
import pytest
import tensorflow as tf

import mmzoo
from mmzoo import branches, heads
from mmzoo.data import splits
from mmzoo.datasets import emoji


@pytest.fixture(scope="module")
def groups(data_dir):
    return mmzoo.datasets.emoji_groups(data_dir, batch_size=16, sequence_length=12, with_info=True)


def test_emoji_groups_shapes_split_and_training(groups, data_dir):
    train_ds, _, info = groups
    x, y = next(iter(train_ds))
    assert x["image"].shape == (16, 72, 72, 3) and x["image"].dtype == tf.float32
    assert x["text"].shape == (16, 12) and x["text"].dtype == tf.int32
    assert y.dtype == tf.int32 and int(tf.reduce_min(y)) >= 0 and int(tf.reduce_max(y)) < 11
    assert float(tf.reduce_min(x["image"])) >= 0.0 and float(tf.reduce_max(x["image"])) <= 1.0
    assert len(info.class_names) == 11 and info.num_train + info.num_test == 2073
    manifests = emoji.openmoji_manifests(data_dir)
    train_ids = {r["hexcode"] for r in manifests["train"].records}
    test_ids = {r["hexcode"] for r in manifests["test"].records}
    assert not train_ids & test_ids and len(test_ids) == info.num_test
    assert all(splits.split_of(h) == "test" for h in test_ids)
    model = mmzoo.compose(
        [
            branches.image_cnn((72, 72, 3), filters=(8,)),
            branches.text_embedding(sequence_length=12, vocabulary_size=info.vocabulary_size),
        ],
        head=heads.multiclass(11),
    )
    history = model.fit(train_ds.take(1), epochs=1, verbose=0, class_weight=info.class_weights)
    assert np.isfinite(history.history["loss"][0])


def test_emoji_retrieval_pairs_and_dual_encoder(data_dir):
    import keras

    train_ds, test_ds, info = mmzoo.datasets.emoji_retrieval(data_dir, batch_size=8, sequence_length=8, with_info=True)
    x, y = next(iter(test_ds))
    assert x["image"].shape == (8, 72, 72, 3) and x["text"].shape == (8, 8)
    assert y.numpy().tolist() == list(range(8))
    image = branches.image_cnn((72, 72, 3), filters=(8,))
    text = branches.text_embedding(sequence_length=8, vocabulary_size=info.vocabulary_size)
    a = keras.layers.UnitNormalization()(keras.layers.Dense(16)(image.features))
    b = keras.layers.UnitNormalization()(keras.layers.Dense(16)(text.features))
    logits = keras.layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) * 10.0)([a, b])
    model = keras.Model({"image": image.input, "text": text.input}, logits)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(train_ds.take(1), verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_av_digits_full_size(data_dir):
    train_ds, test_ds = mmzoo.datasets.av_digits(batch_size=50, data_dir=str(data_dir), shuffle=False)
    x, y = next(iter(train_ds))
    assert x["image"].shape == (50, 28, 28, 1) and x["audio"].shape == (50, 4000)
    assert x["image"].dtype == tf.float32 and y.dtype == tf.int32
    assert sum(len(y) for _, y in test_ds) == 250 and sum(len(y) for _, y in train_ds) == 4500  # degraded + clean copy
    arrays = mmzoo.datasets.load_full_arrays(data_dir)
    assert not set(arrays["train_ids"]) & set(arrays["test_ids"])
    model = mmzoo.compose(
        [branches.image_cnn((28, 28, 1), filters=(8,)), branches.audio_conv1d(num_samples=4000, filters=(8,))],
        head=heads.multiclass(10),
    )
    assert np.isfinite(model.fit(train_ds.take(1), verbose=0).history["loss"][0])


def test_data_dir_resolution(tmp_path, monkeypatch, data_dir):
    monkeypatch.setenv("MMZOO_DATA", str(data_dir))
    assert mmzoo.data.resolve_data_dir() == str(data_dir)
    assert mmzoo.data.resolve_data_dir(tmp_path) == str(tmp_path)
    monkeypatch.delenv("MMZOO_DATA")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert mmzoo.data.resolve_data_dir() == str(tmp_path / "shared" / "data")
    with pytest.raises(FileNotFoundError, match="openmoji"):
        mmzoo.datasets.emoji_groups()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mmzoo.data.resolve_data_dir(tmp_path / "nope")


def test_openmoji_loaders_put_everything_in_train_with_test_fraction_zero(data_dir):
    manifests = emoji.openmoji_manifests(data_dir, test_fraction=0)
    assert len(manifests["train"]) == 2073 and len(manifests["test"]) == 0
    train_ds, test_ds = emoji.emoji_groups(data_dir, test_fraction=0, batch_size=512)
    assert test_ds is None and sum(int(y.shape[0]) for _, y in train_ds) == 2073
