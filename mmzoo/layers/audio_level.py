"""Per-utterance level normalisation of waveforms, inside the model (XLA-compatible)."""

from __future__ import annotations

import numbers

import keras
from keras import ops


def _positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be a positive number. Received: {name}={value!r}")
    return float(value)


METHODS = ("rms", "peak")


@keras.saving.register_keras_serializable(package="mmzoo")
class WaveformNormalization(keras.layers.Layer):
    """Scales each waveform of a batch to the same level (RMS by default, or peak).

    ``method="rms"``: ``out = x * target_rms / max(rms(x), epsilon)`` with
    ``rms(x) = sqrt(mean(x ** 2))`` over each waveform's samples.
    ``method="peak"``: ``out = x * target_peak / max(max(|x|), epsilon)``,
    the peak normalisation ``mmzoo.serving`` applies to raw WAV input (and
    the AV-digits recipe to its clips). Either way, multiplying a waveform
    by any gain ``g > 0`` leaves the output unchanged (up to float rounding)
    as long as its level stays above ``epsilon``, so a model with this layer
    first gives the same answer for a recording made 20 dB quieter or
    louder. Each example is normalised on its own: the output does not
    depend on the rest of the batch, and training and serving see the same
    values. RMS measures the whole utterance; the peak is one sample (a
    click or a noise spike sets it) but keeps the ratio of peak to RMS,
    which tells short words from long ones in a fixed-length window.

    All-zero (silent) waveforms stay all zeros; waveforms whose level is
    below ``epsilon`` (the default, ``1e-5``, is -100 dBFS, below the
    quantisation noise of 16-bit audio) are amplified by at most
    ``target / epsilon`` rather than boosted to the target level.

    Args:
        target_rms: RMS of the output waveforms (``method="rms"``). The
            default ``0.1`` (-20 dBFS) keeps peaks of speech well inside
            [-1, 1], close to the levels of peak-normalised clips, so the
            log-mel values stay in the range the rest of a network was
            designed for.
        epsilon: Floor of the level divisor.
        method: ``"rms"`` (default) or ``"peak"``.
        target_peak: Peak of the output waveforms (``method="peak"``).
        **kwargs: Standard layer arguments (``name``, ``dtype``...).

    Raises:
        ValueError: If ``target_rms``, ``target_peak`` or ``epsilon`` is not
            a positive number, or ``method`` is not one of the two.

    Input shape: ``(batch, samples)`` (any rank: the level is taken over the
    last axis). Output shape: the same.

    Mixed precision: the level and the scaling run in float32 (float64 under
    a float64 policy); under ``"mixed_float16"`` / ``"mixed_bfloat16"`` the
    waveform is taken in float32 (``input_dtype``) and only the result is
    cast to the compute dtype.

    Example:

    >>> import numpy as np
    >>> from mmzoo.layers import WaveformNormalization
    >>> layer = WaveformNormalization(target_rms=0.1)
    >>> wave = np.sin(np.linspace(0, 100, 4000, dtype="float32"))[None]
    >>> out = layer(wave).numpy()
    >>> round(float(np.sqrt(np.mean(out ** 2))), 4)
    0.1
    >>> bool(np.allclose(layer(0.01 * wave), out, rtol=1e-5, atol=1e-7))
    True
    >>> bool(layer(np.zeros((1, 4000), "float32")).numpy().any())
    False
    >>> peak = WaveformNormalization(method="peak")
    >>> round(float(np.abs(peak(0.01 * wave).numpy()).max()), 4)
    0.9
    """

    def __init__(self, target_rms=0.1, epsilon=1e-5, method="rms", target_peak=0.9, **kwargs):
        super().__init__(**kwargs)
        self.target_rms = _positive_number("target_rms", target_rms)
        self.epsilon = _positive_number("epsilon", epsilon)
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}. Received: method={method!r}")
        self.method = method
        self.target_peak = _positive_number("target_peak", target_peak)

    @property
    def input_dtype(self):
        """The dtype the waveform is converted to: float32 unless the policy computes in float64."""
        return self._level_dtype

    @property
    def _level_dtype(self):
        return "float64" if self.compute_dtype == "float64" else "float32"

    def call(self, inputs):
        x = ops.cast(inputs, self._level_dtype)
        if self.method == "rms":
            level, target = ops.sqrt(ops.mean(ops.square(x), axis=-1, keepdims=True)), self.target_rms
        else:
            level, target = ops.max(ops.abs(x), axis=-1, keepdims=True), self.target_peak
        outputs = x * (target / ops.maximum(level, self.epsilon))
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            target_rms=self.target_rms, epsilon=self.epsilon, method=self.method, target_peak=self.target_peak
        )
        return config
