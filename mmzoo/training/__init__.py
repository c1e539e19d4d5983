"""``mmzoo.training``: fit and evaluate, strategies and precision, fine-tuning, metrics, plots.

* ``fit``: ``mmzoo.fit`` on your own data (manifests, records, DataFrames).
* ``evaluate`` / ``compare``: ``mmzoo.evaluate`` and ``mmzoo.compare``.
* ``metrics`` / ``reports``: classification and regression reports, their JSON and figures.
* ``search``: the KerasTuner search behind ``fit(time_budget=...)``.
* ``train``: ``train_and_evaluate``, the main job (``mmzoo train``).
* ``backup``: ``TrainingBackup``, the exact preemption-safe backup of a ``fit`` run.
* ``distribute``: ``tf.distribute`` strategies, precision policies, chief-only outputs.
* ``distributed_loop``: the custom loop used under ``MultiWorkerMirroredStrategy``.
* ``adapt``: ``adapt_batch_norm``, test-time BatchNorm statistics of a new domain (AdaBN).
* ``finetune``: freeze/unfreeze branches, per-branch learning rates, two-phase fit.
* ``plots``: training curves and confusion matrices.

Submodules load on first use (``mmzoo.training.metrics`` does not import TensorFlow).
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("adapt", "backup", "compare", "distribute", "distributed_loop", "evaluate", "finetune", "fit",
               "metrics", "plots", "reports", "search", "train")
_FUNCTIONS = {"adapt_batch_norm": "adapt", "train_and_evaluate": "train", "weights_digest": "train",
              "TrainingBackup": "backup"}

__all__ = sorted((*_SUBMODULES, *_FUNCTIONS))


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"mmzoo.training.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"mmzoo.training.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'mmzoo.training' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
