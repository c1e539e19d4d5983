"""SavedModel export of a trained model."""

from __future__ import annotations

import os

import keras
import tensorflow as tf


def export(model, path):
    """Writes ``model`` as a TensorFlow SavedModel with a ``serving_default`` signature.

    The signature takes the model's numeric inputs (a dict keyed by modality,
    e.g. ``image``: float32 ``(None, 28, 28, 1)``) and returns ``{"output": ...}``.
    Reload it without mmzoo via ``tf.saved_model.load(path)`` or
    ``keras.layers.TFSMLayer(path, call_endpoint="serving_default")``.

    Args:
        model: A built Keras model with dict inputs.
        path: Output folder (created; an existing export there is replaced).

    Returns:
        ``path``.

    Raises:
        ValueError: If ``model`` has no dict inputs.

    Example:

    >>> mmzoo.export(model, "saved_models/av_digits")
    """
    if not isinstance(model.input, dict):
        raise ValueError(f"`model` must have dict inputs keyed by modality. Received inputs: {model.input}")
    specs = {
        name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=name) for name, t in model.input.items()
    }
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        return {"output": model(inputs, training=False)}

    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    archive.write_out(path, verbose=False)
    return path
