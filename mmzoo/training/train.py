"""``train_and_evaluate``: the main job as a library function.

``mmzoo train`` is a thin wrapper over it (see ``mmzoo.cli``). It runs
unchanged on one CPU, several GPUs, a TPU or several workers through
``tf.distribute`` (``strategy=``), with mixed precision (``precision=``),
XLA (``jit_compile=``), several steps per ``tf.function`` call
(``steps_per_execution=``) and preemption-safe backups (``backup_dir=``).

Training paths:

* every strategy but ``MultiWorkerMirroredStrategy``: Keras ``Model.fit``
  (model, compile and optimizer inside ``strategy.scope()``), with
  ``mmzoo.training.backup.TrainingBackup`` for ``backup_dir`` (weights,
  optimizer, random-generator states and history: an exact resume);
* ``MultiWorkerMirroredStrategy``: ``mmzoo.training.distributed_loop.fit``, a custom
  ``strategy.run`` loop, because Keras 3 ``fit`` fails under that strategy on
  TF 2.21 ("unsupported type PerReplica"). Metrics are evaluated after
  training on a single-device copy of the trained weights; only the chief
  keeps the plots, metrics and SavedModel (the other workers write to a
  temporary folder and delete it).
"""

from __future__ import annotations

import hashlib
import json
import os

import keras
import numpy as np
import tensorflow as tf

from mmzoo import _validation as check
from mmzoo import datasets, zoo
from mmzoo import heads as heads_lib
from mmzoo.serving.saved_model import export
from mmzoo.training import distribute, distributed_loop, frontend, plots
from mmzoo.training.backup import TrainingBackup

# Zoo models and the bundled dataset each one trains on.
TASKS = {
    "av_digits_concat": datasets.av_digits,
    "av_digits_attention": datasets.av_digits,
}
DEFAULT_MODEL = "av_digits_concat"
VALID_FRACTION = 0.1  # of the train pairs, held out for validation (selection); test is only evaluated


