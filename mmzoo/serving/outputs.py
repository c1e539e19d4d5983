"""A model's task (from its output layer) and its named serving outputs."""

from __future__ import annotations

import tensorflow as tf

TASKS = ("multiclass", "binary", "multilabel", "scores")


def infer_task(model):
    """Reads the task of a single-output model from its final activation.

    Softmax over 2+ units is ``"multiclass"``; one sigmoid unit is
    ``"binary"``; several sigmoid units are ``"multilabel"``; anything else is
    ``"scores"`` (returned as they are).

    Args:
        model: A Keras model with one output.

    Returns:
        One of ``TASKS``.

    Example:

    >>> infer_task(mmzoo.build("av_digits_concat"))
    'multiclass'
    """
    try:
        layer = model.layers[-1]
    except (AttributeError, IndexError):
        return "scores"
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    units = model.output.shape[-1] if hasattr(model, "output") and not isinstance(model.output, (dict, list)) else None
    if activation == "softmax" and units and units >= 2:
        return "multiclass"
    if activation == "sigmoid" and units == 1:
        return "binary"
    if activation == "sigmoid":
        return "multilabel"
    return "scores"


def check_class_names(task, class_names, units):
    """Validates ``class_names`` for ``task`` (``None`` is always allowed).

    Raises:
        ValueError: If the count does not match the output (``units``; 2 for binary).
    """
    if class_names is None:
        return None
    class_names = [str(c) for c in class_names]
    want = 2 if task == "binary" else units
    if len(class_names) != want:
        raise ValueError(
            f"`class_names` must have {want} entries for this {task} model. Received {len(class_names)}: "
            f"{class_names[:12]!r}"
        )
    return class_names


def named_outputs(task, predictions, class_names=None, threshold=0.5):
    """Turns the model's output into the serving outputs.

    Args:
        task: One of ``TASKS``.
        predictions: float ``(batch, units)``.
        class_names: Optional class names (``binary``: 2 names, negative first).
        threshold: Decision threshold of ``binary``.

    Returns:
        ``multiclass``/``binary``: ``{"probabilities", "class_id"}`` (+
        ``"class_name"`` with class names); ``multilabel``:
        ``{"probabilities"}``; ``scores``: ``{"scores"}``.
    """
    predictions = tf.cast(predictions, tf.float32)
    if task == "multiclass":
        class_id = tf.argmax(predictions, axis=-1, output_type=tf.int32)
    elif task == "binary":
        class_id = tf.cast(predictions[:, 0] >= threshold, tf.int32)
    elif task == "multilabel":
        return {"probabilities": predictions}
    else:
        return {"scores": predictions}
    out = {"probabilities": predictions, "class_id": class_id}
    if class_names is not None:
        out["class_name"] = tf.gather(tf.constant(class_names, tf.string), class_id)
    return out
