"""Uni-modal ensemble: train each modality's model alone, then combine their logits with weights fit on validation.

Joint training lets the modality that learns fastest take the gradient and
stop the others early (modality competition). Training every modality's
branch and head *alone*, each with its own early stopping, and only then
combining them, sidesteps that: each encoder learns all it can from its own
modality. Du et al. ("On Uni-Modal Feature Learning in Supervised
Multi-Modal Learning", ICML 2023) found such a uni-modal ensemble at or above
joint training on several benchmarks. Its weights are only as good as the
data they are fit on: when the test holds new groups (a speaker never
heard), fit them on held-out groups too (``fit(group=...)``, or
``out_of_group_logits`` for cross-fitting). On leave-one-speaker-out
AV-digits that is what makes fusion pay (the README's "A new speaker").

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
    @tf.autograph.experimental.do_not_convert
    def select(x, y):
        return {name: x[name]}, y

    return select


def fit_branches(model, train_ds, valid_ds=None, epochs=30, learning_rate=1e-3, patience=5, callbacks=(),
                 verbose=0):
    """Trains each branch of a late-fusion ``model`` alone, best validation epoch restored.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        train_ds: Training ``tf.data.Dataset`` of ``(dict inputs, targets)``.
        valid_ds: Validation dataset (early stopping on its loss), or None:
            every branch trains all ``epochs`` (no selection).
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
        if valid_ds is None:
            history = alone.fit(train_ds.map(_only(name)), epochs=epochs, callbacks=list(callbacks),
                                verbose=verbose, shuffle=False)
            out[name] = {"history": history.history, "best_epoch": epochs}
            continue
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
        history = alone.fit(train_ds.map(_only(name)), validation_data=valid_ds.map(_only(name)), epochs=epochs,
                            callbacks=[stop, *callbacks], verbose=verbose, shuffle=False)
        out[name] = {"history": history.history, "best_epoch": int(stop.best_epoch) + 1}
    return out


def branch_logits(model, dataset):
    """Each branch's logits of a late-fusion ``model`` on ``dataset``, and the targets.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        dataset: ``(dict inputs, targets)`` batches.

    Returns:
        ``({input name: float32 (N, units) array}, targets array)``.
    """
    _late_fusion(model)
    names = list(model.input)
    logits_model = keras.Model(model.input, [model.get_layer(f"{n}_logits").output for n in names])
    logits, targets = [], []
    for x, y in dataset:
        logits.append([np.asarray(tf.cast(z, tf.float32)) for z in logits_model(x, training=False)])
        targets.append(np.asarray(y))
    return {n: np.concatenate([batch[i] for batch in logits]) for i, n in enumerate(names)}, np.concatenate(targets)


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
    logits, targets = branch_logits(model, valid_ds)
    return fit_weights_to_logits(model, logits, targets, steps=steps, learning_rate=learning_rate)


def fit_weights_to_logits(model, logits, targets, steps=WEIGHT_STEPS, learning_rate=WEIGHT_LEARNING_RATE):
    """Fits and sets the ``LateFusion`` weights of ``model`` on given branch logits (the head's loss).

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        logits: ``{input name: (N, units) array}``, one entry per input of
            ``model`` (from ``branch_logits`` or ``out_of_group_logits``).
        targets: The ``N`` targets, as the head's loss takes them.
        steps: Full-batch Adam steps.
        learning_rate: Their learning rate.

    Returns:
        ``{input name: weight}`` (softmax weights, summing to 1).

    Raises:
        ValueError: If ``logits`` does not name exactly the model's inputs,
            or the arrays disagree in length with ``targets``.
    """
    head, names, stacked, targets = _checked_logits(model, logits, targets)
    fusion = _late_fusion(model)
    weight_logits = _fit_weight_logits(head, _activation(head), stacked, targets, steps, learning_rate)
    fusion.weight_logits.assign(tf.cast(weight_logits, fusion.weight_logits.dtype))
    weights = np.asarray(tf.nn.softmax(weight_logits))
    return {n: round(float(w), 4) for n, w in zip(names, weights)}


def _checked_logits(model, logits, targets):
    """``(head, input names, [float32 logits per input], targets array)``, checked against ``model``."""
    _late_fusion(model)
    head = heads_lib.from_model(model)
    names = list(model.input)
    if set(logits) != set(names):
        raise ValueError(f"`logits` must have one entry per input of {model.name!r} ({sorted(names)}). "
                         f"Received: {sorted(logits)}")
    targets = np.asarray(targets)
    for n in names:
        if len(logits[n]) != len(targets):
            raise ValueError(f"`logits[{n!r}]` has {len(logits[n])} rows but `targets` has {len(targets)}.")
    return head, names, [np.asarray(logits[n], "float32") for n in names], targets


def _activation(head):
    return heads_lib.HeadActivation(**head.get_config(), activation=head.activation, dtype="float32")


