"""``train_and_evaluate``: the main job as a library function.

``mmzoo train`` is a thin wrapper over it (see ``mmzoo.cli``).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from mmzoo import datasets, plots, zoo
from mmzoo.saved_model import export

# Zoo models and the bundled dataset each one trains on.
TASKS = {
    "av_digits_concat": datasets.av_digits,
    "av_digits_attention": datasets.av_digits,
}
DEFAULT_MODEL = "av_digits_concat"


def train_and_evaluate(
    model_name=DEFAULT_MODEL,
    epochs=15,
    batch_size=32,
    output_dir="saved_models",
    seed=0,
    verbose=1,
    export_model=True,
    **overrides,
):
    """Trains a zoo model on its bundled dataset, evaluates it and exports it.

    Writes into ``output_dir``: ``{model_name}/`` (the SavedModel),
    ``{model_name}.training.png`` (curves), ``{model_name}.confusion.png``
    and ``{model_name}.metrics.json`` (test metrics and the history).

    Args:
        model_name: A zoo model with a bundled dataset (see ``TASKS``).
        epochs: Training epochs.
        batch_size: Examples per batch.
        output_dir: Folder for the export and the figures.
        seed: Seed of weights initialisation, dropout and shuffling.
        verbose: Keras progress verbosity (0, 1 or 2).
        export_model: Write the SavedModel.
        **overrides: Builder arguments of the zoo model.

    Returns:
        A dict with ``test`` metrics, ``history``, ``model`` and the written
        ``paths``.

    Raises:
        ValueError: If ``model_name`` has no bundled dataset or an argument
            is invalid.

    Example:

    >>> result = mmzoo.train.train_and_evaluate(epochs=5, output_dir="/tmp/run")
    >>> result["test"]["accuracy"] > 0.5
    True
    """
    if model_name not in TASKS:
        zoo.get(model_name)  # unknown names get the registry's message
        raise ValueError(
            f"Zoo model {model_name!r} has no bundled dataset to train on; models with one: "
            f"{', '.join(sorted(TASKS))}. Build it with mmzoo.build({model_name!r}) and fit it on your data."
        )
    for arg, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r}")
    keras.utils.set_random_seed(seed)
    train_ds, test_ds = TASKS[model_name](batch_size=batch_size, seed=seed)
    model = zoo.build(model_name, **overrides)
    history = model.fit(train_ds, validation_data=test_ds, epochs=epochs, verbose=verbose)
    test = model.evaluate(test_ds, verbose=0, return_dict=True)

    os.makedirs(output_dir, exist_ok=True)
    base = os.path.join(output_dir, model_name)
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
            {"model": model_name, "epochs": epochs, "batch_size": batch_size, "seed": seed, "test": test,
             "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}},
            f,
            indent=2,
        )
    paths["metrics"] = f"{base}.metrics.json"
    return {"test": test, "history": history.history, "model": model, "paths": paths, "confusion": matrix}
