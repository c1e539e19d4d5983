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
    ``frames = 1 + (samples - frame_length) // frame_step``.

    Example:

    >>> layer = Spectrogram(frame_length=256, frame_step=128)
    >>> layer(np.zeros((2, 4000), "float32")).shape
    TensorShape([2, 30, 129])
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

    def call(self, inputs):
        real, imag = ops.stft(
            ops.cast(inputs, self.compute_dtype),
            sequence_length=self.frame_length,
            sequence_stride=self.frame_step,
            fft_length=self.fft_length,
            window="hann",
            center=False,
        )
        magnitude = ops.sqrt(real * real + imag * imag + 1e-12)
        return ops.log(magnitude + 1e-6) if self.mode == "log" else magnitude

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else 1 + (samples - self.frame_length) // self.frame_step
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
