import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import augment, balance, splits


def test_class_weights_and_counts():
    assert balance.class_weights([0, 0, 0, 1]) == {0: 4 / 6, 1: 2.0}
    assert balance.class_weights([0, 2], num_classes=3)[1] == 0.0
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        balance.class_counts([0, 5], 2)


def test_rebalance_samples_classes_uniformly():
    labels = [0] * 90 + [1] * 10
    ds = tf.data.Dataset.from_tensor_slices(({"x": tf.zeros([100, 1])}, tf.constant(labels, tf.int32)))
    drawn = [int(y) for _, y in balance.rebalance(ds, labels, seed=0, num_examples=2000)]
    assert len(drawn) == 2000 and 0.45 < np.mean(drawn) < 0.55


def test_image_augmentation_is_seeded_and_keeps_range():
    image = tf.random.uniform((16, 16, 3), seed=1)
    fn = augment.image_augmentation(flip_up_down=True, crop_fraction=0.3, brightness=0.2, contrast=0.2, saturation=0.2)
    a, b = fn(image, tf.constant([1, 2])), fn(image, tf.constant([1, 2]))
    np.testing.assert_array_equal(a, b)
    assert a.shape == image.shape and float(tf.reduce_min(a)) >= 0 and float(tf.reduce_max(a)) <= 1
    assert not np.allclose(a, fn(image, tf.constant([3, 4])))
    flip = augment.image_augmentation(flip_left_right=True)
    outs = {tuple(flip(image, tf.constant([s, 0]))[0, 0].numpy()) for s in range(8)}
    assert outs == {tuple(image[0, 0].numpy()), tuple(image[0, -1].numpy())}


def test_audio_augmentation_and_spec_augment():
    wave = tf.ones((1000,))
    shifted = augment.audio_augmentation(max_shift=100)(wave, tf.constant([0, 1]))
    assert shifted.shape == (1000,) and 900 <= float(tf.reduce_sum(shifted)) <= 1000
    louder = augment.audio_augmentation(gain_db=12.0)(wave, tf.constant([5, 1]))
    assert float(louder[0]) != 1.0 and np.allclose(louder, louder[0])
    noisy = augment.audio_augmentation(noise_std=0.5)(wave, tf.constant([0, 2]))
    assert float(tf.math.reduce_std(noisy)) > 0
    masked = augment.spec_augment(time_masks=2, time_width=0.2)(wave, tf.constant([0, 3]))
    assert masked.shape == (1000,) and 600 <= float(tf.reduce_sum(masked)) < 1000
    spec = augment.spec_augment(time_masks=1, time_width=0.5, freq_masks=1, freq_width=0.5)(
        tf.ones((50, 40)), tf.constant([1, 1])
    )
    assert float(tf.reduce_sum(spec)) < 2000
    with pytest.raises(ValueError, match="gain_db"):
        augment.audio_augmentation(gain_db=-1)


def test_hash_split_is_stable_and_order_free():
    ids = [f"id{i}" for i in range(1000)]
    parts = splits.hash_split(ids, 0.2)
    assert 150 < len(parts["test"]) < 250 and not set(parts["test"]) & set(parts["train"])
    reordered = splits.hash_split(ids[::-1], 0.2)
    assert {ids[::-1][p] for p in reordered["test"]} == {ids[p] for p in parts["test"]}
    with pytest.raises(ValueError, match="repeats"):
        splits.hash_split(["a", "a"])
    with pytest.raises(ValueError, match="test_fraction"):
        splits.split_of("a", 1.5)
