"""Training-only augmentation hooks, per modality, with stateless random ops.

Each factory returns ``fn(x, seed) -> x`` for one example, where ``seed`` is
a ``(2,)`` int tensor: the same seed gives the same result, so a pipeline
built with ``seed=...`` is reproducible. Pass them to ``make_dataset`` (or a
loader's ``augment=True``) for the training split only; evaluation data is
never augmented.

Example:

>>> from mmzoo.data import AudioColumn, ImageColumn, from_lists, make_dataset, resolve_data_dir
>>> from mmzoo.data.augment import audio_augmentation, image_augmentation
>>> manifest = from_lists(
...     image=["openmoji/images/1F600.png", "openmoji/images/1F601.png"],
...     audio=["fsdd/recordings/0_george_0.wav", "fsdd/recordings/0_george_1.wav"],
...     base_dir=resolve_data_dir(),
... )
>>> features = {"image": ImageColumn("image", (72, 72, 3)), "audio": AudioColumn("audio", 8000, 4000)}
>>> augment = {"image": image_augmentation(flip_left_right=True, brightness=0.1),
...            "audio": audio_augmentation(gain_db=6.0, noise_std=0.01, max_shift=400)}
>>> ds = make_dataset(manifest, features, augment=augment, batch_size=2, seed=0)
>>> batch = next(iter(ds))
>>> batch["image"].shape, batch["audio"].shape
(TensorShape([2, 72, 72, 3]), TensorShape([2, 4000]))
"""

from __future__ import annotations

import tensorflow as tf


def _check_range(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"`{name}` must be a number in [{low}, {high}]. Received: {name}={value!r}")
    return float(value)


def _seeds(seed, n):
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=n)


def image_augmentation(
    flip_left_right=True, flip_up_down=False, crop_fraction=0.0, brightness=0.0, contrast=0.0, saturation=0.0
):
    """Random flips, crop-and-resize and colour jitter for float images in [0, 1].

    Args:
        flip_left_right: Mirror horizontally with probability 0.5.
        flip_up_down: Flip vertically with probability 0.5.
        crop_fraction: Up to this fraction of height/width is cut off (a
            random crop, resized back); 0 disables.
        brightness: Max absolute brightness shift.
        contrast: Contrast factor drawn from ``[1 - contrast, 1 + contrast]``.
        saturation: Saturation factor range (RGB images only).

    Returns:
        ``fn(image, seed) -> image`` keeping shape and the [0, 1] range.

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> fn = image_augmentation(brightness=0.1)
    >>> fn(tf.zeros((8, 8, 3)), tf.constant([1, 2])).shape
    TensorShape([8, 8, 3])
    """
    crop_fraction = _check_range("crop_fraction", crop_fraction, 0.0, 0.9)
    brightness = _check_range("brightness", brightness, 0.0, 1.0)
    contrast = _check_range("contrast", contrast, 0.0, 1.0)
    saturation = _check_range("saturation", saturation, 0.0, 1.0)

    def augment(image, seed):
        s = _seeds(seed, 6)
        if flip_left_right:
            image = tf.image.stateless_random_flip_left_right(image, s[0])
        if flip_up_down:
            image = tf.image.stateless_random_flip_up_down(image, s[1])
        if crop_fraction > 0:
            h, w, c = image.shape
            keep = tf.random.stateless_uniform([], s[2], 1.0 - crop_fraction, 1.0)
            size = [tf.cast(keep * h, tf.int32), tf.cast(keep * w, tf.int32), c]
            image = tf.image.stateless_random_crop(image, tf.stack(size), s[3])
            image = tf.image.resize(image[None], (h, w))[0]
        if brightness > 0:
            image = tf.image.stateless_random_brightness(image, brightness, s[4])
        if contrast > 0:
            image = tf.image.stateless_random_contrast(image, 1.0 - contrast, 1.0 + contrast, s[5])
        if saturation > 0 and image.shape[-1] == 3:
            image = tf.image.stateless_random_saturation(image, 1.0 - saturation, 1.0 + saturation, s[5][::-1])
        return tf.clip_by_value(image, 0.0, 1.0)

    return augment


def _check_snr_range(snr_db):
    if snr_db is None:
        return None
    try:
        low, high = snr_db
    except (TypeError, ValueError):
        low = high = None
    if (
        any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high))
        or not -40.0 <= low <= high <= 100.0
    ):
        raise ValueError(
            f"`snr_db` must be None or a (low, high) pair of decibels with -40 <= low <= high <= 100. "
            f"Received: snr_db={snr_db!r}"
        )
    return float(low), float(high)


