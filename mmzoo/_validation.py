"""Argument checks shared by the builders: each raises a ``ValueError`` that
names the argument and echoes the received value, as keras.applications does."""

from __future__ import annotations

import numbers


def positive_int(name, value):
    """Returns ``value`` if it is an int > 0, else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def non_negative_int(name, value):
    """Returns ``value`` if it is an int >= 0, else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer. Received: {name}={value!r}")
    return int(value)


def positive_ints(name, value, allow_empty=False):
    """Returns ``value`` as a tuple of positive ints (a single int is accepted)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        items = tuple(value)
    except TypeError:
        items = None
    if (
        items is None
        or (not items and not allow_empty)
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0 for v in items)
    ):
        kind = "a tuple of positive integers" + ("" if allow_empty else " (at least one)")
        raise ValueError(f"`{name}` must be {kind}. Received: {name}={value!r}")
    return tuple(int(v) for v in items)


def choice(name, value, choices):
    """Returns ``value`` if it is one of ``choices``, else raises ``ValueError``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {sorted(choices)}. Received: {name}={value!r}")
    return value


def fraction(name, value):
    """Returns ``value`` if it is a float in [0, 1), else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a float in [0, 1). Received: {name}={value!r}")
    return float(value)


def non_negative_number(name, value):
    """Returns ``value`` as a float if it is a real number >= 0, else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={value!r}")
    return float(value)


def shape(name, value, rank):
    """Returns ``value`` as a tuple of ``rank`` positive ints."""
    items = positive_ints(name, value) if value is not None else ()
    if len(items) != rank:
        raise ValueError(f"`{name}` must have {rank} positive dimensions. Received: {name}={value!r}")
    return items


def identifier(name, value):
    """Returns ``value`` if it is a non-empty string usable in layer names."""
    if not isinstance(value, str) or not value or not value.replace("_", "a").replace("-", "a").isalnum():
        raise ValueError(
            f"`{name}` must be a non-empty string of letters, digits, '_' or '-'. Received: {name}={value!r}"
        )
    return value


def writable_folder(name, path):
    """Creates folder ``path`` if needed and proves it writable (a probe file written and removed).

    Goes through ``tf.io.gfile``, so ``gs://`` and TensorFlow's other file
    systems are checked the way they will be written. Meant to run before a
    long job, so a bad folder fails in a second, not after training.

    Raises:
        ValueError: One line naming the argument, the folder and the reason.
    """
    import uuid  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    folder = str(path)
    probe = f"{folder.rstrip('/')}/.mmzoo_write_check_{uuid.uuid4().hex}"
    try:
        tf.io.gfile.makedirs(folder)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (OSError, tf.errors.OpError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "message", None) or str(error)
        reason = " ".join(str(reason).split())[:200]
        raise ValueError(f"`{name}`: cannot write to {folder!r}: {reason}. Received: {name}={folder!r}") from None
    return path
