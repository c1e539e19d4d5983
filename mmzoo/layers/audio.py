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
