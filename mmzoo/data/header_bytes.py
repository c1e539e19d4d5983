"""Reading fixed-position fields of file headers in TensorFlow ops, without copying the file.

Shared by the image and WAV decoders, which check headers before decoding.
``tf.strings.substr`` of a clamped position reads only the bytes asked for
(fewer past the end, then zero-padded).
"""

from __future__ import annotations

import tensorflow as tf


def field_bytes(contents, offset, n):
    """``n`` bytes of ``contents`` from ``offset`` as int64 values (zeros past the end)."""
    length = tf.cast(tf.strings.length(contents), tf.int64)
    start = tf.clip_by_value(tf.cast(offset, tf.int64), 0, length)
    raw = tf.io.decode_raw(tf.strings.substr(contents, start, tf.constant(n, tf.int64)), tf.uint8)
    return tf.cast(tf.ensure_shape(tf.pad(raw, [[0, n - tf.shape(raw)[0]]]), (n,)), tf.int64)


def little_endian(values):
    """The unsigned little-endian value of int64 bytes (static length)."""
    return tf.reduce_sum(values * tf.constant([256 ** i for i in range(values.shape[0])], tf.int64))


def big_endian(values):
    """The unsigned big-endian value of int64 bytes (static length)."""
    return tf.reduce_sum(values * tf.constant([256 ** i for i in reversed(range(values.shape[0]))], tf.int64))


def tag(contents, offset, n=4):
    """The ``n`` bytes at ``offset`` as a string (shorter past the end), to compare with a magic or chunk id."""
    length = tf.cast(tf.strings.length(contents), tf.int64)
    return tf.strings.substr(contents, tf.clip_by_value(tf.cast(offset, tf.int64), 0, length),
                             tf.constant(n, tf.int64))