def _combine(activation, stacked, weight_logits):
    """The head's outputs (``activation``) for the branch logits ``stacked`` under softmax(``weight_logits``)."""
    weights = tf.nn.softmax(weight_logits)
    return activation(tf.add_n([weights[i] * tf.convert_to_tensor(z) for i, z in enumerate(stacked)]))


def _fit_weight_logits(head, activation, stacked, targets, steps, learning_rate):
    """Full-batch Adam on the head's loss over the fusion's weight logits; returns them (a tensor)."""
    stacked, targets = [tf.constant(z) for z in stacked], tf.constant(targets)
    weight_logits = tf.Variable(tf.zeros(len(stacked)))
    optimizer = keras.optimizers.Adam(learning_rate)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = head.loss(targets, _combine(activation, stacked, weight_logits))
        optimizer.apply_gradients([(tape.gradient(loss, weight_logits), weight_logits)])
    return tf.convert_to_tensor(weight_logits)


def cross_fitted_outputs(model, logits, targets, folds=2, seed=0, steps=WEIGHT_STEPS,
                         learning_rate=WEIGHT_LEARNING_RATE):
    """The ensemble's outputs on rows whose fusion weights were fit on the other rows: an honest score.

    Weights fit on validation logits and scored on the same rows look better
    than they are, and ``fusion="auto"`` compares that score with candidates
    that never saw the validation labels. Cross-fitting removes the bias:
    the rows are split into ``folds`` parts and each part is combined with
    weights fit on the others. The model's own weights are not changed.
    On OpenMoji groups (seed 1), the in-sample log loss ranked the ensemble
    (0.6429) above late fusion (0.6471), whose test accuracy was higher.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        logits: ``{input name: (N, units) array}``, one entry per input.
        targets: The ``N`` targets, as the head's loss takes them.
        folds: Parts to cross-fit over (at least 2, at most ``N``).
        seed: Seed of the split into parts.
        steps: Full-batch Adam steps per fit.
        learning_rate: Their learning rate.

    Returns:
        float32 ``(N, units)`` array: the head's outputs, row for row.

    Raises:
        ValueError: If ``logits`` does not name the model's inputs, the
            arrays disagree in length, or ``folds`` is out of range.

    Example::

        logits, y = branch_logits(model, valid_ds)
        honest = cross_fitted_outputs(model, logits, y)   # score these, not the in-sample outputs
    """
    head, _, stacked, targets = _checked_logits(model, logits, targets)
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= len(targets):
        raise ValueError(f"`folds` must be an integer from 2 to the number of rows ({len(targets)}). "
                         f"Received: folds={folds!r}")
    part = np.random.default_rng(seed).permutation(len(targets)) % folds
    activation, outputs = _activation(head), None
    for k in range(folds):
        fit_rows, held = np.flatnonzero(part != k), np.flatnonzero(part == k)
        weight_logits = _fit_weight_logits(head, activation, [z[fit_rows] for z in stacked], targets[fit_rows],
                                           steps, learning_rate)
        held_out = np.asarray(_combine(activation, [z[held] for z in stacked], weight_logits))
        if outputs is None:
            outputs = np.zeros((len(targets), *held_out.shape[1:]), "float32")
        outputs[held] = held_out
    return outputs