def train_and_evaluate(
    model_name=DEFAULT_MODEL,
    epochs=15,
    batch_size=32,
    output_dir="saved_models",
    seed=0,
    verbose=1,
    export_model=True,
    strategy=None,
    precision="float32",
    steps_per_execution=1,
    backup_dir=None,
    jit_compile=None,
    deterministic=False,
    cache_frontend=False,
    **overrides,
):
    """Trains a zoo model on its bundled dataset, evaluates it and exports it.

    A stratified 10% of the train pairs is held out for validation: it is
    the ``val_*`` of the history and selects the epoch whose weights are kept
    (best validation loss; with ``backup_dir`` the last epoch, since a
    resumed run cannot see the weights of epochs before the restart). The
    test split is evaluated once, at the end.

    Writes into ``output_dir``: ``{model_name}/`` (the SavedModel),
    ``{model_name}.training.png`` (curves), ``{model_name}.confusion.png``
    and ``{model_name}.metrics.json`` (test metrics, the history and a
    SHA-256 of the trained weights). Under several workers only the chief
    keeps them.

    Args:
        model_name: A zoo model with a bundled dataset (see ``TASKS``).
        epochs: Training epochs.
        batch_size: Global examples per batch (summed over all replicas).
        output_dir: Folder for the export and the figures.
        seed: Seed of weights initialisation, dropout and shuffling.
        verbose: Keras progress verbosity (0, 1 or 2).
        export_model: Write the SavedModel.
        strategy: A ``tf.distribute.Strategy``, a kind for
            ``mmzoo.distribute.strategy`` (``"auto"``, ``"default"``,
            ``"mirrored"``, ``"tpu"``, ``"multi_worker"``), or ``None`` for
            the current (default) strategy.
        precision: ``"float32"``, ``"mixed_float16"``, ``"mixed_bfloat16"``
            or ``"auto"`` (``mmzoo.distribute.auto_precision``: bf16 on a TPU
            or a CPU with native bf16, float16 on a GPU with tensor cores,
            else float32); the Keras global policy while building and
            training, restored afterwards. The metrics file records the one
            used.
        steps_per_execution: Training steps per ``tf.function`` call. On one
            machine it must divide the training steps of an epoch: Keras runs
            whole calls, so 8 per call on an epoch of 57 steps would train 64
            steps and take the first 7 batches of the next epoch.
        backup_dir: Folder for ``mmzoo.training.backup.TrainingBackup`` (the
            training state after each epoch, random-generator states
            included; a restarted run resumes there, gets the full history
            and, with ``deterministic``, ends with bit-identical weights). It
            is removed once the outputs are written. Any ``tf.io.gfile``
            path (``gs://...``). ``None`` for no backup.
        jit_compile: ``True``/``False`` forces XLA on/off; ``None`` keeps the
            zoo model's default.
        deterministic: Enable TensorFlow op determinism (reproducible runs;
            stays on for the process).
        cache_frontend: Compute the model's front end (level normalisation
            and log-mel of the audio: ``mmzoo.training.frontend``) once, in
            ``tf.data``, and cache it; each epoch then trains the model's
            trunk on the cached features, in the same order, and the export
            keeps the front end. One machine only (a ``ValueError`` under
            several workers).
        **overrides: Builder arguments of the zoo model.

    Returns:
        A dict with ``test`` metrics, ``history``, ``model``, the written
        ``paths``, ``confusion``, ``weights_sha256`` and ``chief``.

    Raises:
        ValueError: If ``model_name`` has no bundled dataset, an argument is
            invalid (``steps_per_execution`` not dividing an epoch's steps), or
            ``output_dir`` / ``backup_dir`` cannot be written (checked before
            training).

    Example::

        result = mmzoo.training.train.train_and_evaluate(epochs=5, output_dir="/tmp/run")
        result["test"]["accuracy"] > 0.5  # True
        mmzoo.training.train.train_and_evaluate(
            strategy="mirrored", precision="mixed_bfloat16", backup_dir="/tmp/backup"
        )
    """
    if model_name not in TASKS:
        zoo.get(model_name)  # unknown names get the registry's message
        raise ValueError(
            f"Zoo model {model_name!r} has no bundled dataset to train on; models with one: "
            f"{', '.join(sorted(TASKS))}. Build it with mmzoo.build({model_name!r}) and fit it on your data."
        )
    for arg, value in (("epochs", epochs), ("batch_size", batch_size), ("steps_per_execution", steps_per_execution)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    if precision not in distribute.PRECISION_CHOICES:
        raise ValueError(
            f"`precision` must be one of {', '.join(distribute.PRECISION_CHOICES)}. Received: precision={precision!r}"
        )
    if not isinstance(cache_frontend, bool):
        raise ValueError(f"`cache_frontend` must be True or False. Received: cache_frontend={cache_frontend!r}")
    if jit_compile not in (None, True, False):
        raise ValueError(f"`jit_compile` must be None, True or False. Received: jit_compile={jit_compile!r}")
    if backup_dir is not None and not (isinstance(backup_dir, (str, os.PathLike)) and str(backup_dir)):
        raise ValueError(f"`backup_dir` must be a folder path or None. Received: backup_dir={backup_dir!r}")
    check.writable_folder("output_dir", output_dir)  # before training, not after it
    if backup_dir is not None:
        check.writable_folder("backup_dir", backup_dir)
    strategy = _resolve_strategy(strategy)
    precision = distribute.resolve_precision(precision, strategy)
    multi_worker = distribute.is_multi_worker(strategy)
    if multi_worker and cache_frontend:
        raise ValueError("`cache_frontend` works on one machine; under several workers (TF_CONFIG) train on raw "
                         "inputs. Received: cache_frontend=True")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    def load(**kwargs):  # train / validation (a stratified 10% of train) / test
        return TASKS[model_name](valid_fraction=VALID_FRACTION, **kwargs)

    train_ds, valid_ds, test_ds = load(batch_size=batch_size, seed=seed)
    steps_per_epoch = None
    if multi_worker:  # every worker must run the same number of steps
        train_ds = load(batch_size=batch_size, seed=seed, drop_remainder=True)[0]
    else:  # per-epoch order fixed by (seed, epoch): resumable, and the same under MirroredStrategy
        train_ds, steps_per_epoch = _epoch_seeded_train_ds(
            load, batch_size, seed, TrainingBackup.epochs_done(backup_dir), epochs
        )
        if steps_per_epoch % steps_per_execution:
            divisors = [d for d in range(1, steps_per_epoch + 1) if steps_per_epoch % d == 0]
            raise ValueError(
                f"`steps_per_execution` must divide the {steps_per_epoch} training steps of an epoch (batch_size="
                f"{batch_size}): Keras runs whole calls, so an epoch would run into the next one's batches. "
                f"Divisors: {', '.join(map(str, divisors))}. Received: steps_per_execution={steps_per_execution}"
            )

    with distribute.precision_policy(precision):
        with strategy.scope():
            model = zoo.build(model_name, **overrides)
            _recompile(model, steps_per_execution, jit_compile)
            trainer = model
            if cache_frontend:  # the same batches, with the front end computed once and cached
                trainer, features = frontend.compiled_trunk(model)
                train_ds, _ = _epoch_seeded_train_ds(
                    load, batch_size, seed, TrainingBackup.epochs_done(backup_dir), epochs, features
                )
                valid_ds = valid_ds.map(features, num_parallel_calls=tf.data.AUTOTUNE).cache()
        if multi_worker:
            history = distributed_loop.fit(
                model, strategy, train_ds, epochs, batch_size, steps_per_execution, backup_dir, verbose
            )
            model = _single_device_copy(model, model_name, overrides)
        else:
            # Removed once the outputs are written: a kill during the export does not cost the training.
            backup = None if backup_dir is None else TrainingBackup(backup_dir, delete_when_done=False)
            if backup is None:  # keep the best validation epoch (a resumed run cannot see earlier epochs')
                callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=epochs,
                                                           restore_best_weights=True)]
            else:
                callbacks = [backup]
            fitted = trainer.fit(
                train_ds, validation_data=valid_ds, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose,
                callbacks=callbacks,
            )
            history = fitted.history if backup is None else backup.history
        test = model.evaluate(test_ds, verbose=0, return_dict=True)
        weights_sha256 = weights_digest(model)
        chief = distribute.is_chief() if multi_worker else True
        with distribute.chief_output_dir(output_dir, chief) as out:
            tf.io.gfile.makedirs(out)
            paths, matrix = _write_outputs(
                model, model_name, test_ds, test, history, out, export_model,
                {"epochs": epochs, "batch_size": batch_size, "seed": seed, "strategy": type(strategy).__name__,
                 "num_replicas": strategy.num_replicas_in_sync, "precision": precision,
                 "weights_sha256": weights_sha256},
            )
        if not multi_worker and backup is not None:
            backup.delete()
    return {"test": test, "history": history, "model": model, "paths": paths if chief else {}, "confusion": matrix,
            "weights_sha256": weights_sha256, "chief": chief}