def audio_augmentation(gain_db=0.0, noise_std=0.0, max_shift=0, snr_db=None):
    """Random gain, additive white noise and circular-free time shift for waveforms.

    Each call (one example) draws its own gain, noise and shift from
    ``seed``: the same seed gives the same waveform, another seed another
    draw. The gain is uniform in decibels, ``g = 10 ** (U(-gain_db, gain_db)
    / 20)``, so a model sees its examples louder and quieter by up to
    ``gain_db``. Noise is added after the gain: ``noise_std`` is an absolute
    level (the same noise on a quiet and a loud clip), ``snr_db`` a level
    relative to the clip's own power (the same signal-to-noise ratio however
    loud the clip is), which is what "noisy recording" means for recordings
    made at different levels. Give one or both.

    Args:
        gain_db: Gain drawn from ``[-gain_db, gain_db]`` decibels.
        noise_std: Max standard deviation of added Gaussian noise (drawn
            uniformly from ``[0, noise_std]``).
        max_shift: Shift by up to this many samples either way (zero-filled,
            not wrapped).
        snr_db: ``(low, high)``: add white Gaussian noise at a
            signal-to-noise ratio drawn uniformly from ``[low, high]``
            decibels, relative to the mean power of the (gain-scaled)
            waveform; an all-zero waveform gets no noise. ``None`` (default):
            none.

    Returns:
        ``fn(waveform, seed) -> waveform`` keeping shape ``(T,)``.

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> fn = audio_augmentation(gain_db=20.0, snr_db=(10.0, 30.0), max_shift=400)
    >>> wave = tf.sin(tf.linspace(0.0, 300.0, 4000))
    >>> fn(wave, tf.constant([0, 1])).shape
    TensorShape([4000])
    """
    gain_db = _check_range("gain_db", gain_db, 0.0, 60.0)
    noise_std = _check_range("noise_std", noise_std, 0.0, 10.0)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"`max_shift` must be a non-negative integer. Received: max_shift={max_shift!r}")
    snr_db = _check_snr_range(snr_db)

    def augment(waveform, seed):
        s = _seeds(seed, 6)
        if gain_db > 0:
            db = tf.random.stateless_uniform([], s[0], -gain_db, gain_db)
            waveform = waveform * tf.pow(10.0, db / 20.0)
        if snr_db is not None:
            snr = tf.random.stateless_uniform([], s[4], snr_db[0], snr_db[1])
            power = tf.reduce_mean(tf.square(waveform))
            std = tf.sqrt(power / tf.pow(10.0, snr / 10.0))
            waveform = waveform + std * tf.random.stateless_normal(tf.shape(waveform), s[5])
        if noise_std > 0:
            std = tf.random.stateless_uniform([], s[1], 0.0, noise_std)
            waveform = waveform + std * tf.random.stateless_normal(tf.shape(waveform), s[2])
        if max_shift > 0:
            n = tf.shape(waveform)[0]
            shift = tf.random.stateless_uniform([], s[3], -max_shift, max_shift + 1, dtype=tf.int32)
            padded = tf.pad(waveform, [[max_shift, max_shift]])
            waveform = tf.ensure_shape(padded[max_shift - shift : max_shift - shift + n], waveform.shape)
        return waveform

    return augment


def spec_augment(time_masks=2, time_width=0.1, freq_masks=2, freq_width=0.1):
    """SpecAugment-style masking: zero random time spans (and frequency bands).

    On a waveform ``(T,)`` only time masks apply; on a spectrogram
    ``(T, F)`` both do.

    Args:
        time_masks: Number of time masks.
        time_width: Max width of each time mask, as a fraction of ``T``.
        freq_masks: Number of frequency masks (2-D inputs).
        freq_width: Max width of each frequency mask, as a fraction of ``F``.

    Returns:
        ``fn(x, seed) -> x`` keeping the shape.

    Raises:
        ValueError: If an argument is out of range.

    Example:

    >>> fn = spec_augment(time_masks=2, time_width=0.1)
    >>> fn(tf.ones((4000,)), tf.constant([0, 1])).shape
    TensorShape([4000])
    """
    for name, value in (("time_masks", time_masks), ("freq_masks", freq_masks)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    time_width = _check_range("time_width", time_width, 0.0, 1.0)
    freq_width = _check_range("freq_width", freq_width, 0.0, 1.0)

    def masks(length, count, width, seed):
        keep = tf.ones([length], tf.float32)
        max_width = max(int(width * length), 0)
        if count == 0 or max_width == 0:
            return keep
        seeds = _seeds(seed, 2 * count)
        positions = tf.range(length)
        for i in range(count):
            w = tf.random.stateless_uniform([], seeds[2 * i], 0, max_width + 1, dtype=tf.int32)
            start = tf.random.stateless_uniform([], seeds[2 * i + 1], 0, length - w + 1, dtype=tf.int32)
            inside = tf.logical_and(positions >= start, positions < start + w)
            keep = keep * tf.cast(tf.logical_not(inside), tf.float32)
        return keep

    def augment(x, seed):
        s = _seeds(seed, 2)
        if x.shape.rank == 1:
            return x * masks(x.shape[0], time_masks, time_width, s[0])
        time_keep = masks(x.shape[0], time_masks, time_width, s[0])[:, None]
        freq_keep = masks(x.shape[1], freq_masks, freq_width, s[1])[None, :]
        return x * time_keep * freq_keep

    return augment


def chain(*functions):
    """Composes augmentation functions ``fn(x, seed)`` left to right.

    Example:

    >>> fn = chain(audio_augmentation(gain_db=6.0), spec_augment())
    """

    def augment(x, seed):
        for i, fn in enumerate(functions):
            x = fn(x, tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), i))
        return x

    return augment


def apply_augmentation(ds, augment, seed=None, num_parallel_calls=tf.data.AUTOTUNE):
    """Applies ``{input_name: fn(x, seed)}`` to an unbatched ``(inputs, label)`` or ``inputs`` dataset.

    Every example gets fresh seeds each pass (``Dataset.random`` with
    re-randomisation); with ``seed`` given the sequence is reproducible.

    Args:
        ds: Unbatched dataset whose inputs are a dict.
        augment: ``{input_name: fn}``.
        seed: Base seed (``None``: nondeterministic).
        num_parallel_calls: Parallelism.

    Returns:
        The augmented dataset.
    """
    names = sorted(augment)
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

    def apply(element, r):
        inputs, rest = (element[0], element[1:]) if isinstance(element, tuple) else (element, ())
        inputs = dict(inputs)
        for i, name in enumerate(names):
            inputs[name] = augment[name](inputs[name], tf.stack([r, tf.constant(i, tf.int64)]))
        return (inputs, *rest) if rest else inputs

    zipped = tf.data.Dataset.zip((ds, randoms))
    return zipped.map(apply, num_parallel_calls=num_parallel_calls)