def out_of_group_logits(build_model, inputs, targets, groups, epochs, batch_size=32, learning_rate=1e-3, seed=0,
                        verbose=0, return_models=False):
    """Cross-fitted branch logits: each group predicted by branches that never saw it.

    For every distinct value of ``groups`` (a speaker, a patient, a site),
    a fresh late-fusion model from ``build_model()`` has each branch trained
    alone (``fit_branches``, all ``epochs``) on the other groups, and its
    branch logits on the held-out group are kept. Fusion weights fit on
    these logits (``fit_weights_to_logits``) reflect how far each modality
    can be trusted on a *new* group, which a validation split with every
    group on both sides does not show: on leave-one-speaker-out AV-digits
    the audio branch is right on 72% of a known speaker's recordings but
    about 50% of a new speaker's, and weights fit within speakers trust it
    far too much.

    Args:
        build_model: A function of no arguments returning a fresh, untrained
            ``compose`` model with ``fusion.late("weighted")`` (the same
            architecture as the model whose weights will be fit).
        inputs: ``{input name: array}`` with ``N`` rows each.
        targets: ``N`` targets.
        groups: ``N`` group labels; at least two distinct values.
        epochs: Epochs per branch and group.
        batch_size: Examples per batch.
        learning_rate: Adam learning rate.
        seed: Seed of the shuffling.
        verbose: Keras verbosity.
        return_models: Also return the cross-fitted models (one per group,
            in sorted group order), e.g. to ``bag`` them with the final one.

    Returns:
        ``({input name: (N, units) array}, targets array)``, row ``i``
        predicted by branches trained without ``groups[i]``'s rows; with
        ``return_models``, ``(logits, targets, models)``.

    Raises:
        ValueError: If ``groups`` has fewer than two distinct values or its
            length differs from ``targets``.

    Example::

        logits, y = out_of_group_logits(build, x_train, y_train, groups=speakers, epochs=10)
        model = build()
        fit_branches(model, train_ds, epochs=10)
        fit_weights_to_logits(model, logits, y)   # e.g. {"image": 0.73, "audio": 0.27}
    """
    groups = np.asarray(groups)
    targets = np.asarray(targets)
    if groups.shape[:1] != targets.shape[:1]:
        raise ValueError(f"`groups` has {len(groups)} entries but `targets` has {len(targets)}.")
    distinct = np.unique(groups)
    if len(distinct) < 2:
        raise ValueError(f"`groups` needs at least two distinct values to hold one out. Received: {distinct.tolist()}")
    out, models = None, []
    for group in distinct:
        held_out = groups == group
        model = build_model()
        train_ds = tf.data.Dataset.from_tensor_slices(({k: v[~held_out] for k, v in inputs.items()},
                                                       targets[~held_out]))
        train_ds = train_ds.shuffle(int((~held_out).sum()), seed=seed).batch(batch_size)
        fit_branches(model, train_ds, None, epochs, learning_rate=learning_rate, verbose=verbose)
        test_ds = tf.data.Dataset.from_tensor_slices(({k: v[held_out] for k, v in inputs.items()},
                                                      targets[held_out])).batch(256)
        logits, _ = branch_logits(model, test_ds)
        if out is None:
            out = {n: np.zeros((len(targets), *z.shape[1:]), np.float32) for n, z in logits.items()}
        for n, z in logits.items():
            out[n][held_out] = z
        if return_models:
            models.append(model)
    return (out, targets, models) if return_models else (out, targets)


def bag(model, members, name=None):
    """A late-fusion model whose branch logits are the mean over ``model`` and ``members``.

    Bagging lowers the variance of each modality's prediction: the
    cross-fitted models of ``out_of_group_logits(..., return_models=True)``
    were each trained without one group, so averaging their branch logits
    with those of ``model`` (trained on every group) costs no extra
    training. The result keeps ``model``'s fusion weights and head (the
    layers are shared, not copied), and its averaged logits layers are named
    ``{input}_logits``, so it is itself a late-fusion model for this module,
    and it saves (``safe_mode=True``), exports and serves like one; it is
    ``1 + len(members)`` times the size and prediction cost.

    Args:
        model: A ``compose`` model with ``fusion.late("weighted")``.
        members: Models of the same inputs and heads (e.g. the cross-fitted
            ones), each a ``compose`` model with ``fusion.late("weighted")``.
        name: Name of the bagged model (default ``{model.name}_bagged``).

    Returns:
        A ``keras.Model`` with ``model``'s inputs and output.

    Raises:
        ValueError: If ``members`` is empty, or a member is not a late-fusion
            model of the same inputs and logits shapes as ``model``.

    Example::

        logits, y, members = out_of_group_logits(build, x, y, groups=speakers, epochs=10, return_models=True)
        fit_weights_to_logits(model, logits, y)
        served = bag(model, members)   # the mean of 1 + len(groups) models' branch logits
    """
    fusion = _late_fusion(model)
    members = list(members)
    if not members:
        raise ValueError("`members` must hold at least one model to bag with `model`.")
    names = list(model.input)  # the order ``compose`` gave the fusion its logits
    shapes = {n: tuple(model.get_layer(f"{n}_logits").output.shape[1:]) for n in names}
    for i, member in enumerate(members):
        _late_fusion(member)
        member_shapes = {}
        for n in member.input:
            try:
                member_shapes[n] = tuple(member.get_layer(f"{n}_logits").output.shape[1:])
            except ValueError:
                member_shapes[n] = None
        if member_shapes != shapes:
            raise ValueError(f"`members[{i}]` ({member.name!r}) must have the inputs and logits shapes of "
                             f"{model.name!r}: {shapes}. Received: {member_shapes}")
    inputs = {n: keras.Input(shape=model.input[n].shape[1:], dtype=model.input[n].dtype, name=n)
              for n in model.input}
    all_logits = {n: [] for n in names}
    for i, member in enumerate([model, *members]):
        logits_model = keras.Model(member.input, {n: member.get_layer(f"{n}_logits").output for n in names},
                                   name=f"member{i}")
        for n, z in logits_model(inputs).items():
            all_logits[n].append(z)
    averaged = [keras.layers.Average(name=f"{n}_logits")(all_logits[n]) for n in names]
    outputs = model.get_layer("output")(fusion(averaged))
    return keras.Model(inputs, outputs, name=name or f"{model.name}_bagged")
