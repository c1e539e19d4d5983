"""``train_and_evaluate``: the main job as a library function.

``mmzoo train`` is a thin wrapper over it (see ``mmzoo.cli``). It runs
unchanged on one CPU, several GPUs, a TPU or several workers through
``tf.distribute`` (``strategy=``), with mixed precision (``precision=``),
XLA (``jit_compile=``), several steps per ``tf.function`` call
(``steps_per_execution=``) and preemption-safe backups (``backup_dir=``).

Training paths:

* every strategy but ``MultiWorkerMirroredStrategy``: Keras ``Model.fit``
  (model, compile and optimizer inside ``strategy.scope()``), with
  ``keras.callbacks.BackupAndRestore`` for ``backup_dir``;
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

from mmzoo import datasets, zoo
from mmzoo.training import distribute, distributed_loop, plots
from mmzoo.serving.saved_model import export

# Zoo models and the bundled dataset each one trains on.
TASKS = {
    "av_digits_concat": datasets.av_digits,
    "av_digits_attention": datasets.av_digits,
}
DEFAULT_MODEL = "av_digits_concat"
_HISTORY_FILE = "mmzoo_history.json"


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
    **overrides,
):
    """Trains a zoo model on its bundled dataset, evaluates it and exports it.

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
        precision: ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``;
            the Keras global policy while building and training, restored
            afterwards.
        steps_per_execution: Training steps per ``tf.function`` call.
        backup_dir: Folder for ``keras.callbacks.BackupAndRestore`` (the
            training state after each epoch; a restarted run resumes there
            and gets the full history). ``None`` for no backup.
        jit_compile: ``True``/``False`` forces XLA on/off; ``None`` keeps the
            zoo model's default.
        deterministic: Enable TensorFlow op determinism (reproducible runs;
            stays on for the process).
        **overrides: Builder arguments of the zoo model.

    Returns:
        A dict with ``test`` metrics, ``history``, ``model``, the written
        ``paths``, ``confusion``, ``weights_sha256`` and ``chief``.

    Raises:
        ValueError: If ``model_name`` has no bundled dataset or an argument
            is invalid.

    Example:

    >>> result = mmzoo.training.train.train_and_evaluate(epochs=5, output_dir="/tmp/run")
    >>> result["test"]["accuracy"] > 0.5
    True
    >>> mmzoo.training.train.train_and_evaluate(strategy="mirrored", precision="mixed_bfloat16", backup_dir="/tmp/backup")
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
    if precision not in distribute.PRECISIONS:
        raise ValueError(f"`precision` must be one of {', '.join(distribute.PRECISIONS)}. Received: precision={precision!r}")
    if jit_compile not in (None, True, False):
        raise ValueError(f"`jit_compile` must be None, True or False. Received: jit_compile={jit_compile!r}")
    if backup_dir is not None and not (isinstance(backup_dir, (str, os.PathLike)) and str(backup_dir)):
        raise ValueError(f"`backup_dir` must be a folder path or None. Received: backup_dir={backup_dir!r}")
    strategy = _resolve_strategy(strategy)
    multi_worker = distribute.is_multi_worker(strategy)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    load = TASKS[model_name]
    train_ds, test_ds = load(batch_size=batch_size, seed=seed)
    steps_per_epoch = None
    if multi_worker:  # every worker must run the same number of steps
        train_ds, _ = load(batch_size=batch_size, seed=seed, drop_remainder=True)
    else:  # per-epoch order fixed by (seed, epoch): resumable, and the same under MirroredStrategy
        train_ds, steps_per_epoch = _epoch_seeded_train_ds(load, batch_size, seed, _epochs_done(backup_dir), epochs)

    with distribute.precision_policy(precision):
        with strategy.scope():
            model = zoo.build(model_name, **overrides)
            _recompile(model, steps_per_execution, jit_compile)
        if multi_worker:
            history = distributed_loop.fit(
                model, strategy, train_ds, epochs, batch_size, steps_per_execution, backup_dir, verbose
            )
            model = _single_device_copy(model, model_name, overrides)
        else:
            callbacks = _backup_callbacks(backup_dir)
            fitted = model.fit(
                train_ds, validation_data=test_ds, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=verbose,
                callbacks=callbacks,
            )
            history = callbacks[1].history if callbacks else fitted.history
        test = model.evaluate(test_ds, verbose=0, return_dict=True)
        weights_sha256 = weights_digest(model)
        chief = distribute.is_chief() if multi_worker else True
        with distribute.chief_output_dir(output_dir, chief) as out:
            os.makedirs(out, exist_ok=True)
            paths, matrix = _write_outputs(
                model, model_name, test_ds, test, history, out, export_model,
                {"epochs": epochs, "batch_size": batch_size, "seed": seed, "strategy": type(strategy).__name__,
                 "num_replicas": strategy.num_replicas_in_sync, "precision": precision,
                 "weights_sha256": weights_sha256},
            )
    return {"test": test, "history": history, "model": model, "paths": paths if chief else {}, "confusion": matrix,
            "weights_sha256": weights_sha256, "chief": chief}


