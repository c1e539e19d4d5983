"""The one place where mmzoo touches Keras internals (each use tested in ``tests/test_keras_compat.py``).

Keras 3 has no public API for these; keeping them here means a Keras upgrade
breaks one small, tested module instead of scattered call sites.
"""

from __future__ import annotations


def in_safe_mode():
    """Whether Keras is deserializing in safe mode right now (``None`` outside ``load_model``).

    ``keras.layers.TFSMLayer.from_config`` reads the same flag to refuse
    loading a SavedModel in safe mode; ``mmzoo.layers.HubLayer`` follows it.
    """
    from keras.src.saving import serialization_lib  # noqa: PLC0415 (private: no public equivalent)

    return serialization_lib.in_safe_mode()
