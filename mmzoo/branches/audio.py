"""Audio branch builders: inputs are float32 mono waveforms ``(num_samples,)``.

Spectrogram front ends run inside the model as Keras layers (in float32, also
under a mixed-precision policy), so a model consumes raw waveforms. By
default (``level="rms"``) each waveform is first scaled to a fixed RMS
inside the model, so a recording made 20 dB quieter gets the same answer,
in training and in serving alike.
"""

from __future__ import annotations

import numbers

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch, recurrent_stack
from mmzoo.branches.image import reduce_feature_map
from mmzoo.layers import RandomTimeStretch, Spectrogram, WaveformNormalization

LEVELS = ("rms", "peak")
DEFAULT_FLOOR_DB = -60.0


def _waveform_input(num_samples, name):
    check.positive_int("num_samples", num_samples)
    check.identifier("name", name)
    return keras.Input((num_samples,), name=name)


def _check_level(level):
    if level is not None and level not in LEVELS:
        raise ValueError(f"`level` must be one of {LEVELS} or None. Received: level={level!r}")
    return level


def level_normalization(waveform, level="rms", name="audio", dtype=None):
    """Applies the per-utterance level normalisation ``level`` to ``(batch, samples)`` waveforms.

    Args:
        waveform: Symbolic ``(batch, samples)`` tensor.
        level: ``"rms"`` (``mmzoo.layers.WaveformNormalization``: each
            waveform scaled to RMS 0.1, so a recording's gain does not change
            the model's answer), ``"peak"`` (scaled to peak 0.9, as
            ``mmzoo.serving`` does with raw WAV input) or ``None`` (the
            waveform as given).
        name: Layer-name prefix (the layer is ``f"{name}_level"``).
        dtype: The layer's dtype policy (``None``: the global policy).

    Returns:
        The normalised waveform (``waveform`` itself with ``level=None``).

    Raises:
        ValueError: If ``level`` is not ``"rms"``, ``"peak"`` or ``None``.

    Example:

    >>> import keras
    >>> from mmzoo.branches.audio import level_normalization
    >>> waveform = keras.Input((4000,), name="audio")
    >>> level_normalization(waveform, "rms", name="audio").shape
    (None, 4000)
    >>> level_normalization(waveform, None) is waveform
    True
    """
    if _check_level(level) is None:
        return waveform
    return WaveformNormalization(method=level, dtype=dtype, name=f"{name}_level")(waveform)


