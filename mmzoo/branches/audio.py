"""Audio branch builders: inputs are float32 mono waveforms ``(num_samples,)``.

Spectrogram front ends run inside the model as Keras layers (in float32, also
under a mixed-precision policy), so a model consumes raw waveforms.
"""

from __future__ import annotations

import keras

from mmzoo import _validation as check
from mmzoo.branches.base import Branch, recurrent_stack
from mmzoo.branches.image import reduce_feature_map
from mmzoo.layers import Spectrogram


def _waveform_input(num_samples, name):
    check.positive_int("num_samples", num_samples)
    check.identifier("name", name)
    return keras.Input((num_samples,), name=name)


def spectrogram_frontend(
    waveform, sampling_rate, frontend="mel", frame_length=256, frame_step=128, num_mel_bins=40, name="audio"
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

    Returns:
        The ``(batch, frames, bins)`` tensor, batch-normalised over all bins.

    Raises:
        ValueError: If an argument is invalid.
    """
    check.positive_int("sampling_rate", sampling_rate)
    check.choice("frontend", frontend, {"mel", "stft"})
    check.positive_int("frame_length", frame_length)
    check.positive_int("frame_step", frame_step)
    check.positive_int("num_mel_bins", num_mel_bins)
    if waveform.shape[-1] < frame_length:
        raise ValueError(
            f"`frame_length` must not exceed num_samples={waveform.shape[-1]}. Received: frame_length={frame_length}"
        )
    if frontend == "mel":
        x = keras.layers.MelSpectrogram(
            fft_length=frame_length,
            sequence_stride=frame_step,
            sampling_rate=sampling_rate,
            num_mel_bins=num_mel_bins,
            max_freq=sampling_rate / 2,
            dtype="float32",
            name=f"{name}_mel",
        )(waveform)
        x = keras.layers.Permute((2, 1), name=f"{name}_time_major")(x)
    else:
        x = Spectrogram(frame_length, frame_step, dtype="float32", name=f"{name}_stft")(waveform)
    return keras.layers.BatchNormalization(synchronized=True, name=f"{name}_spec_norm")(x)


def audio_conv1d(
    num_samples=4000, filters=(32, 64), kernel_size=9, strides=1, pool_size=4, reduction="avg", name="audio"
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
    x = keras.layers.Reshape((num_samples, 1), name=f"{name}_channels")(inputs)
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
    x = spectrogram_frontend(inputs, sampling_rate, frontend, frame_length, frame_step, num_mel_bins, name)
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
    x = spectrogram_frontend(inputs, sampling_rate, frontend, frame_length, frame_step, num_mel_bins, name)
    x = recurrent_stack(x, rnn, units, num_layers, bidirectional, name)
    return Branch(name, inputs, x, "audio")
