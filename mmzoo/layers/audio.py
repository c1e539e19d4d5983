"""Audio front-end layers that run inside the model (XLA-compatible)."""

from __future__ import annotations

import keras
from keras import ops

from mmzoo import _validation as check


@keras.saving.register_keras_serializable(package="mmzoo")
class Spectrogram(keras.layers.Layer):
    """Short-time Fourier transform magnitude of a batch of waveforms.

    Args:
        frame_length: Samples per STFT frame.
        frame_step: Hop between frames, in samples.
        fft_length: FFT size (>= ``frame_length``); defaults to ``frame_length``.
        mode: ``"log"`` (``log(|X| + 1e-6)``, default) or ``"magnitude"``.
        **kwargs: Standard layer arguments (``name``, ``dtype``...).

    Input shape: ``(batch, samples)``. Output shape:
    ``(batch, frames, fft_length // 2 + 1)`` with
    ``frames = 1 + (samples - fft_length) // frame_step`` (each frame spans
    ``fft_length`` samples, the ``frame_length``-sample Hann window centred
    in it, as ``keras.ops.stft`` does).

    Mixed precision: the STFT, magnitude and log always run in float32 (or
    float64 under a float64 policy), because float16 has too little range and
    precision for them (``ops.stft`` refuses it); under a ``"mixed_float16"``
    / ``"mixed_bfloat16"`` policy the waveform is taken in float32
    (``input_dtype``) and only the result is cast to the compute dtype.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import Spectrogram
    >>> layer = Spectrogram(frame_length=256, frame_step=128)
    >>> tuple(layer(np.zeros((2, 4000), "float32")).shape)
    (2, 30, 129)
    >>> Spectrogram(dtype="mixed_float16")(np.zeros((2, 4000), "float32")).dtype.name
    'float16'
    """

    def __init__(self, frame_length=256, frame_step=128, fft_length=None, mode="log", **kwargs):
        super().__init__(**kwargs)
        self.frame_length = check.positive_int("frame_length", frame_length)
        self.frame_step = check.positive_int("frame_step", frame_step)
        self.fft_length = check.positive_int("fft_length", fft_length or frame_length)
        if self.fft_length < self.frame_length:
            raise ValueError(
                f"`fft_length` must be >= frame_length={frame_length}. Received: fft_length={fft_length!r}"
            )
        self.mode = check.choice("mode", mode, {"log", "magnitude"})

    @property
    def input_dtype(self):
        """The dtype the waveform is converted to: float32 unless the policy computes in float64."""
        return self._stft_dtype

    @property
    def _stft_dtype(self):
        return "float64" if self.compute_dtype == "float64" else "float32"

    def call(self, inputs):
        real, imag = ops.stft(
            ops.cast(inputs, self._stft_dtype),
            sequence_length=self.frame_length,
            sequence_stride=self.frame_step,
            fft_length=self.fft_length,
            window="hann",
            center=False,
        )
        magnitude = ops.sqrt(real * real + imag * imag + 1e-12)
        outputs = ops.log(magnitude + 1e-6) if self.mode == "log" else magnitude
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else max(0, 1 + (samples - self.fft_length) // self.frame_step)
        return (input_shape[0], frames, self.fft_length // 2 + 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            mode=self.mode,
        )
        return config


@keras.saving.register_keras_serializable(package="mmzoo")
class RandomTimeStretch(keras.layers.Layer):
    """Train-time tempo change of a spectrogram: each example's time axis stretched by a random factor.

    At train time, each example of a ``(batch, frames, bins)`` spectrogram is
    resampled along time (linear interpolation) by a factor drawn uniformly
    from ``[1 - max_stretch, 1 + max_stretch]``, aligned at the first frame: a
    factor above 1 is slower speech (the end is cut off), below 1 faster
    speech (the end is filled with the example's lowest value, its silence).
    Pitch and spectral envelope are unchanged, unlike a speed change of the
    waveform. At inference the input passes through unchanged, so serving
    matches training. Speakers differ in speaking rate; measured on
    leave-one-speaker-out AV-digits audio (README, "A new speaker"), it helps
    a voice the model never heard and, more, the voices it knows.

    Args:
        max_stretch: Largest relative change, in (0, 1).
        seed: Seed of the draws.
        **kwargs: Standard layer arguments.

    Raises:
        ValueError: If ``max_stretch`` is not in (0, 1), or the input is not
            ``(batch, frames, bins)`` with known ``frames`` and ``bins``.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import RandomTimeStretch
    >>> layer = RandomTimeStretch(max_stretch=0.2, seed=0)
    >>> spectrogram = np.random.default_rng(0).normal(size=(2, 32, 40)).astype("float32")
    >>> bool(np.all(layer(spectrogram) == spectrogram))   # inference: unchanged
    True
    >>> tuple(layer(spectrogram, training=True).shape)
    (2, 32, 40)
    """

    def __init__(self, max_stretch=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(max_stretch, bool) or not isinstance(max_stretch, (int, float)) or not 0 < max_stretch < 1:
            raise ValueError(f"`max_stretch` must be a number in (0, 1). Received: max_stretch={max_stretch!r}")
        self.max_stretch = float(max_stretch)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(f"RandomTimeStretch takes (batch, frames, bins) with known frames and bins. "
                             f"Received input shape {tuple(input_shape)}")

    def call(self, inputs, training=None):
        if not training:
            return inputs
        frames, bins = inputs.shape[1], inputs.shape[2]
        batch = ops.shape(inputs)[0]
        factor = keras.random.uniform((batch, 1), 1.0 - self.max_stretch, 1.0 + self.max_stretch,
                                      seed=self.seed_generator)
        source = ops.arange(frames, dtype="float32")[None, :] / factor  # output frame t reads input frame t / f
        inside = source <= frames - 1
        source = ops.minimum(source, frames - 1.0)
        low = ops.floor(source)
        weight = ops.cast((source - low)[..., None], inputs.dtype)
        low = ops.cast(low, "int32")
        high = ops.minimum(low + 1, frames - 1)

        def frames_at(index):
            return ops.take_along_axis(inputs, ops.broadcast_to(index[..., None], (batch, frames, bins)), axis=1)

        stretched = frames_at(low) * (1 - weight) + frames_at(high) * weight
        silence = ops.min(inputs, axis=(1, 2), keepdims=True)
        return ops.where(inside[..., None], stretched, silence)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(max_stretch=self.max_stretch, seed=self.seed)
        return config
