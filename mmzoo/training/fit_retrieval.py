"""``mmzoo.fit(..., task="retrieval")``: a manifest of image-text pairs -> a trained, evaluated, exported dual encoder.

Each row is a matching pair (an image file and its text); every other row of
a batch is a negative (in-batch contrastive loss). The path mirrors
``mmzoo.fit``'s: a seeded ``valid_fraction`` of ``train`` is held out for
early stopping (the validation mean reciprocal rank, best weights restored), validation and test
get ``mmzoo.retrieval.retrieval_report`` (R@1/5/10 both ways, median rank,
MRR; ties count against the model), and ``output_dir/model`` is an export
with the ``embed_image[_raw]`` / ``embed_text[_raw]`` signatures that
``mmzoo index`` / ``mmzoo search`` / ``mmzoo evaluate`` use.

Example::

    result = mmzoo.fit("pairs.jsonl", task="retrieval", columns={"images/{hexcode}.png": "image",
                       "annotation": "text"}, test="pairs_test.jsonl", output_dir="runs/retrieval")
    result.test["text_to_image@10"], result.export_path
"""

from __future__ import annotations

import json
import os

import numpy as np

from mmzoo import _gfile
from mmzoo import _validation as check
from mmzoo.training import fit as fit_lib
from mmzoo.training.fit import FitError

MIN_PAIRS = 4  # a contrastive batch needs negatives


def retrieval_columns(columns):
    """``columns`` of ``fit(task="retrieval")`` -> ``(image column, text columns)``.

    Args:
        columns: A dict column -> kind with exactly one ``"image"`` column
            (a name or a path template) and one or more ``"text"`` columns
            (joined with a space).

    Returns:
        ``(image, [text, ...])``.

    Raises:
        FitError: If ``columns`` is not such a dict.
    """
    if not isinstance(columns, dict):
        raise FitError("task='retrieval' needs `columns` as a dict naming one image column and its text column(s), "
                       f"e.g. {{'image': 'image', 'caption': 'text'}}. Received: columns={columns!r}")
    images = [c for c, kind in columns.items() if kind == "image"]
    texts = [c for c, kind in columns.items() if kind == "text"]
    others = {c: kind for c, kind in columns.items() if kind not in ("image", "text", "ignore")}
    if len(images) != 1 or not texts or others:
        raise FitError("task='retrieval' needs exactly one 'image' column and at least one 'text' column (and no "
                       f"other kinds). Received: columns={columns!r}")
    return images[0], texts


def _plan(manifest, image, texts, image_size, verbose):
    from mmzoo.data import ImageColumn  # noqa: PLC0415

    try:
        probe = ImageColumn(image, (8, 8, 3))
        probe.prepare(manifest)
        manifest.require_columns(texts, "text")
    except ValueError as error:
        raise FitError(f"train: {error}") from None
    shape = fit_lib._image_shape(manifest, image, image_size or fit_lib.MAX_IMAGE_SIDE)
    shape = (shape[0], shape[1], 3)  # one image tower for colour and grey collections: grey decodes to 3 channels
    features = {"image": ImageColumn(image, shape), "text": fit_lib._text_column(manifest, texts)}
    kinds = {image: "image", **{c: "text" for c in texts}}
    plan = fit_lib.DataPlan(kinds, {}, features, None, "retrieval", {"image": "image", "text": "text"})
    if verbose:
        print(plan.describe())
    return plan


def _split(manifest, valid_fraction, seed):
    if not 0 < valid_fraction < 1:
        raise FitError(f"valid_fraction must be in (0, 1). Received: valid_fraction={valid_fraction!r}")
    order = np.random.default_rng(seed).permutation(len(manifest))
    n_valid = round(valid_fraction * len(manifest))
    if n_valid < 2 or len(manifest) - n_valid < MIN_PAIRS:
        raise FitError(f"valid_fraction={valid_fraction} of {len(manifest)} pairs leaves fewer than 2 validation "
                       f"or {MIN_PAIRS} training pairs")
    return manifest.subset(sorted(order[n_valid:])), manifest.subset(sorted(order[:n_valid]))


