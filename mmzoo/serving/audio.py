"""The AV-digits audio recipe in TensorFlow ops, for ``serving_raw``.

The embedded AV-digits training audio was made with
``mmzoo.datasets.av_digits_recipe.fit_waveform`` (numpy): trim leading silence, crop or
zero-pad at the end, peak-normalise. A model trained on it must see WAV bytes
prepared the same way at serving time, so the ``"av_digits"`` serving preset
decodes audio with ``FittedAudioColumn``, whose ``decode_bytes`` runs
``fit_waveform`` below (graph ops only, so the SavedModel needs no mmzoo).
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data import AudioColumn
from mmzoo.data import audio as audio_lib

# The recipe trims leading silence, so it reads more than its window; at most this many seconds are decoded.
MAX_SECONDS = 10


def fit_waveform(waveform, num_samples, frame=32, threshold=0.05, margin=200, peak=0.9):
    """TensorFlow twin of ``mmzoo.datasets.av_digits_recipe.fit_waveform``.

    The first ``frame``-sample frame whose RMS exceeds ``threshold`` times the
    loudest frame's RMS marks the onset; the clip starts ``margin`` samples
    before it (no trimming when the clip is shorter than one frame or silent).
    The rest is cropped or zero-padded at the end to ``num_samples`` and scaled
    so its peak is ``peak`` (an all-zero clip stays zero).

    Args:
        waveform: float32 ``(T,)``.
        num_samples: Output length.
        frame, threshold, margin, peak: As for ``fit_waveform_batch``.

    Returns:
        float32 ``(num_samples,)``.

    Example:

    >>> import tensorflow as tf
    >>> samples = tf.concat([tf.zeros(1000), tf.sin(tf.range(5000, dtype=tf.float32) / 5.0)], 0)
    >>> fit_waveform(samples, 4000).shape
    TensorShape([4000])
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    return fit_waveform_batch(waveform[None], tf.shape(waveform)[:1], num_samples, frame, threshold, margin,
                              peak)[0]


def fit_waveform_batch(windows, count, num_samples, frame=32, threshold=0.05, margin=200, peak=0.9):
    """``fit_waveform`` of each row of ``windows`` (float32 ``(n, w)``, row ``i`` valid up to ``count[i]``).

    The same values as ``fit_waveform`` on each row's first ``count[i]``
    samples, computed for the whole batch at once.

    Args:
        windows: float32 ``(n, w)``, zero past each row's ``count``.
        count: int ``(n,)``: the valid samples of each row.
        num_samples: Output length.
        frame: Frame length of the RMS onset detector.
        threshold: Onset threshold, a fraction of the loudest frame's RMS.
        margin: Samples kept before the onset frame.
        peak: Peak amplitude of the output.

    Returns:
        float32 ``(n, num_samples)``.
    """
    count = tf.cast(count, tf.int32)
    n, width = tf.shape(windows)[0], tf.shape(windows)[1]
    n_frames_max = (width + frame - 1) // frame
    padded = tf.pad(windows, [[0, 0], [0, n_frames_max * frame - width + 1]])  # + a zero column to gather past the end
    frames = tf.reshape(padded[:, : n_frames_max * frame], [n, n_frames_max, frame])
    rms = tf.sqrt(tf.reduce_mean(tf.square(frames), axis=2))
    n_frames = count // frame  # whole frames only, as fit_waveform
    valid = tf.range(n_frames_max)[None, :] < n_frames[:, None]
    loudest = tf.reduce_max(tf.where(valid, rms, tf.float32.min), axis=1, keepdims=True)
    loud = tf.logical_and(valid, rms > threshold * loudest)
    first = tf.reduce_min(tf.where(loud, tf.range(n_frames_max)[None, :], n_frames[:, None]), axis=1)
    start = tf.where(first < n_frames, tf.maximum(first * frame - margin, 0), 0)
    index = start[:, None] + tf.range(num_samples)[None, :]
    out = tf.gather(padded, tf.minimum(index, tf.shape(padded)[1] - 1), batch_dims=1)
    out = tf.where(index < count[:, None], out, 0.0)
    top = tf.reduce_max(tf.abs(out), axis=1, keepdims=True)
    return tf.where(top > 0, out * (peak / tf.where(top > 0, top, 1.0)), out)


