"""Uni-modal ensemble: train each modality's model alone, then combine their logits with weights fit on validation.

Joint training lets the modality that learns fastest take the gradient and
stop the others early (modality competition). Training every modality's
branch and head *alone*, each with its own early stopping, and only then
combining them, sidesteps that: each encoder learns all it can from its own
modality. Du et al. ("On Uni-Modal Feature Learning in Supervised
Multi-Modal Learning", ICML 2023) found such a uni-modal ensemble at or above
joint training on several benchmarks; on our OpenMoji groups task it is the
fused model that beats the best single modality (see the README's fusion
table).

The result is an ordinary late-fusion Keras model (``compose`` with
``fusion.late("weighted")``): each branch's ``Dense`` stack and logits, a
``LateFusion`` layer whose softmax weights are fit on the validation split
(minimising the head's loss; two to a few numbers, so the validation
accuracy it reports is barely optimistic), and the head's activation. It
saves, exports and serves like any composed model.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from mmzoo import heads as heads_lib
from mmzoo.fusion import LateFusion

WEIGHT_STEPS = 300
WEIGHT_LEARNING_RATE = 0.05


def branch_models(model):
    """One single-modality model per input of a late-fusion ``model``, sharing its layers.

    Args:
        model: A model built by ``compose`` with a ``LateFusion`` layer named
            ``"fusion"`` (inputs ``{name: ...}``, per-branch logits layers
            named ``{name}_logits``).

    Returns:
        ``{name: keras.Model}``: input ``{name: ...}`` -> that branch's own
        prediction (the model's head activation on the branch's logits).
        Training one trains the shared layers of ``model``.

    Raises:
        ValueError: If ``model`` is not such a late-fusion model.
    """
    _late_fusion(model)
    head = heads_lib.from_model(model)
    if head is None:
        raise ValueError(f"Model {model.name!r} has no mmzoo head (HeadActivation named 'output').")
    models = {}
    for name, tensor in model.input.items():
        try:
            logits = model.get_layer(f"{name}_logits").output
        except ValueError:
            raise ValueError(f"Model {model.name!r} has no logits layer {name}_logits for input {name!r}.") from None
        activation = heads_lib.HeadActivation(**head.get_config(), activation=head.activation, dtype="float32",
                                              name=f"{name}_output")
        models[name] = keras.Model({name: tensor}, activation(logits), name=f"{model.name}_{name}_alone")
    return models


def _late_fusion(model):
    try:
        layer = model.get_layer("fusion")
    except ValueError:
        layer = None
    if not isinstance(layer, LateFusion) or layer.mode != "weighted":
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} needs a LateFusion layer named 'fusion' with mode='weighted' "
            "(compose(..., fusion=fusion.late('weighted')))."
        )
    return layer


def _only(name):
    def select(x, y):
        return {name: x[name]}, y

    return select


def fit_branches(model, train_ds, valid_ds, epochs, learning_rate=1e-3, patience=5, callbacks=(), verbose=0):
    """Trains each branch of a late-fusion ``model`` alone, best validation epoch restored.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        train_ds: Training ``tf.data.Dataset`` of ``(dict inputs, targets)``.
        valid_ds: Validation dataset (early stopping on its loss).
        epochs: Most epochs per branch.
        learning_rate: Adam learning rate.
        patience: Early-stopping patience.
        callbacks: Extra callbacks (given to every branch's ``fit``).
        verbose: Keras verbosity.

    Returns:
        ``{name: {"history": dict, "best_epoch": int}}``.
    """
    head = heads_lib.from_model(model)
    out = {}
    for name, alone in branch_models(model).items():
        alone.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=head.loss, metrics=head.metrics())
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        history = alone.fit(train_ds.map(_only(name)), validation_data=valid_ds.map(_only(name)), epochs=epochs,
                            callbacks=[stop, *callbacks], verbose=verbose, shuffle=False)
        out[name] = {"history": history.history, "best_epoch": int(stop.best_epoch) + 1}
    return out


def fit_fusion_weights(model, valid_ds, steps=WEIGHT_STEPS, learning_rate=WEIGHT_LEARNING_RATE):
    """Fits the ``LateFusion`` weights of ``model`` on ``valid_ds`` (the head's loss), branches frozen.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        valid_ds: Validation dataset.
        steps: Full-batch Adam steps on the cached branch logits.
        learning_rate: Their learning rate.

    Returns:
        ``{input name: weight}`` (softmax weights, summing to 1).

    Example::

        weights = fit_fusion_weights(model, valid_ds)   # e.g. {"image": 0.21, "text": 0.79}
    """
    fusion = _late_fusion(model)
    head = heads_lib.from_model(model)
    names = list(model.input)
    logits_model = keras.Model(model.input, [model.get_layer(f"{n}_logits").output for n in names])
    logits, targets = [], []
    for x, y in valid_ds:
        logits.append([tf.cast(z, tf.float32) for z in logits_model(x, training=False)])
        targets.append(y)
    stacked = [tf.concat([batch[i] for batch in logits], 0) for i in range(len(names))]
    targets = tf.concat(targets, 0)
    activation = heads_lib.HeadActivation(**head.get_config(), activation=head.activation, dtype="float32")
    loss_fn = head.loss
    weight_logits = tf.Variable(tf.zeros(len(names)))
    optimizer = keras.optimizers.Adam(learning_rate)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            weights = tf.nn.softmax(weight_logits)
            combined = tf.add_n([weights[i] * z for i, z in enumerate(stacked)])
            loss = loss_fn(targets, activation(combined))
        optimizer.apply_gradients([(tape.gradient(loss, weight_logits), weight_logits)])
    fusion.weight_logits.assign(tf.cast(weight_logits, fusion.weight_logits.dtype))
    weights = np.asarray(tf.nn.softmax(weight_logits))
    return {n: round(float(w), 4) for n, w in zip(names, weights)}
