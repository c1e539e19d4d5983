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


def test_audio_gain_is_drawn_per_example_in_the_db_range_and_seeded():
    wave = tf.sin(tf.linspace(0.0, 300.0, 1000))
    fn = augment.audio_augmentation(gain_db=20.0)
    gains_db = [
        20 * np.log10(float(tf.reduce_max(tf.abs(fn(wave, tf.constant([s, 0]))))) / float(tf.reduce_max(tf.abs(wave))))
        for s in range(40)
    ]
    assert all(-20.0 - 1e-3 <= g <= 20.0 + 1e-3 for g in gains_db)
    # Both louder and quieter draws (40 uniform draws: P(none below -5 dB) = (25/40) ** 40 < 1e-8).
    assert min(gains_db) < -5 and max(gains_db) > 5 and len({round(g, 4) for g in gains_db}) == 40
    np.testing.assert_array_equal(fn(wave, tf.constant([3, 0])), fn(wave, tf.constant([3, 0])))
    # In a pipeline every example gets its own gain, the same again with the same seed.
    ds = tf.data.Dataset.from_tensor_slices({"audio": tf.tile(wave[None], [8, 1])})

    def peaks(seed):
        out = augment.apply_augmentation(ds, {"audio": fn}, seed=seed)
        return [round(float(tf.reduce_max(tf.abs(x["audio"]))), 6) for x in out]

    assert len(set(peaks(0))) == 8 and peaks(0) == peaks(0) != peaks(1)


def test_audio_noise_at_a_snr_follows_the_clip_level():
    wave = tf.sin(tf.linspace(0.0, 300.0, 4000))
    fn = augment.audio_augmentation(snr_db=(10.0, 10.0))
    for level in (1.0, 0.01):
        clip = level * wave
        noise = fn(clip, tf.constant([7, 1])) - clip
        snr = 10 * np.log10(float(tf.reduce_mean(clip**2)) / float(tf.reduce_mean(noise**2)))
        assert abs(snr - 10.0) < 0.5  # 4,000 noise samples: the measured power is within ~5% of the drawn one
    # The noise scales with the clip: the same seed on a 40 dB quieter clip gives the same waveform, scaled.
    np.testing.assert_allclose(
        fn(0.01 * wave, tf.constant([7, 1])), 0.01 * fn(wave, tf.constant([7, 1])), rtol=1e-4, atol=1e-7
    )
    ranged = augment.audio_augmentation(snr_db=(0.0, 30.0))
    snrs = []
    for s in range(20):
        noise = ranged(wave, tf.constant([s, 2])) - wave
        snrs.append(10 * np.log10(float(tf.reduce_mean(wave**2)) / float(tf.reduce_mean(noise**2))))
    assert min(snrs) > -0.5 and max(snrs) < 30.5 and max(snrs) - min(snrs) > 10
    assert not np.any(augment.audio_augmentation(snr_db=(0.0, 10.0))(tf.zeros(100), tf.constant([0, 0])))
    for bad in ((10.0,), (20.0, 10.0), (-50.0, 0.0), "10", (True, 5.0)):
        with pytest.raises(ValueError, match="snr_db"):
            augment.audio_augmentation(snr_db=bad)
