"""Reading fixed-position fields of file headers in TensorFlow ops, without copying the file.

Shared by the image and WAV decoders, which check headers before decoding.
``tf.strings.substr`` of a clamped position reads only the bytes asked for
(fewer past the end, then zero-padded).
"""

from __future__ import annotations

import tensorflow as tf


def field_bytes(contents, offset, n):
    """``n`` bytes of ``contents`` from ``offset`` as int64 values (zeros past the end).

    Element-wise: ``contents`` and ``offset`` are scalars or batches of one
    shape; the result has shape ``contents.shape + (n,)``.
    """
    length = tf.cast(tf.strings.length(contents), tf.int64)
    start = tf.clip_by_value(tf.cast(offset, tf.int64), 0, length)
    field = tf.strings.substr(contents, start, tf.fill(tf.shape(start), tf.constant(n, tf.int64)))
    return tf.cast(tf.io.decode_raw(field, tf.uint8, fixed_length=n), tf.int64)  # zero-padded to n


def little_endian(values):
    """The unsigned little-endian value of int64 bytes (the last axis, of static length)."""
    return tf.reduce_sum(values * tf.constant([256 ** i for i in range(values.shape[-1])], tf.int64), axis=-1)


def big_endian(values):
    """The unsigned big-endian value of int64 bytes (the last axis, of static length)."""
    weights = [256 ** i for i in reversed(range(values.shape[-1]))]
    return tf.reduce_sum(values * tf.constant(weights, tf.int64), axis=-1)


def tag(contents, offset, n=4):
    """The ``n`` bytes at ``offset`` as a string (shorter past the end), to compare with a magic or chunk id.

    Element-wise over a batch of ``contents`` and ``offset``, like ``field_bytes``.
    """
    length = tf.cast(tf.strings.length(contents), tf.int64)
    start = tf.clip_by_value(tf.cast(offset, tf.int64), 0, length)
    return tf.strings.substr(contents, start, tf.fill(tf.shape(start), tf.constant(n, tf.int64)))
