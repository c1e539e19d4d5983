"""A model's task (read from its head) and its named serving outputs.

The task, class names and decision threshold of a model built by
``mmzoo.compose`` / ``mmzoo.build`` travel inside it (its
``mmzoo.heads.HeadActivation`` layer); ``resolve_task`` reads them there and
never guesses from an activation's name. A plain Keras model has no head:
its export returns ``scores`` unless ``task=`` says what it is.
"""

from __future__ import annotations

import numbers

import tensorflow as tf

from mmzoo import heads as heads_lib

# Head kinds, and "scores": the outputs as they are (a model without a head).
TASKS = (*heads_lib.KINDS, "scores")


def _check_threshold(threshold):
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0 < threshold < 1:
        raise ValueError(f"`threshold` must be a number in (0, 1). Received: threshold={threshold!r}")
    return float(threshold)


def resolve_task(model, task=None, class_names=None, threshold=None, default_class_names=None):
    """The serving task of a single-output model: its head, or what the caller says.

    Precedence: explicit arguments, then the model's head
    (``mmzoo.heads.from_model``), then ``default_class_names`` (e.g. a serving
    preset's) for class names; a model without a head and without ``task``
    is ``"scores"``.

    Args:
        model: A Keras model with one output.
        task: ``None`` (read the head) or one of ``TASKS``; for a model with
            a head it must equal the head's kind.
        class_names: Class names overriding the head's (binary: negative,
            positive; regression: one per target).
        threshold: Decision threshold overriding the head's (binary,
            multilabel only).
        default_class_names: Class names used when neither ``class_names``
            nor the head has any.

    Returns:
        A dict: ``task``, ``class_names`` (a list or ``None``), ``threshold``
        (``None`` unless binary/multilabel), ``head`` (the head's config with
        the resolved fields, or ``None`` for ``"scores"``).

    Raises:
        ValueError: If ``task`` is unknown or contradicts the model's head,
            ``class_names`` has the wrong length, or ``threshold`` is invalid
            or given for a task without one.

    Example:

    >>> import mmzoo
    >>> resolved = resolve_task(mmzoo.build("av_digits_concat", image_filters=(4,), audio_filters=(4,)))
    >>> resolved["task"], resolved["class_names"][:3]
    ('multiclass', ['0', '1', '2'])
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"`task` must be one of {list(TASKS)}. Received: task={task!r}")
    try:
        head = heads_lib.from_model(model)
    except ValueError:
        head = None
    units = int(model.output.shape[-1])
    if head is not None and task is not None and task != head.kind:
        raise ValueError(
            f"`task` contradicts the model's head ({head.kind!r}, stored in the model). Received: task={task!r}"
        )
    if head is None and task is None:
        task = "scores"
    task = head.kind if head is not None else task
    if threshold is not None:
        if task not in ("binary", "multilabel"):
            raise ValueError(f"`threshold` applies to binary and multilabel models, not {task}. "
                             f"Received: threshold={threshold!r}")
        threshold = _check_threshold(threshold)
    names = class_names
    if names is None and head is not None:
        names = head.class_names
    if names is None:
        names = default_class_names
    names = check_class_names(task, names, units)
    if task == "scores":
        return {"task": task, "class_names": names, "threshold": None, "head": None}
    config = head.get_config() if head is not None else {"kind": task, "units": units}
    config.update(class_names=names)
    if threshold is not None:
        config["threshold"] = threshold
    resolved = heads_lib.Head.from_config(config)  # validates units (binary: 1) and fields
    if resolved.units != units:
        raise ValueError(f"The model's output has {units} units but its head has {resolved.units}.")
    resolved_config = resolved.get_config()
    return {"task": task, "class_names": names, "threshold": resolved_config.get("threshold"),
            "head": resolved_config}


def check_class_names(task, class_names, units):
    """Validates ``class_names`` for ``task`` (``None`` is always allowed).

    Args:
        task: One of ``TASKS``.
        class_names: Names or ``None``.
        units: Width of the model's output.

    Returns:
        ``class_names`` as a list of ``str``, or ``None``.

    Raises:
        ValueError: If the count does not match the output (``units``; 2 for binary).
    """
    if class_names is None:
        return None
    if isinstance(class_names, str):
        raise ValueError(
            f"`class_names` must be a list of names, not a string. Received: class_names={class_names!r}"
        )
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
        threshold: Decision threshold of ``binary`` and ``multilabel``.

    Returns:
        ``multiclass``/``binary``: ``{"probabilities", "class_id"}`` (+
        ``"class_name"`` with class names; binary ``class_id`` is
        ``P(positive) >= threshold``); ``multilabel``: ``{"probabilities",
        "labels"}`` (``labels``: int32 multi-hot, ``probability >= threshold``;
        + ``"label_names"``, the predicted names joined by ``","``, with class
        names); ``regression``/``scores``: ``{"scores"}``.
    """
    predictions = tf.cast(predictions, tf.float32)
    if task == "multiclass":
        class_id = tf.argmax(predictions, axis=-1, output_type=tf.int32)
    elif task == "binary":
        class_id = tf.cast(predictions[:, 0] >= threshold, tf.int32)
    elif task == "multilabel":
        predicted = predictions >= threshold
        out = {"probabilities": predictions, "labels": tf.cast(predicted, tf.int32)}
        if class_names is not None:
            names = tf.broadcast_to(tf.constant(class_names, tf.string), tf.shape(predictions))
            out["label_names"] = tf.strings.reduce_join(tf.ragged.boolean_mask(names, predicted), axis=-1,
                                                        separator=",")
        return out
    else:
        return {"scores": predictions}
    out = {"probabilities": predictions, "class_id": class_id}
    if class_names is not None:
        out["class_name"] = tf.gather(tf.constant(class_names, tf.string), class_id)
    return out