def weights_digest(model):
    """SHA-256 hex digest of a model's weights (equal digests: identical weights).

    Example:

    >>> import keras
    >>> from mmzoo.training.train import weights_digest
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    >>> digest = weights_digest(model)
    >>> len(digest), digest == weights_digest(model)
    (64, True)
    >>> _ = model.layers[0].bias.assign([1.0, 0.0])
    >>> weights_digest(model) == digest
    False
    """
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()


def _resolve_strategy(strategy):
    if strategy is None:
        return tf.distribute.get_strategy()
    if isinstance(strategy, str):
        return distribute.strategy(strategy)
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    raise ValueError(
        f"`strategy` must be a tf.distribute.Strategy, one of {', '.join(distribute.KINDS)} or None. "
        f"Received: strategy={strategy!r}"
    )


def _recompile(model, steps_per_execution, jit_compile):
    """Recompiles with a fresh optimizer (call inside the strategy scope)."""
    if steps_per_execution == 1 and jit_compile is None:
        return
    config = model.get_compile_config()
    config["steps_per_execution"] = steps_per_execution
    if jit_compile is not None:
        config["jit_compile"] = jit_compile
    model.compile_from_config(config)


def _single_device_copy(model, model_name, overrides):
    """The same model outside any strategy, with ``model``'s trained weights."""
    copy = zoo.build(model_name, **overrides)
    copy.set_weights(model.get_weights())
    return copy


