"""Fine-tuning pretrained branches: freeze/unfreeze by branch name, per-branch
learning-rate multipliers, and the two-phase transfer-learning schedule.

The Keras transfer-learning rule applies: a frozen branch's BatchNormalization
layers run in inference mode (Keras 3 BatchNormalization does when
``trainable=False``), and ``unfreeze`` keeps them frozen by default, so their
statistics are not wrecked by the first fine-tuning batches. A branch's layers
are the model's layers named ``{branch}_...`` (every branch builder prefixes
its layers with the branch name). Changing ``trainable`` needs a re-compile;
``two_phase_fit`` does it for you.
"""

from __future__ import annotations

import numbers
import os

import keras

from mmzoo._keras_compat import walk_layers
from mmzoo.training.backup import TrainingBackup


def _names(branches):
    return [branches] if isinstance(branches, str) else list(branches)


def branch_layers(model, branch):
    """The top-level layers of ``model`` that belong to branch ``branch``.

    Args:
        model: A model built by ``mmzoo.compose`` (or with branch-prefixed layer names).
        branch: The branch name (its input's name, e.g. ``"image"``).

    Returns:
        A non-empty list of layers named ``{branch}_...``.

    Raises:
        ValueError: If no layer belongs to ``branch``.
    """
    layers = [
        layer for layer in model.layers
        if layer.name.startswith(f"{branch}_") and not isinstance(layer, keras.layers.InputLayer)
    ]
    if not layers:
        known = sorted(model.input) if isinstance(model.input, dict) else [model.input.name]
        raise ValueError(
            f"`branch` names no branch of model {model.name!r} (branches: {known}). Received: branch={branch!r}"
        )
    return layers


def freeze(model, branches):
    """Freezes the named branches (their BatchNormalization then runs in inference mode).

    Args:
        model: The model.
        branches: A branch name or a list of names.

    Returns:
        ``model`` (re-compile it before training).

    Raises:
        ValueError: If a name is not a branch of ``model``.

    Example::

        from mmzoo import finetune
        finetune.freeze(model, ["text", "image"])
        model.compile(...)
    """
    for name in _names(branches):
        for layer in branch_layers(model, name):
            layer.trainable = False
    return model


def unfreeze(model, branches, keep_batchnorm_frozen=True):
    """Makes the named branches trainable again.

    Args:
        model: The model.
        branches: A branch name or a list of names.
        keep_batchnorm_frozen: Leave BatchNormalization layers frozen (in
            inference mode, statistics fixed), the Keras transfer-learning rule.

    Returns:
        ``model`` (re-compile it before training).

    Raises:
        ValueError: If a name is not a branch of ``model``.

    Example::

        finetune.unfreeze(model, "image")
        model.compile(...)
    """
    for name in _names(branches):
        for layer in branch_layers(model, name):
            layer.trainable = True
            if keep_batchnorm_frozen:
                for sub in walk_layers(layer):
                    if isinstance(sub, keras.layers.BatchNormalization):
                        sub.trainable = False
    return model


def _variable_key(variable):
    """The id of the backend variable (the TF optimizer updates ``keras.Variable.value``)."""
    return id(variable.value) if isinstance(variable, keras.Variable) else id(variable)