def _dataset(plan, manifest, batch_size, seed, train, on_error):
    from mmzoo import data as data_lib  # noqa: PLC0415

    # Training drops a last partial batch: a batch of one pair has no negative.
    return data_lib.make_dataset(manifest, plan.features, None, batch_size=batch_size, shuffle=train, seed=seed,
                                 drop_remainder=train and len(manifest) > batch_size, on_error=on_error)


def retrieval_report(model, dataset):
    """``mmzoo.retrieval.retrieval_report`` of a dual encoder on a dataset of ``{"image", "text"}`` pair batches.

    Args:
        model: A ``mmzoo.retrieval.DualEncoder``.
        dataset: Batches of aligned pairs (``make_dataset`` output, no labels).

    Returns:
        The report dict plus ``"pairs"``.
    """
    from mmzoo.retrieval import retrieval_report as report_of  # noqa: PLC0415

    images, texts = [], []
    for batch in dataset:
        inputs = batch[0] if isinstance(batch, tuple) else batch
        images.append(model.image_encoder(inputs["image"], training=False).numpy())
        texts.append(model.text_encoder(inputs["text"], training=False).numpy())
    images, texts = np.concatenate(images), np.concatenate(texts)
    return {**report_of(images, texts), "pairs": len(images)}


def _validation_mrr_callback(dataset):
    """A callback adding ``val_mrr`` (the mean reciprocal rank of both directions on ``dataset``) to each epoch's logs.

    The contrastive validation loss is a poor stopping signal: it rises as
    the similarities sharpen while the ranks still improve (measured on
    OpenMoji: loss lowest at epoch 5, ranks best far later).
    """
    import keras  # noqa: PLC0415

    class ValidationMRR(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            report = retrieval_report(self.model, dataset)
            if logs is not None:
                logs["val_mrr"] = (report["image_to_text_mrr"] + report["text_to_image_mrr"]) / 2

    return ValidationMRR()


def fit_retrieval(train, columns, valid=None, valid_fraction=0.1, test=None, epochs=30, batch_size=64,
                  learning_rate=1e-3, patience=5, image_size=None, loss="contrastive", temperature=0.05,
                  callbacks=(), tensorboard=None, output_dir=None, seed=0, on_error="raise", verbose=1):
    """Trains an image-text dual encoder on a manifest of pairs (``mmzoo.fit(..., task="retrieval")``).

    The model is the zoo's ``image_text_retrieval`` sized to the data
    (images at most ``image_size`` on their longer side, default 64; a
    ``VocabTokenizer`` fitted on the training texts).

    Args:
        train: Training pairs: a CSV/JSONL manifest path, a list of dicts, a
            DataFrame or a dict of arrays (as ``mmzoo.fit``).
        columns: ``{image_column: "image", text_column: "text", ...}``; the
            image column may be a path template; several text columns are
            joined with a space.
        valid: Validation pairs; default: a seeded ``valid_fraction`` of ``train``.
        valid_fraction: Fraction of ``train`` held out when ``valid`` is None.
        test: Test pairs, evaluated once at the end.
        epochs: Most epochs (early stopping on the validation mean
            reciprocal rank, ``val_mrr`` in the history).
        batch_size: Pairs per batch (the in-batch negatives: larger is harder).
        learning_rate: Adam learning rate.
        patience: Epochs without validation improvement before stopping.
        image_size: Largest image side fed to the model (default 64).
        loss: ``"contrastive"`` or ``"triplet"``.
        temperature: Contrastive temperature (0.05 and 0.1 measure the
            same on OpenMoji: ``benchmarks/retrieval.py``).
        callbacks: Extra Keras callbacks.
        tensorboard: A folder for TensorBoard logs.
        output_dir: Folder (local or ``gs://``) for ``model/`` and ``report.json``.
        seed: Seed of the split, weights and shuffling.
        on_error: ``"raise"`` or ``"skip"`` bad rows.
        verbose: Keras verbosity (0, 1, 2); 0 also silences the decisions.

    Returns:
        A ``FitResult`` whose ``valid`` / ``test`` are retrieval reports and
        whose ``fusion`` is ``"dual_encoder"``.

    Raises:
        FitError: For bad data or arguments, before any training.

    Example::

        result = fit_retrieval("pairs.jsonl", {"image": "image", "caption": "text"}, output_dir="runs/r")
        result.valid["image_to_text@10"]
    """
    import keras  # noqa: PLC0415

    from mmzoo.zoo.reference import image_text_retrieval  # noqa: PLC0415

    check.choice("on_error", on_error, {"raise", "skip"})
    epochs = check.positive_int("epochs", epochs)
    batch_size = check.positive_int("batch_size", batch_size)
    if batch_size < 2:
        raise FitError(f"batch_size must be >= 2 for retrieval (the other pairs are the negatives). "
                       f"Received: batch_size={batch_size}")
    if loss not in ("contrastive", "triplet"):
        raise FitError(f"loss must be 'contrastive' or 'triplet'. Received: loss={loss!r}")
    image, texts = retrieval_columns(columns)
    if output_dir is not None:
        fit_lib._check_writable(output_dir)
    train_manifest = fit_lib._load(train, "train")[0]
    if len(train_manifest) < MIN_PAIRS:
        raise FitError(f"train: retrieval needs at least {MIN_PAIRS} pairs. Received: {len(train_manifest)}")
    plan = _plan(train_manifest, image, texts, image_size, verbose)
    if valid is None:
        train_manifest, valid_manifest = _split(train_manifest, valid_fraction, seed)
    else:
        valid_manifest = fit_lib._load(valid, "valid")[0]
    test_manifest = fit_lib._load(test, "test")[0] if test is not None else None
    for name, m in (("train", train_manifest), ("valid", valid_manifest), ("test", test_manifest)):
        if m is not None:
            fit_lib._check_rows(plan, m, name, on_error, verbose)

    keras.utils.set_random_seed(seed)
    tokenizer = plan.features["text"].tokenizer
    net = image_text_retrieval(image_shape=plan.features["image"].image_shape,
                               sequence_length=tokenizer.sequence_length, vocabulary_size=tokenizer.vocabulary_size,
                               loss=loss, temperature=temperature, learning_rate=learning_rate)
    train_ds = _dataset(plan, train_manifest, batch_size, seed, True, on_error)
    valid_ds = _dataset(plan, valid_manifest, batch_size, seed, False, on_error)
    monitor = keras.callbacks.EarlyStopping(monitor="val_mrr", mode="max", patience=patience,
                                            restore_best_weights=True)
    all_callbacks = [_validation_mrr_callback(valid_ds), monitor, *callbacks]
    if tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(log_dir=os.fspath(tensorboard)))
    fitted = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, callbacks=all_callbacks, verbose=verbose,
                     shuffle=False)
    valid_report = {**retrieval_report(net, valid_ds), "best_epoch": int(monitor.best_epoch) + 1}
    test_report = None
    if test_manifest is not None:
        test_report = retrieval_report(net, _dataset(plan, test_manifest, batch_size, seed, False, on_error))
    result = fit_lib.FitResult(net, fitted.history, valid_report, test_report, None, plan, "dual_encoder")
    if output_dir is not None:
        _write_outputs(result, output_dir, image, texts)
    return result


def _write_outputs(result, output_dir, image, texts):
    from mmzoo.serving.saved_model import export  # noqa: PLC0415

    result.export_path = export(result.model, os.path.join(output_dir, "model"), preprocessing=result.plan.features)
    summary = {
        "task": "retrieval",
        "columns": result.plan.kinds,
        "inputs": {name: fit_lib._spec_summary(spec) for name, spec in result.plan.features.items()},
        "valid": result.valid,
        "test": result.test,
        "history": {k: [float(v) for v in vs] for k, vs in result.history.items()},
        "model": _gfile.abspath(result.export_path),
    }
    result.report_path = os.path.join(output_dir, "report.json")
    _gfile.write_text(result.report_path, json.dumps(summary, indent=2, default=float))
    # What `mmzoo evaluate` reads to embed a manifest's pairs with the columns of training.
    _gfile.write_text(os.path.join(result.export_path, "assets", "mmzoo_fit.json"),
                      json.dumps({"label": None, "task": "retrieval", "classes": [], "columns": result.plan.kinds,
                                  "inputs": fit_lib._input_sources(result.plan)}, indent=2))
