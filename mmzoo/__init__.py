"""mmzoo: a Keras 3 / TensorFlow model zoo for multimodal deep learning.

The data's path through the package: ``mmzoo.data`` (files -> ``tf.data``)
and ``mmzoo.datasets`` (ready real datasets) -> ``mmzoo.branches`` ->
``mmzoo.fusion`` -> ``mmzoo.heads`` -> ``mmzoo.compose`` (``mmzoo.composition``) / ``mmzoo.zoo`` ->
``mmzoo.training`` -> ``mmzoo.serving`` (``mmzoo.export``, ``mmzoo.load``).

Submodules and the top-level functions are imported on first use, so
``import mmzoo`` (and the ``mmzoo`` command's argument parsing) does not load
TensorFlow until something needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> (module, attribute or None for the module itself).
_LAZY = {
    "balance": ("mmzoo.balance", None),
    "branches": ("mmzoo.branches", None),
    "data": ("mmzoo.data", None),
    "datasets": ("mmzoo.datasets", None),
    "fusion": ("mmzoo.fusion", None),
    "heads": ("mmzoo.heads", None),
    "layers": ("mmzoo.layers", None),
    "retrieval": ("mmzoo.retrieval", None),
    "serving": ("mmzoo.serving", None),
    "training": ("mmzoo.training", None),
    "zoo": ("mmzoo.zoo", None),
    "distribute": ("mmzoo.training.distribute", None),
    "finetune": ("mmzoo.training.finetune", None),
    "build": ("mmzoo.zoo", "build"),
    "list_models": ("mmzoo.zoo", "list_models"),
    "compose": ("mmzoo.composition", "compose"),
    "compile_model": ("mmzoo.composition", "compile_model"),
    "export": ("mmzoo.serving.saved_model", "export"),
    "load": ("mmzoo.serving.saved_model", "load"),
    "export_tflite": ("mmzoo.serving.tflite", "export_tflite"),
    "fit": ("mmzoo.training.fit", "fit"),
    "evaluate": ("mmzoo.training.evaluate", "evaluate"),
    "compare": ("mmzoo.training.compare", "compare"),
    "explain": ("mmzoo.explanations", "explain"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'mmzoo' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
