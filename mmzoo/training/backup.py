"""``TrainingBackup``: an exact, preemption-safe backup of a ``Model.fit`` run.

``keras.callbacks.BackupAndRestore`` saves the weights and the optimizer,
but not the state of the random-number generators (the ``SeedGenerator`` of
every ``Dropout``, modality-dropout or noise layer): a resumed run draws
other dropout masks than the uninterrupted one and ends with other weights.
It also writes its epoch record after the weights, with no history, so a
kill between the writes can lose an epoch's logs.

``TrainingBackup`` saves, after every epoch:

1. ``epoch-NNNN.weights.h5``: the model's weights and optimizer state;
2. ``state.json``, written to a temporary file and renamed over the old
   one: the finished epochs, the name of that weights file, the history so
   far and the value of every non-weight model variable (the random-number
   generator states).

``state.json`` is the only commit point: a run killed anywhere resumes from
the last ``state.json``, whose weights file is always complete, with the
same random state, so with ``tf.config.experimental.enable_op_determinism``
and an input pipeline whose order depends on the epoch alone (see
``mmzoo.training.train``) it ends bit-identical to a run never killed.
Every file goes through ``tf.io.gfile`` (local folders, ``gs://``, ``ram://``).
"""

from __future__ import annotations

import json
import os
import posixpath
import re

import keras
import numpy as np
import tensorflow as tf

from mmzoo import _keras_compat

STATE_FILE = "state.json"
_WEIGHTS = re.compile(r"^epoch-(\d+)\.weights\.h5$")


class TrainingBackup(keras.callbacks.Callback):
    """Backs a ``fit`` run up after every epoch and resumes it exactly.

    On ``on_train_begin`` it restores the last backup in ``backup_dir`` (if
    any): weights, optimizer, random-generator states and the epoch to start
    from, as ``keras.callbacks.BackupAndRestore`` does. ``history`` holds the
    logs of every finished epoch, restored ones included.

    Args:
        backup_dir: Folder of the backup (local or any ``tf.io.gfile`` file
            system). Used by this run only.
        delete_when_done: Remove ``backup_dir`` when training ends. Set it
            to ``False`` to remove it yourself (``delete()``) once the
            results are safely written, so that a kill after training but
            before the export does not cost the training.

    Example:

    >>> import keras, numpy as np, tempfile
    >>> from mmzoo.training.backup import TrainingBackup
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> folder = tempfile.mkdtemp()
    >>> backup = TrainingBackup(folder, delete_when_done=False)
    >>> _ = model.fit(np.ones((8, 4)), np.zeros(8), epochs=2, verbose=0, callbacks=[backup])
    >>> TrainingBackup.epochs_done(folder), len(backup.history["loss"])
    (2, 2)
    """

    def __init__(self, backup_dir, delete_when_done=True):
        super().__init__()
        if not isinstance(backup_dir, (str, os.PathLike)) or not str(backup_dir):
            raise ValueError(f"`backup_dir` must be a folder path. Received: backup_dir={backup_dir!r}")
        self.backup_dir = str(backup_dir)
        self.delete_when_done = delete_when_done
        self.history = {}

    # ---- reading a backup ----------------------------------------------------------------------------
    @staticmethod
    def read_state(backup_dir):
        """The last committed state in ``backup_dir`` (a dict), or ``None`` when there is none."""
        path = posixpath.join(str(backup_dir), STATE_FILE)
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as f:
            try:
                state = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"The backup state {path} is not valid JSON ({error}); remove the folder to "
                                 "start over.") from None
        if not isinstance(state, dict) or not {"epoch", "weights", "history", "random_state"} <= set(state):
            raise ValueError(f"{path} is not an mmzoo training backup (fields epoch, weights, history, "
                             "random_state expected); remove the folder to start over.")
        return state

    @classmethod
    def epochs_done(cls, backup_dir):
        """Finished epochs backed up in ``backup_dir`` (0 when ``None`` or empty)."""
        if backup_dir is None:
            return 0
        state = cls.read_state(backup_dir)
        return 0 if state is None else int(state["epoch"])

    # ---- callback --------------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        state = self.read_state(self.backup_dir)
        if state is None:
            self.history = {}
            return
        model = self.model
        if not model.built:
            raise ValueError("TrainingBackup restores into a built model; build it (call it on a batch) before fit.")
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(posixpath.join(self.backup_dir, state["weights"]))
        _assign_random_state(model, state["random_state"], self.backup_dir)
        epoch = int(state["epoch"])
        self.history = {k: list(v)[:epoch] for k, v in state["history"].items()}
        _keras_compat.set_initial_epoch(model, epoch)  # the hook keras.callbacks.BackupAndRestore uses

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        done = epoch + 1
        tf.io.gfile.makedirs(self.backup_dir)
        weights = f"epoch-{done:04d}.weights.h5"
        self.model.save_weights(posixpath.join(self.backup_dir, weights), overwrite=True)
        state = {"epoch": done, "weights": weights, "history": self.history,
                 "random_state": _random_state(self.model)}
        _write_json_atomically(posixpath.join(self.backup_dir, STATE_FILE), state)
        for name in tf.io.gfile.listdir(self.backup_dir):  # earlier epochs' weights (and any orphan of a kill)
            if _WEIGHTS.match(name) and name != weights:
                tf.io.gfile.remove(posixpath.join(self.backup_dir, name))

    def on_train_end(self, logs=None):
        if self.delete_when_done:
            self.delete()

    def delete(self):
        """Removes ``backup_dir`` (once the run's results are written)."""
        if tf.io.gfile.exists(self.backup_dir):
            tf.io.gfile.rmtree(self.backup_dir)


def _state_variables(model):
    """The model's variables that are not weights: random-generator states (and metric accumulators)."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _random_state(model):
    return [{"path": v.path, "dtype": str(v.dtype), "value": np.asarray(v.numpy()).tolist()}
            for v in _state_variables(model)]


def _assign_random_state(model, saved, backup_dir):
    # Matched by position (the model's structure): variable paths carry process-wide name counters.
    variables = _state_variables(model)
    values = [np.asarray(s["value"], dtype=s["dtype"]) for s in saved]
    if [(tuple(v.shape), str(v.dtype)) for v in variables] != [(a.shape, str(a.dtype)) for a in values]:
        raise ValueError(
            f"The backup in {backup_dir} was written by another model: its random-state variables "
            f"{[s['path'] for s in saved]} do not match this model's {[v.path for v in variables]}. "
            "Use a fresh backup_dir."
        )
    for v, value in zip(variables, values):
        v.assign(value)


def _write_json_atomically(path, value):
    """Writes JSON to ``path`` through a temporary file renamed over it (``tf.io.gfile``)."""
    temporary = f"{path}.tmp"
    with tf.io.gfile.GFile(temporary, "w") as f:
        json.dump(value, f)
    tf.io.gfile.rename(temporary, path, overwrite=True)
