"""The one place where mmzoo touches Keras internals (each use tested in ``tests/test_keras_compat.py``).

Keras 3 has no public API for some of what mmzoo needs; keeping those uses
here means a Keras upgrade breaks one small, tested module instead of
scattered call sites. Everything else in ``mmzoo/`` uses public Keras APIs
only (``keras.src`` is imported nowhere else).

* ``in_safe_mode()`` / ``safe_mode_scope(...)``: the deserialization safe-mode
  flag that ``keras.saving.load_model(safe_mode=...)`` sets (private: Keras
  exports only ``keras.config.enable_unsafe_deserialization``).
* ``walk_layers(layer)``: a layer and all its sublayers, found with public
  means only (``Model.layers`` and ``Layer``-valued attributes); the test
  checks it against Keras's private ``Layer._flatten_layers``.
* ``update_loss_tracker(model, loss, x)``: what Keras's own ``train_step``
  does to report ``loss`` (the tracker is private), for ``train_step``
  overrides such as ``mmzoo.balance.FusionModel``.
* ``tensor_consumers(model)`` / ``call_count(layer)``: the functional graph's
  edges (private ``_inbound_nodes``), for ``mmzoo.training.frontend``.
* ``submodel(inputs, outputs, name)``: a functional model from intermediate
  tensors that leaves the source model saveable (Keras 3.15 re-points the
  ``keras.Input`` tensors among ``inputs`` at the cloned nodes, so the source
  model's ``get_config`` then fails with "could not find node key"), for
  ``mmzoo.training.frontend``.
* ``set_initial_epoch(model, epoch)``: where ``fit`` starts, set from a
  callback's ``on_train_begin`` (private ``_initial_epoch``, the hook
  ``keras.callbacks.BackupAndRestore`` uses), for
  ``mmzoo.training.backup.TrainingBackup``.
"""

from __future__ import annotations

import collections
import contextlib


def in_safe_mode():
    """Whether Keras is deserializing in safe mode right now (``None`` outside ``load_model``).

    ``keras.layers.TFSMLayer.from_config`` reads the same flag to refuse
    loading a SavedModel in safe mode; ``mmzoo.layers.HubLayer`` follows it.

    Returns:
        ``True``/``False`` inside ``keras.saving.load_model(..., safe_mode=...)``
        (or ``safe_mode_scope``), ``False`` after
        ``keras.config.enable_unsafe_deserialization()``, else ``None``.
    """
    from keras.src.saving import serialization_lib  # private: no public equivalent  # noqa: PLC0415

    return serialization_lib.in_safe_mode()


@contextlib.contextmanager
def safe_mode_scope(safe_mode=True):
    """Sets Keras's deserialization safe-mode flag inside the block, as ``load_model`` does.

    Args:
        safe_mode: The flag's value inside the block.

    Example:

    >>> from mmzoo import _keras_compat
    >>> with _keras_compat.safe_mode_scope(False):
    ...     _keras_compat.in_safe_mode()
    False
    """
    from keras.src.saving import serialization_lib  # private: no public equivalent  # noqa: PLC0415

    with serialization_lib.SafeModeScope(safe_mode):
        yield


def _layer_values(value):
    """The ``keras.layers.Layer`` objects in an attribute value (lists, tuples and dicts searched)."""
    import keras  # noqa: PLC0415

    if isinstance(value, keras.layers.Layer):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [layer for item in value for layer in _layer_values(item)]
    return []


def _sublayers(layer):
    """The direct sublayers of ``layer``: a model's ``layers``, else its ``Layer``-valued attributes."""
    import keras  # noqa: PLC0415

    if isinstance(layer, keras.Model):  # functional, sequential and subclassed models list them publicly
        return list(layer.layers)
    return [sub for value in vars(layer).values() for sub in _layer_values(value)]


def walk_layers(layer, include_self=True):
    """A layer and every sublayer it holds, at any depth, each once.

    Finds what Keras tracks as sublayers with public means only: the layers
    of a ``keras.Model`` (``model.layers``: a nested functional model, a
    KerasHub backbone) and the ``Layer`` objects any other layer keeps as
    attributes (directly or in lists, tuples and dicts), recursively. The
    same layers as Keras's private ``Layer._flatten_layers``, except the
    ``InputLayer`` of a ``Sequential`` model (which has no weights).

    Args:
        layer: A ``keras.layers.Layer`` (a model is one).
        include_self: Put ``layer`` itself first.

    Returns:
        A list of layers, parents before their sublayers.

    Raises:
        ValueError: If ``layer`` is not a Keras layer.

    Example:

    >>> import keras
    >>> from mmzoo import _keras_compat
    >>> inner = keras.Sequential([keras.layers.Dense(2), keras.layers.BatchNormalization()])
    >>> outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1)])
    >>> sorted(type(x).__name__ for x in _keras_compat.walk_layers(outer, include_self=False))
    ['BatchNormalization', 'Dense', 'Dense', 'Sequential']
    """
    import keras  # noqa: PLC0415

    if not isinstance(layer, keras.layers.Layer):
        raise ValueError(f"`layer` must be a keras.layers.Layer. Received: layer={layer!r}")
    out, seen = [], {id(layer)}
    if include_self:
        out.append(layer)
    queue = collections.deque(_sublayers(layer))
    while queue:
        sub = queue.popleft()
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        out.append(sub)
        queue.extend(_sublayers(sub))
    return out


def update_loss_tracker(model, loss, x):
    """Records ``loss`` in ``model``'s "loss" metric, exactly as Keras's TensorFlow ``train_step`` does.

    Args:
        model: A compiled ``keras.Model``.
        loss: The scalar loss of the batch (before optimizer loss scaling).
        x: The batch's inputs (their first tensor gives the batch size used
            as the metric's sample weight).
    """
    import tensorflow as tf  # noqa: PLC0415
    from keras import tree  # noqa: PLC0415
    from keras.src.losses import loss as loss_module  # private: no public equivalent  # noqa: PLC0415

    batch = tf.shape(next(i for i in tree.flatten(x) if i is not None))[0]
    model._loss_tracker.update_state(loss_module.unscale_loss_for_distribution(loss), sample_weight=batch)


def tensor_consumers(model):
    """``{id(tensor): [layers that take it]}`` over a functional model's graph."""
    consumers = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                consumers.setdefault(id(tensor), []).append(layer)
    return consumers


def call_count(layer):
    """How many times ``layer`` was called in functional graphs (1: one output tensor)."""
    return len(layer._inbound_nodes)


def submodel(inputs, outputs, name=None):
    """``keras.Model(inputs, outputs)`` for intermediate ``inputs``, leaving the model they come from intact.

    When some ``inputs`` are intermediate tensors, Keras clones the graph
    between them and ``outputs``, and the clone of an ``InputLayer`` node
    re-points the ``keras.Input`` tensors among ``inputs`` (which it keeps as
    they are) at the cloned node: the model those tensors came from no
    longer serializes. Their history is put back; the submodel does not need
    it (it keeps its own node map).
    """
    import keras  # noqa: PLC0415

    flat = inputs.values() if isinstance(inputs, dict) else (inputs if isinstance(inputs, (list, tuple)) else [inputs])
    histories = [(t, t._keras_history) for t in flat]
    try:
        return keras.Model(inputs, outputs, name=name)
    finally:
        for tensor, history in histories:
            tensor._keras_history = history


def set_initial_epoch(model, epoch):
    """Makes a ``fit`` whose callbacks run ``on_train_begin`` now start at ``epoch``."""
    model._initial_epoch = epoch
