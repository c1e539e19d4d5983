"""A custom distributed training loop, for ``MultiWorkerMirroredStrategy``.

Why: on TF 2.21 / Keras 3.15, ``Model.fit`` under
``MultiWorkerMirroredStrategy`` fails ("Attempt to convert a value
(PerReplica...) with an unsupported type"; open upstream Keras bugs since TF
2.16). This loop is TensorFlow's documented custom-training recipe instead:
``strategy.run`` of a step inside a ``tf.function``,
``tf.nn.compute_average_loss`` with the global batch size, the model's Keras
optimizer (created inside ``strategy.scope()``) applying the all-reduced
gradients, and ``strategy.reduce`` of the loss. The workers' weights stay
identical; the float non-trainable variables (BatchNormalization moving
statistics, updated per replica) are averaged over the replicas after each
epoch so that every worker ends with the same model. Evaluation runs after
training (see ``mmzoo.training.train``).

Preemption safety: with ``backup_dir`` the model, optimizer, epoch counter
and history are checkpointed after each epoch (``tf.train.Checkpoint``; the
chief in ``backup_dir``, other workers in a temporary folder inside it) and a
restarted run resumes after the last finished epoch; the backup is deleted
once training ends, like ``keras.callbacks.BackupAndRestore``.

Example (on every worker, with ``TF_CONFIG`` set)::

    import mmzoo
    from mmzoo.training import distributed_loop

    strategy = mmzoo.distribute.strategy("multi_worker")
    with strategy.scope():
        model = mmzoo.build("av_digits_concat")
    train_ds, _ = mmzoo.datasets.av_digits(batch_size=64, drop_remainder=True)
    history = distributed_loop.fit(model, strategy, train_ds, epochs=3, global_batch_size=64)
"""

from __future__ import annotations

import contextlib
import json
import os
import time

import keras
import tensorflow as tf

from mmzoo import _gfile
from mmzoo.training import distribute

_HISTORY_FILE = "history.json"


def per_example_loss(model):
    """The compiled loss of ``model`` with ``reduction=None`` (one value per example).

    Raises:
        ValueError: If ``model`` is not compiled with a single Keras loss.
    """
    loss = getattr(model, "loss", None)
    if not isinstance(loss, keras.losses.Loss):
        raise ValueError(
            f"The distributed loop needs a model compiled with one keras.losses.Loss. Received: loss={loss!r}"
        )
    config = keras.losses.serialize(loss)
    config["config"]["reduction"] = None
    return keras.losses.deserialize(config)


def _correct(y, pred):
    if pred.shape[-1] == 1:
        hits = tf.equal(tf.cast(pred > 0.5, tf.float32), tf.cast(tf.reshape(y, tf.shape(pred)), tf.float32))
    else:
        hits = tf.equal(tf.argmax(pred, axis=-1, output_type=tf.int32), tf.cast(tf.reshape(y, [-1]), tf.int32))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def make_train_function(model, strategy, global_batch_size):
    """Returns ``train_steps(iterator, steps) -> (summed loss, correct)``, a ``tf.function``.

    Each step runs on every replica with ``strategy.run``; the loss is
    averaged over the *global* batch (``tf.nn.compute_average_loss``), scaled
    for mixed float16 by the optimizer, and reduced across replicas with
    ``strategy.reduce``. ``steps`` steps run per call (``steps_per_execution``).

    Args:
        model: A compiled Keras model built inside ``strategy.scope()``.
        strategy: The ``tf.distribute.Strategy``.
        global_batch_size: Examples per step over all replicas.

    Returns:
        The ``tf.function``.
    """
    optimizer = model.optimizer
    loss_fn = per_example_loss(model)

    def step(batch):
        x, y = batch
        with tf.GradientTape() as tape:
            pred = model(x, training=True)
            loss = tf.nn.compute_average_loss(loss_fn(y, pred), global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = optimizer.scale_loss(loss)
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss, _correct(y, tf.cast(pred, tf.float32))

    @tf.function
    def train_steps(iterator, steps):
        total_loss, total_correct = tf.constant(0.0), tf.constant(0.0)
        for _ in tf.range(steps):
            loss, correct = strategy.run(step, args=(next(iterator),))
            total_loss += strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            total_correct += strategy.reduce(tf.distribute.ReduceOp.SUM, correct, axis=None)
        return total_loss, total_correct

    return train_steps


def make_sync_function(model, strategy):
    """Returns a ``tf.function`` averaging the float non-trainable variables over replicas.

    Keras 3 ``BatchNormalization`` updates its moving statistics from each
    replica's own batches, so under several workers they drift apart while
    the trained weights stay identical. Averaging them (each epoch) keeps
    every worker's model identical.

    Args:
        model: A Keras model built inside ``strategy.scope()``.
        strategy: The ``tf.distribute.Strategy``.

    Returns:
        The ``tf.function`` (no arguments, call in cross-replica context).
    """
    variables = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]

    @tf.function
    def sync():
        for v in variables:
            local = strategy.run(lambda v=v: tf.identity(v.value))
            v.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None))

    return sync