class FittedAudioColumn(AudioColumn):
    """A WAV column decoded with the AV-digits recipe (``fit_waveform``).

    WAV bytes -> mono -> resampled to ``sampling_rate`` -> leading silence
    trimmed -> cropped/zero-padded at the end to ``num_samples`` -> peak
    normalised. Use it where training audio went through
    ``mmzoo.datasets.av_digits_recipe.fit_waveform``.

    Args:
        column: Manifest column of WAV paths.
        sampling_rate: Sample rate the model expects (files are resampled).
        num_samples: Waveform length.
        frame: Onset detector frame length (samples).
        threshold: Onset threshold (fraction of the loudest frame's RMS).
        margin: Samples kept before the onset.
        peak: Output peak amplitude.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> import os
    >>> import tensorflow as tf
    >>> from mmzoo.data import resolve_data_dir
    >>> wav = os.path.join(resolve_data_dir(), "fsdd", "recordings", "0_jackson_0.wav")
    >>> column = FittedAudioColumn("audio", 8000, 4000)
    >>> column.decode_bytes(tf.io.read_file(wav)).shape
    TensorShape([4000])
    """

    def __init__(self, column, sampling_rate, num_samples, frame=32, threshold=0.05, margin=200, peak=0.9):
        super().__init__(column, sampling_rate, num_samples, crop="start")
        for arg, value in (("frame", frame), ("margin", margin)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if arg == "frame" else 0):
                raise ValueError(f"`{arg}` must be a {'positive' if arg == 'frame' else 'non-negative'} integer. "
                                 f"Received: {arg}={value!r}")
        for arg, value in (("threshold", threshold), ("peak", peak)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{arg}` must be a positive number. Received: {arg}={value!r}")
        self.frame, self.threshold, self.margin, self.peak = frame, float(threshold), margin, float(peak)

    def decode_bytes(self, contents, where=None):
        """Decodes one WAV's bytes (its first ``MAX_SECONDS`` at most); ``where`` is named in errors."""
        name = f"column `{self.column}`" if where is None else where
        info = audio_lib.wav_info(contents)
        with tf.control_dependencies(audio_lib.wav_checks(contents, info, name)):
            return self.decode_checked(contents, info, name)

    def decode_checked(self, contents, info, where=None):
        """Decodes one WAV's bytes whose header ``check_batch`` has checked (``info``: its ``wav_info``)."""
        name = f"column `{self.column}`" if where is None else where
        frames = tf.minimum(info["frames"], MAX_SECONDS * tf.maximum(info["sampling_rate"], 1))
        waveform = audio_lib.mono(audio_lib.decode_frames(contents, info, tf.zeros_like(frames), frames))
        with tf.control_dependencies([audio_lib.assert_not_silent(waveform, name)]):
            waveform = audio_lib.resample(waveform, info["sampling_rate"], self.sampling_rate)
        return fit_waveform(waveform, self.num_samples, self.frame, self.threshold, self.margin, self.peak)

    def _window(self, info):
        frames = tf.minimum(info["frames"], MAX_SECONDS * tf.maximum(info["sampling_rate"], 1))
        return tf.zeros_like(frames), frames

    def _finish_batch(self, windows, count):
        return fit_waveform_batch(windows, count, self.num_samples, self.frame, self.threshold, self.margin,
                                  self.peak)

    def serving_config(self):
        """The recipe's parameters, for the export's metadata."""
        return {"trim_leading_silence": {"frame": self.frame, "threshold": self.threshold, "margin": self.margin},
                "peak_normalize": self.peak}