def spectrogram_frontend(
    waveform,
    sampling_rate,
    frontend="mel",
    frame_length=256,
    frame_step=128,
    num_mel_bins=40,
    name="audio",
    level="rms",
    floor_db="auto",
    time_stretch=0.0,
):
    """Turns ``(batch, samples)`` waveforms into ``(batch, frames, bins)`` log spectra.

    Args:
        waveform: Symbolic ``(batch, samples)`` tensor.
        sampling_rate: Sampling rate in Hz (used by the mel filter bank).
        frontend: ``"mel"`` (log-mel, ``keras.layers.MelSpectrogram``) or
            ``"stft"`` (log-magnitude STFT, ``mmzoo.layers.Spectrogram``).
        frame_length: STFT window in samples.
        frame_step: Hop in samples.
        num_mel_bins: Mel bands (``"mel"`` only).
        name: Layer-name prefix.
        level: ``"rms"`` (default): each waveform is first scaled to RMS 0.1
            (``mmzoo.layers.WaveformNormalization``, layer
            ``f"{name}_level"``), so the spectra, and the model's answer, do
            not depend on how loud a recording is; ``"peak"``: scaled to
            peak 0.9 instead; ``None``: the waveform as given (a recording
            20 dB quieter shifts every log-mel value by -20 dB). Measured
            (``benchmarks/level_robust_audio.py``, audio-only AV-digits, 3
            seeds): within-speaker 0.743 (rms) / 0.724 (peak) / 0.740 (None),
            leave-one-speaker-out 0.533 / 0.525 / 0.516, and 20 dB quieter
            0.533 / 0.525 / 0.117.
        floor_db: The lowest log-mel value (``"mel"`` only), in dB of mel
            power. ``"auto"`` (default): ``-60`` with a ``level`` (about 80 dB
            below the loudest mel bins of a normalised recording, above the
            quantisation noise of 16-bit audio), Keras's default without one.
            A number: that fixed floor, the same for every example. ``None``:
            Keras's default, values clipped 80 dB below the loudest value
            *of the batch*, so an example's spectrum depends on the batch it
            is in (a clean recording's probabilities moved by up to 0.11
            between a batch of 250 and a batch of one).
        time_stretch: ``0`` (default): none. A number in (0, 1): at train
            time, each example's spectrogram is stretched in time by a random
            factor in ``[1 - time_stretch, 1 + time_stretch]``
            (``mmzoo.layers.RandomTimeStretch``, layer
            ``f"{name}_time_stretch"``, after the normalisation; inference
            is unchanged).

    Returns:
        The ``(batch, frames, bins)`` tensor, batch-normalised over all bins.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> import keras
    >>> from mmzoo.branches.audio import spectrogram_frontend
    >>> waveform = keras.Input((4000,), name="audio")
    >>> spectrogram_frontend(waveform, 8000).shape
    (None, 32, 40)
    """
    check.positive_int("sampling_rate", sampling_rate)
    check.choice("frontend", frontend, {"mel", "stft"})
    check.positive_int("frame_length", frame_length)
    check.positive_int("frame_step", frame_step)
    check.positive_int("num_mel_bins", num_mel_bins)
    _check_level(level)
    if time_stretch != 0:  # 0 adds no layer; anything else must be a valid stretch (checked by the layer)
        RandomTimeStretch(time_stretch)
    if floor_db == "auto":
        floor_db = None if level is None else DEFAULT_FLOOR_DB
    elif floor_db is not None and (
        isinstance(floor_db, bool) or not isinstance(floor_db, numbers.Real) or not -200 <= floor_db <= 100
    ):
        raise ValueError(f"`floor_db` must be 'auto', None or a number in [-200, 100]. Received: floor_db={floor_db!r}")
    if waveform.shape[-1] < frame_length:
        raise ValueError(
            f"`frame_length` must not exceed num_samples={waveform.shape[-1]}. Received: frame_length={frame_length}"
        )
    waveform = level_normalization(waveform, level, name, dtype="float32")
    if frontend == "mel":
        # A fixed floor is MelSpectrogram's `min_power`; its batch-relative `top_db` clip is then switched off by
        # a range no float32 spectrum reaches (float32 powers lie within about [-450, 390] dB).
        floor = {} if floor_db is None else {"min_power": 10.0 ** (float(floor_db) / 10.0), "top_db": 1000.0}
        x = keras.layers.MelSpectrogram(
            fft_length=frame_length,
            sequence_stride=frame_step,
            sampling_rate=sampling_rate,
            num_mel_bins=num_mel_bins,
            max_freq=sampling_rate / 2,
            dtype="float32",
            name=f"{name}_mel",
            **floor,
        )(waveform)
        x = keras.layers.Permute((2, 1), name=f"{name}_time_major")(x)
    else:
        x = Spectrogram(frame_length, frame_step, dtype="float32", name=f"{name}_stft")(waveform)
    x = keras.layers.BatchNormalization(synchronized=True, name=f"{name}_spec_norm")(x)
    if time_stretch != 0:
        x = RandomTimeStretch(time_stretch, name=f"{name}_time_stretch")(x)
    return x


def audio_conv1d(
    num_samples=4000,
    filters=(32, 64),
    kernel_size=9,
    strides=1,
    pool_size=4,
    reduction="avg",
    name="audio",
    level="rms",
):
    """Conv1D + MaxPooling1D blocks directly on the waveform.

    Args:
        num_samples: Samples per waveform.
        filters: Filters of each block.
        kernel_size: Convolution kernel size (samples).
        strides: Convolution stride of the first block (downsamples early).
        pool_size: Max-pooling window and stride (``1`` disables pooling).
        reduction: ``"avg"``, ``"max"`` (global pooling over time) or ``"flatten"``.
        name: Input name and layer-name prefix.
        level: ``"rms"`` (default): each waveform is first scaled to the
            same RMS (``mmzoo.layers.WaveformNormalization``, layer
            ``f"{name}_level"``), so a recording's gain does not change the
            features; ``"peak"``: to the same peak; ``None``: the waveform
            as given.

    Returns:
        A ``Branch`` with ``filters[-1]`` features (flatten: the whole map).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> audio = branches.audio_conv1d(num_samples=8000, filters=(16, 32))
    >>> audio.features.shape
    (None, 32)
    """
    inputs = _waveform_input(num_samples, name)
    filters = check.positive_ints("filters", filters)
    check.positive_int("kernel_size", kernel_size)
    check.positive_int("strides", strides)
    check.positive_int("pool_size", pool_size)
    check.choice("reduction", reduction, {"avg", "max", "flatten"})
    x = level_normalization(inputs, level, name)
    x = keras.layers.Reshape((num_samples, 1), name=f"{name}_channels")(x)
    for i, width in enumerate(filters, start=1):
        if x.shape[1] < kernel_size:
            raise ValueError(
                f"`num_samples`={num_samples} is too short for {len(filters)} blocks of "
                f"kernel_size={kernel_size}, pool_size={pool_size}."
            )
        x = keras.layers.Conv1D(
            width, kernel_size, strides=strides if i == 1 else 1, activation="relu", name=f"{name}_conv{i}"
        )(x)
        if pool_size > 1:
            if x.shape[1] < pool_size:
                raise ValueError(
                    f"`num_samples`={num_samples} is too short for {len(filters)} blocks of "
                    f"kernel_size={kernel_size}, pool_size={pool_size}."
                )
            x = keras.layers.MaxPooling1D(pool_size, name=f"{name}_pool{i}")(x)
    if reduction == "flatten":
        features = keras.layers.Flatten(name=f"{name}_flatten")(x)
    elif reduction == "avg":
        features = keras.layers.GlobalAveragePooling1D(name=f"{name}_avg_pool")(x)
    else:
        features = keras.layers.GlobalMaxPooling1D(name=f"{name}_max_pool")(x)
    return Branch(name, inputs, features, "audio")