def with_lr_multipliers(optimizer, model, multipliers):
    """A copy of ``optimizer`` whose learning rate is scaled per branch.

    Each variable of branch ``b`` is updated with ``learning_rate *
    multipliers[b]``; other variables (the fusion and head) with the base
    rate. The copy is an instance of a subclass of ``optimizer``'s class made
    here: save the model's weights, not the optimizer, and re-create it after
    loading.

    Args:
        optimizer: A ``keras.optimizers.Optimizer`` (its config is copied).
        model: The model whose branches are named in ``multipliers``.
        multipliers: ``{branch_name: factor > 0}``.

    Returns:
        The new optimizer.

    Raises:
        ValueError: If ``optimizer`` is not an optimizer, a branch name is
            unknown or a factor is not a positive number.

    Example::

        opt = finetune.with_lr_multipliers(keras.optimizers.Adam(1e-4), model, {"text": 0.1})
        model.compile(optimizer=opt, loss=model.loss, metrics=["accuracy"])
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise ValueError(f"`optimizer` must be a keras optimizer. Received: optimizer={optimizer!r}")
    if not isinstance(multipliers, dict) or not multipliers:
        raise ValueError(
            f"`multipliers` must be a non-empty dict {{branch: factor}}. Received: multipliers={multipliers!r}"
        )
    scale = {}
    for name, factor in multipliers.items():
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or factor <= 0:
            raise ValueError(
                f"Learning-rate multipliers must be positive numbers. Received: multipliers[{name!r}]={factor!r}"
            )
        for layer in branch_layers(model, name):
            for weight in layer.weights:
                scale[_variable_key(weight)] = float(factor)
    base = type(optimizer)

    def update_step(self, gradient, variable, learning_rate):
        factor = self.lr_multipliers.get(_variable_key(variable), 1.0)
        if factor != 1.0:
            learning_rate = learning_rate * factor
        return base.update_step(self, gradient, variable, learning_rate)

    cls = type(f"{base.__name__}WithLRMultipliers", (base,), {"update_step": update_step})
    new = cls.from_config(optimizer.get_config())
    new.lr_multipliers = scale
    return new


def _recompile(model, optimizer):
    config = keras.saving.deserialize_keras_object(model.get_compile_config())
    config["optimizer"] = optimizer
    model.compile(**config)


def two_phase_fit(
    model,
    train_data,
    encoders,
    head_epochs=1,
    finetune_epochs=1,
    learning_rate=1e-3,
    finetune_learning_rate=1e-5,
    lr_multipliers=None,
    keep_batchnorm_frozen=True,
    backup_dir=None,
    **fit_kwargs,
):
    """Trains the head with the encoders frozen, then everything at a lower rate.

    Phase 1 freezes ``encoders`` and fits ``head_epochs`` at
    ``learning_rate``; phase 2 unfreezes them (BatchNorm kept frozen) and
    fits ``finetune_epochs`` at ``finetune_learning_rate`` (times
    ``lr_multipliers[branch]`` for a branch's variables). The model must be
    compiled (its loss, metrics and optimizer type are kept).

    Args:
        model: A compiled model.
        train_data: Training data for ``model.fit`` (a dataset, or ``(x, y)``).
        encoders: Branch names of the pretrained encoders.
        head_epochs: Epochs of phase 1.
        finetune_epochs: Epochs of phase 2 (0 skips it).
        learning_rate: Phase-1 learning rate.
        finetune_learning_rate: Phase-2 learning rate.
        lr_multipliers: Optional ``{branch: factor}`` for phase 2.
        keep_batchnorm_frozen: See ``unfreeze``.
        backup_dir: Optional folder for preemption-safe training: each phase
            gets its own ``mmzoo.training.backup.TrainingBackup`` in
            ``{backup_dir}/phase1`` and ``{backup_dir}/phase2``, so a run
            restarted with the same call resumes the phase it was in (a
            shared folder would restore phase 2's state into phase 1).
        **fit_kwargs: Further ``model.fit`` arguments (``validation_data``,
            ``batch_size``, ``callbacks``, ``verbose``...).

    Returns:
        ``(phase1_history, phase2_history)`` (the second is ``None`` when
        ``finetune_epochs`` is 0).

    Raises:
        ValueError: If the model is not compiled or an argument is invalid.

    Example::

        h1, h2 = finetune.two_phase_fit(model, train_ds, ["text", "image"], head_epochs=3, finetune_epochs=2,
                                        validation_data=val_ds)
    """
    if getattr(model, "optimizer", None) is None or not model.compiled:
        raise ValueError("`model` must be compiled (loss and metrics are kept across the phases).")
    for arg, value in (("head_epochs", head_epochs), ("finetune_epochs", finetune_epochs)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"`{arg}` must be a non-negative integer. Received: {arg}={value!r}")
    base_config = model.optimizer.get_config()
    optimizer_cls = type(model.optimizer)

    def optimizer(rate):
        return optimizer_cls.from_config({**base_config, "learning_rate": rate})

    x, y = (train_data if isinstance(train_data, tuple) else (train_data, None))
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])

    def phase_callbacks(phase):
        if backup_dir is None:
            return callbacks
        return [*callbacks, TrainingBackup(os.path.join(backup_dir, phase))]

    freeze(model, encoders)
    _recompile(model, optimizer(learning_rate))
    first = model.fit(x, y, epochs=head_epochs, callbacks=phase_callbacks("phase1"), **fit_kwargs)
    if not finetune_epochs:
        return first, None
    unfreeze(model, encoders, keep_batchnorm_frozen=keep_batchnorm_frozen)
    phase2 = optimizer(finetune_learning_rate)
    if lr_multipliers:
        phase2 = with_lr_multipliers(phase2, model, lr_multipliers)
    _recompile(model, phase2)
    second = model.fit(x, y, epochs=finetune_epochs, callbacks=phase_callbacks("phase2"), **fit_kwargs)
    return first, second