def _epoch_seeded_train_ds(load, batch_size, seed, first_epoch, epochs, features=None):
    """Training batches of epochs ``first_epoch..epochs-1``, each shuffled by ``(seed, epoch)`` alone.

    A run resumed from a backup then sees exactly the batches the
    uninterrupted run would have seen, and a ``MirroredStrategy`` run the
    same global batches as a single-device one. ``features`` (a map
    function, ``frontend.compiled_trunk``'s) is applied once to the ordered
    batches, whose results are cached and then shuffled for every epoch.
    Returns ``(dataset, steps_per_epoch)``.
    """
    ordered = load(batch_size=batch_size, shuffle=False, seed=seed)[0]
    steps = int(ordered.cardinality())
    if features is not None:
        ordered = ordered.map(features, num_parallel_calls=tf.data.AUTOTUNE).cache()
    examples = ordered.unbatch()

    def one_epoch(epoch):
        # reshuffle_each_iteration=False: a distributed copy of the dataset (MirroredStrategy
        # re-creates it on its devices) must draw the same order, which re-seeded reshuffling
        # does not.
        order = examples.shuffle(steps * batch_size, seed=seed * 1_000_003 + epoch, reshuffle_each_iteration=False)
        return order.batch(batch_size)

    epoch_datasets = [one_epoch(epoch) for epoch in range(first_epoch, max(epochs, first_epoch + 1))]
    train_ds = epoch_datasets[0]
    for ds in epoch_datasets[1:]:
        train_ds = train_ds.concatenate(ds)
    return train_ds.prefetch(tf.data.AUTOTUNE), steps


def _write_outputs(model, model_name, test_ds, test, history, out, export_model, info):
    """Curves, confusion matrix (labelled with the class names the model's head carries), metrics, export."""
    base = os.path.join(out, model_name)
    paths = {"curves": plots.plot_history(history, f"{base}.training.png", title=f"{model_name}: training curves",
                                          split_names=("train", "validation"))}
    head = heads_lib.from_model(model)
    if head.kind not in ("multiclass", "binary"):
        raise ValueError(f"train_and_evaluate writes a confusion matrix of a classifier; {model_name!r} ends in a "
                         f"{head.kind} head.")
    labels = np.concatenate([y.numpy() for _, y in test_ds]).reshape(-1).astype(int)
    probabilities = model.predict(test_ds, verbose=0)
    if head.kind == "binary":
        predictions = (probabilities[:, 0] >= head.threshold).astype(int)
    else:
        predictions = np.argmax(probabilities, axis=-1)
    num_classes = 2 if head.kind == "binary" else head.units
    class_names = list(head.class_names) if head.class_names else [str(i) for i in range(num_classes)]
    info = {**info, "task": head.kind, "class_names": class_names}
    matrix = plots.confusion_matrix(labels, predictions, len(class_names))
    paths["confusion"] = plots.plot_confusion_matrix(
        matrix, class_names, f"{base}.confusion.png", title=f"{model_name}: test accuracy {test['accuracy']:.3f}"
    )
    if export_model:
        paths["saved_model"] = export(model, base, preprocessing="av_digits")
    with tf.io.gfile.GFile(f"{base}.metrics.json", "w") as f:
        json.dump(
            {"model": model_name, **info, "test": test,
             "history": {k: [float(v) for v in vs] for k, vs in history.items()}},
            f,
            indent=2,
        )
    paths["metrics"] = f"{base}.metrics.json"
    return paths, matrix