class _Backup:
    """Epoch-level checkpoints of model, optimizer, epoch and history."""

    def __init__(self, model, backup_dir):
        self.backup_dir = backup_dir
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=self.epoch)
        self.write_path = distribute.write_dir(backup_dir)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_path, max_to_keep=1)

    def restore(self):
        """Restores the chief's last backup; returns the history so far."""
        latest = tf.train.latest_checkpoint(self.backup_dir)
        history_path = os.path.join(self.backup_dir, _HISTORY_FILE)
        if latest is None or not tf.io.gfile.exists(history_path):
            return {}
        self.checkpoint.restore(latest).expect_partial()
        with _gfile.open_text(history_path) as f:
            history = json.load(f)
        return {k: v[: int(self.epoch.numpy())] for k, v in history.items()}

    def save(self, epoch, history):
        # The history first (atomically, locally), then the checkpoint: a kill in between leaves a history one
        # epoch ahead, which ``restore`` truncates to the checkpoint's epoch.
        self.epoch.assign(epoch)
        path = os.path.join(self.write_path, _HISTORY_FILE)
        _gfile.write_text(f"{path}.tmp", json.dumps(history))
        tf.io.gfile.rename(f"{path}.tmp", path, overwrite=True)
        self.manager.save()

    def delete(self):
        """Removes this task's files; the last task to finish removes ``backup_dir``."""
        distribute.cleanup_write_dir(self.write_path, self.backup_dir)
        if distribute.is_chief():  # keep the workers' temporary folders: they may still be saving
            for name in tf.io.gfile.listdir(self.backup_dir):
                if not name.startswith("workertemp_"):
                    path = os.path.join(self.backup_dir, name)
                    _gfile.remove_tree(path) if tf.io.gfile.isdir(path) else tf.io.gfile.remove(path)
        # Another task may still have files there; it removes the folder when done. (Only locally: a remote
        # folder such as a GCS prefix goes with its last file.)
        if not _gfile.is_remote(self.backup_dir):
            with contextlib.suppress(OSError):
                os.rmdir(self.backup_dir)


def fit(model, strategy, dataset, epochs, global_batch_size, steps_per_execution=1, backup_dir=None, verbose=0):
    """Trains ``model`` with a custom loop under ``strategy``.

    Args:
        model: A compiled Keras model built inside ``strategy.scope()``.
        strategy: A ``tf.distribute.Strategy`` (any kind; made for
            ``MultiWorkerMirroredStrategy``).
        dataset: Training ``tf.data.Dataset`` batched with the global batch
            size and ``drop_remainder=True`` (every worker then runs the same
            number of steps).
        epochs: Training epochs.
        global_batch_size: The dataset's batch size.
        steps_per_execution: Steps run per ``tf.function`` call.
        backup_dir: Folder for epoch backups (resume after preemption);
            ``None`` for none.
        verbose: ``0`` silent, else one line per epoch.

    Returns:
        The history: ``{"loss": [...], "accuracy": [...]}``, one value per epoch.

    Raises:
        ValueError: If the dataset has an unknown or zero number of batches.
    """
    steps = int(dataset.cardinality())
    if steps <= 0:
        raise ValueError(
            f"The training dataset needs a known, positive number of batches. Received: cardinality={steps}"
        )
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        backup = _Backup(model, backup_dir) if backup_dir else None
    history = backup.restore() if backup else {}
    history = {"loss": history.get("loss", []), "accuracy": history.get("accuracy", [])}
    train_steps = make_train_function(model, strategy, global_batch_size)
    sync = make_sync_function(model, strategy)
    distributed = distribute.distribute_dataset(strategy, dataset)
    chunks = [steps_per_execution] * (steps // steps_per_execution)
    if steps % steps_per_execution:
        chunks.append(steps % steps_per_execution)
    for epoch in range(len(history["loss"]), epochs):
        start = time.perf_counter()
        iterator = iter(distributed)
        loss_sum, correct = 0.0, 0.0
        for n in chunks:
            loss, hits = train_steps(iterator, tf.constant(n))
            loss_sum, correct = loss_sum + float(loss), correct + float(hits)
        sync()
        history["loss"].append(loss_sum / steps)
        history["accuracy"].append(correct / (steps * global_batch_size))
        if verbose:
            print(
                f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - start:.1f}s - "
                f"loss: {history['loss'][-1]:.4f} - accuracy: {history['accuracy'][-1]:.4f}",
                flush=True,
            )
        if backup:
            backup.save(epoch + 1, history)
    if backup:
        backup.delete()
    return history