def audio_spectrogram_cnn(
    num_samples=4000,
    sampling_rate=8000,
    frontend="mel",
    frame_length=256,
    frame_step=128,
    num_mel_bins=40,
    filters=(32, 64),
    kernel_size=3,
    reduction="avg",
    name="audio",
    level="rms",
    time_stretch=0.0,
):
    """A log-(mel-)spectrogram front end followed by Conv2D + MaxPooling2D blocks.

    Args:
        num_samples: Samples per waveform.
        sampling_rate: Sampling rate in Hz.
        frontend: ``"mel"`` or ``"stft"`` (see ``spectrogram_frontend``).
        frame_length: STFT window in samples.
        frame_step: Hop in samples.
        num_mel_bins: Mel bands.
        filters: Filters of each Conv2D block (3x3 conv, ReLU, 2x2 max pool).
        kernel_size: Convolution kernel size.
        reduction: ``"avg"``, ``"max"`` or ``"flatten"``.
        name: Input name and layer-name prefix.
        level: ``"rms"`` (default), ``"peak"`` or ``None`` (see ``spectrogram_frontend``).
        time_stretch: Train-time random tempo change of the spectrogram, up
            to this fraction either way (see ``spectrogram_frontend``); 0:
            none.

    Returns:
        A ``Branch`` with ``filters[-1]`` features (flatten: the whole map).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> audio = branches.audio_spectrogram_cnn(num_samples=8000, sampling_rate=8000)
    >>> audio.features.shape
    (None, 64)
    """
    inputs = _waveform_input(num_samples, name)
    filters = check.positive_ints("filters", filters)
    check.positive_int("kernel_size", kernel_size)
    check.choice("reduction", reduction, {"avg", "max", "flatten"})
    x = spectrogram_frontend(inputs, sampling_rate, frontend, frame_length, frame_step, num_mel_bins, name, level,
                             time_stretch=time_stretch)
    x = keras.layers.Reshape((x.shape[1], x.shape[2], 1), name=f"{name}_image")(x)
    for i, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(width, kernel_size, padding="same", activation="relu", name=f"{name}_conv{i}")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = keras.layers.MaxPooling2D(2, name=f"{name}_pool{i}")(x)
    return Branch(name, inputs, reduce_feature_map(x, reduction, name), "audio")


def audio_rnn(
    num_samples=4000,
    sampling_rate=8000,
    frontend="mel",
    frame_length=256,
    frame_step=128,
    num_mel_bins=40,
    rnn="gru",
    units=64,
    num_layers=1,
    bidirectional=False,
    name="audio",
    level="rms",
    time_stretch=0.0,
):
    """A recurrent encoder (GRU/LSTM) over spectrogram frames.

    Args:
        num_samples: Samples per waveform.
        sampling_rate: Sampling rate in Hz.
        frontend: ``"mel"`` or ``"stft"``.
        frame_length: STFT window in samples.
        frame_step: Hop in samples.
        num_mel_bins: Mel bands.
        rnn: ``"gru"``, ``"lstm"`` or ``"simple"``.
        units: Units per recurrent layer.
        num_layers: Stacked recurrent layers.
        bidirectional: Wrap each in ``Bidirectional``.
        name: Input name and layer-name prefix.
        level: ``"rms"`` (default), ``"peak"`` or ``None`` (see ``spectrogram_frontend``).
        time_stretch: Train-time random tempo change of the spectrogram (see
            ``spectrogram_frontend``); 0: none.

    Returns:
        A ``Branch`` with ``units`` (or ``2 * units``) features.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> audio = branches.audio_rnn(num_samples=4000, rnn="lstm", units=128, num_layers=2)
    >>> audio.features.shape
    (None, 128)
    """
    inputs = _waveform_input(num_samples, name)
    check.choice("rnn", rnn, {"simple", "lstm", "gru"})
    x = spectrogram_frontend(inputs, sampling_rate, frontend, frame_length, frame_step, num_mel_bins, name, level,
                             time_stretch=time_stretch)
    x = recurrent_stack(x, rnn, units, num_layers, bidirectional, name)
    return Branch(name, inputs, x, "audio")