def weights_digest(model):
    """SHA-256 hex digest of a model's weights (equal digests: identical weights).

    Example:

    >>> mmzoo.training.train.weights_digest(model)[:8]
    '3f2a9c1e'
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


class _ResumableHistory(keras.callbacks.Callback):
    """Keeps the epoch logs in ``backup_dir`` so that a resumed run has the full history."""

    def __init__(self, backup_dir):
        super().__init__()
        self.path = os.path.join(backup_dir, _HISTORY_FILE)
        self.history = {}

    def on_train_begin(self, logs=None):
        self.history, self._first = {}, True
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.history = json.load(f)

    def on_epoch_begin(self, epoch, logs=None):
        if self._first:  # ``epoch``: the epochs BackupAndRestore restored
            self.history, self._first = {k: v[:epoch] for k, v in self.history.items()}, False

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        with open(self.path, "w") as f:
            json.dump(self.history, f)


def _epochs_done(backup_dir):
    """Finished epochs recorded by ``BackupAndRestore`` in ``backup_dir`` (0 when none)."""
    if backup_dir is None:
        return 0
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f).get("epoch", 0))


def _epoch_seeded_train_ds(load, batch_size, seed, first_epoch, epochs):
    """Training batches of epochs ``first_epoch..epochs-1``, each shuffled by ``(seed, epoch)`` alone.

    A run resumed from a backup then sees exactly the batches the
    uninterrupted run would have seen, and a ``MirroredStrategy`` run the
    same global batches as a single-device one. Returns ``(dataset,
    steps_per_epoch)``.
    """
    ordered, _ = load(batch_size=batch_size, shuffle=False, seed=seed)
    steps = int(ordered.cardinality())
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


def _backup_callbacks(backup_dir):
    if backup_dir is None:
        return []
    os.makedirs(backup_dir, exist_ok=True)
    # BackupAndRestore deletes backup_dir when training ends, history file included.
    return [keras.callbacks.BackupAndRestore(str(backup_dir)), _ResumableHistory(str(backup_dir))]


def _write_outputs(model, model_name, test_ds, test, history, out, export_model, info):
    base = os.path.join(out, model_name)
    paths = {"curves": plots.plot_history(history, f"{base}.training.png")}
    labels = np.concatenate([y.numpy() for _, y in test_ds])
    predictions = np.argmax(model.predict(test_ds, verbose=0), axis=-1)
    class_names = [str(i) for i in range(model.output.shape[-1])]
    matrix = plots.confusion_matrix(labels, predictions, len(class_names))
    paths["confusion"] = plots.plot_confusion_matrix(
        matrix, class_names, f"{base}.confusion.png", title=f"{model_name}: test accuracy {test['accuracy']:.3f}"
    )
    if export_model:
        paths["saved_model"] = export(model, base, preprocessing="av_digits")
    with open(f"{base}.metrics.json", "w") as f:
        json.dump(
            {"model": model_name, **info, "test": test,
             "history": {k: [float(v) for v in vs] for k, vs in history.items()}},
            f,
            indent=2,
        )
    paths["metrics"] = f"{base}.metrics.json"
    return paths, matrix
