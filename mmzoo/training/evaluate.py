"""``mmzoo.evaluate``: a metrics report of a trained model or an export on labelled data.

Data is read the way training read it: for a SavedModel written by
``mmzoo.fit`` (``DIR/model``), the rows' raw files and text go through the
export's own ``serving_raw`` signature (so the report measures exactly what a
client gets); for a ``FitResult`` or a Keras model with its column specs, the
``mmzoo.data`` pipeline feeds the model.

Example::

    report = mmzoo.evaluate("runs/emoji/model", "emoji_test.jsonl")
    report["accuracy"], report["macro_f1"], report["auc"]
"""

from __future__ import annotations

import json
import os

import numpy as np

FIT_INFO = "mmzoo_fit.json"


class EvaluateError(ValueError):
    """A user error of ``mmzoo.evaluate`` (one line, naming the file or column)."""


def _fit_info(path):
    from mmzoo import _gfile  # noqa: PLC0415

    info_path = os.path.join(os.fspath(path), "assets", FIT_INFO)
    if not _gfile.isfile(info_path):
        raise EvaluateError(
            f"{os.fspath(path)} is not a model written by mmzoo.fit / `mmzoo fit` (no assets/{FIT_INFO}); "
            "pass a FitResult or a Keras model with `features` and `label`"
        )
    with _gfile.open_text(info_path) as f:
        return json.load(f)


def _raw_values(manifest, spec_info, i):
    """The raw serving value of one input for row ``i`` (file bytes or a string)."""
    from mmzoo import _gfile  # noqa: PLC0415
    from mmzoo.data import tabular  # noqa: PLC0415
    from mmzoo.data.columns import FileColumn  # noqa: PLC0415

    kind, columns = spec_info["kind"], spec_info["columns"]
    if kind in ("image", "audio"):
        path = FileColumn(columns[0]).python_value(manifest, i)
        try:
            return _gfile.read_bytes(path)
        except OSError as error:
            raise EvaluateError(f"{manifest.where(i)}: cannot read {path}: {error.strerror}") from None
    if kind == "text":
        return spec_info.get("separator", " ").join(str(manifest.value(i, c)) for c in columns)
    if kind == "numeric":
        numbers = [tabular.parse_number(manifest.value(i, c)) for c in columns]
        if None in numbers:
            raise EvaluateError(f"{manifest.where(i)}: numeric columns {columns} must hold finite numbers")
        return tabular.NUMBER_SEPARATOR.join(repr(n) for n in numbers)
    return tabular.CATEGORY_SEPARATOR.join(str(manifest.value(i, c)) for c in columns)


def _targets(manifest, label, info):
    """The label rows of ``manifest`` in the export's class order (class names compared as text)."""
    from mmzoo.data import MultiLabelColumn, RegressionLabel  # noqa: PLC0415

    task, classes = info["task"], [str(c) for c in info["classes"]]
    try:
        if task == "regression":
            return np.asarray(RegressionLabel(label).targets(manifest), "float32")
        if task == "multilabel":
            return np.asarray(MultiLabelColumn(label, classes=classes).targets(manifest), "float32")
    except ValueError as error:
        raise EvaluateError(f"data: {error}") from None
    lookup = {c: k for k, c in enumerate(classes)}
    out = []
    for i in range(len(manifest)):
        value = str(manifest.value(i, label))
        if value not in lookup:
            raise EvaluateError(
                f"data: {manifest.where(i)}: label {value!r} is not one of the model's classes {classes}"
            )
        out.append(lookup[value])
    return np.asarray(out, "int32")


def predict_export_on_manifest(path, manifest, info=None, batch_size=64):
    """Raw-input predictions of an export on every manifest row, through ``serving_raw``.

    Returns:
        ``(outputs, served)``: a dict of stacked output arrays
        (``probabilities`` or ``scores``...) and the ``ExportedModel``.
    """
    from mmzoo.serving.saved_model import load  # noqa: PLC0415

    info = info or _fit_info(path)
    served = load(path)
    chunks = []
    for start in range(0, len(manifest), batch_size):
        rows = range(start, min(start + batch_size, len(manifest)))
        raw = {name: [_raw_values(manifest, spec, i) for i in rows] for name, spec in info["inputs"].items()}
        chunks.append(served.predict_raw(raw))
    outputs = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return outputs, served


RETRIEVAL_SIGNATURES = ("embed_image_raw", "embed_text_raw")


def _retrieval_signatures(path):
    """The export's ``(embed_image_raw, embed_text_raw)`` signatures, or ``None`` for another kind of export."""
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415

    info_path = os.path.join(os.fspath(path), "assets", FIT_INFO)
    if not _gfile.isfile(os.path.join(os.fspath(path), "saved_model.pb")) or (
            _gfile.isfile(info_path) and _fit_info(path).get("task") != "retrieval"):
        return None
    signatures = tf.saved_model.load(os.fspath(path)).signatures
    if not all(name in signatures for name in RETRIEVAL_SIGNATURES):
        return None
    return tuple(signatures[name] for name in RETRIEVAL_SIGNATURES)


def _pair_columns(export, image, text):
    """The image and text columns to read: the ones given, else those of ``mmzoo.fit``, else image/text."""
    from mmzoo import _gfile  # noqa: PLC0415

    inputs = {}
    if _gfile.isfile(os.path.join(os.fspath(export), "assets", FIT_INFO)):
        inputs = _fit_info(export).get("inputs", {})
    if image is None:
        image = inputs["image"]["columns"][0] if "image" in inputs else "image"
    if text is None:
        text = inputs["text"]["columns"] if "text" in inputs else "text"
    return image, text


def evaluate_retrieval(export, data, image=None, text=None, batch_size=64, ks=(1, 5, 10)):
    """Image <-> text retrieval metrics of an exported dual encoder on a manifest of matching pairs.

    Row ``i``'s image and text are a pair; every other row is a negative.
    Both sides are embedded through the export's ``embed_image_raw`` /
    ``embed_text_raw`` signatures (what a client gets), then scored by
    ``mmzoo.retrieval.retrieval_report``, ties counted against the model.

    Args:
        export: An exported ``mmzoo.retrieval.DualEncoder`` folder.
        data: A CSV/JSONL manifest path, a list of dicts or a DataFrame.
        image: The column of image paths (or a path template such as
            ``"images/{hexcode}.png"``); default: the one ``mmzoo.fit``
            trained on, else ``"image"``.
        text: The column (or list of columns, joined with a space) of texts;
            default: those of ``mmzoo.fit``, else ``"text"``.
        batch_size: Rows per call.
        ks: The recall cut-offs.

    Returns:
        The ``retrieval_report`` dict plus ``"pairs"`` (the row count).

    Raises:
        EvaluateError: For a model without the embedding signatures, a
            missing column, an unreadable file or an undecodable row (one
            line naming it).

    Example::

        report = mmzoo.training.evaluate.evaluate_retrieval("runs/retrieval/model", "pairs.jsonl")
        report["image_to_text@10"], report["text_to_image_median_rank"]
    """
    signatures = _retrieval_signatures(export)
    if signatures is None:
        raise EvaluateError(f"{os.fspath(export)}: not an exported dual encoder (it needs the "
                            f"{' and '.join(RETRIEVAL_SIGNATURES)} signatures)")
    return _evaluate_pairs(signatures, data, *_pair_columns(export, image, text), batch_size, ks)


def _evaluate_pairs(signatures, data, image, text, batch_size, ks=(1, 5, 10)):
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415
    from mmzoo.data.columns import FileColumn  # noqa: PLC0415
    from mmzoo.retrieval import retrieval_report  # noqa: PLC0415
    from mmzoo.training import fit as fit_lib  # noqa: PLC0415

    try:
        manifest = fit_lib.as_manifest(data, "data")
        images = FileColumn(image)
    except (fit_lib.FitError, ValueError) as error:
        raise EvaluateError(str(error)) from None
    texts_columns = [text] if isinstance(text, str) else list(text)
    missing = sorted({*images.columns, *texts_columns} - set(manifest.columns))
    if missing:
        raise EvaluateError(f"data: column(s) {missing} are not in the data; it has {', '.join(manifest.columns)}")
    if len(manifest) < 2:
        raise EvaluateError("data: retrieval needs at least 2 pairs (each row's other rows are its negatives)")
    embeddings = {"image": [], "text": []}
    for start in range(0, len(manifest), batch_size):
        rows = range(start, min(start + batch_size, len(manifest)))
        values = {"image": [], "text": []}
        for i in rows:
            path = images.python_value(manifest, i)
            try:
                values["image"].append(_gfile.read_bytes(path))
            except OSError as error:
                raise EvaluateError(f"{manifest.where(i)}: cannot read {path}: {error.strerror}") from None
            values["text"].append(" ".join(str(manifest.value(i, c)) for c in texts_columns).encode("utf-8"))
        for key, fn in zip(("image", "text"), signatures):
            try:
                embeddings[key].append(fn(**{key: tf.constant(values[key])})[f"{key}_embedding"].numpy())
            except tf.errors.InvalidArgumentError as error:
                reason = str(getattr(error, "message", error)).strip().splitlines()[0]
                where = f"{manifest.where(rows[0])}..{manifest.where(rows[-1])}"
                raise EvaluateError(f"{where}: cannot embed the {key}s: {reason}") from None
    report = retrieval_report(np.concatenate(embeddings["image"]), np.concatenate(embeddings["text"]), ks=ks)
    return {**report, "pairs": len(manifest)}


def format_retrieval_report(report, digits=4):
    """A short, human-readable summary of ``evaluate_retrieval``'s report, for the CLI."""
    lines = [f"retrieval: {report['pairs']} image-text pairs (ties count against the model)"]
    for direction in ("image_to_text", "text_to_image"):
        recalls = "  ".join(f"R@{k.split('@')[1]} {v:.{digits}f}" for k, v in report.items()
                            if k.startswith(f"{direction}@"))
        lines.append(f"  {direction:14s} {recalls}  median rank {report[f'{direction}_median_rank']:g}  "
                     f"MRR {report[f'{direction}_mrr']:.{digits}f}")
    return "\n".join(lines)


def evaluate(model_or_export, data, label=None, features=None, batch_size=64, output_dir=None, image=None,
             text=None):
    """Evaluates a model on labelled data and returns (and optionally writes) its report.

    Args:
        model_or_export: A SavedModel folder written by ``mmzoo.fit`` (its
            ``serving_raw`` decodes the rows), a ``FitResult``, or a Keras
            model (then pass ``features`` and ``label`` specs).
        data: A CSV/JSONL manifest path, a list of dicts or a DataFrame.
        label: The label column (default: the one the model was fitted on);
            a ``mmzoo.data`` label spec for a plain Keras model.
        features: For a plain Keras model: its ``mmzoo.data`` column specs.
        batch_size: Examples per batch.
        output_dir: If given, writes ``report.json`` and the figures there (local or ``gs://``).
        image: For an exported dual encoder: the column of image paths (or
            a path template); default: the one ``mmzoo.fit`` trained on,
            else ``"image"``.
        text: For an exported dual encoder: the text column(s); default:
            those of ``mmzoo.fit``, else ``"text"``.

    Returns:
        The report dict (``mmzoo.training.metrics``): ``accuracy``,
        ``macro_f1``, ``auc``, per-class figures, ``top_k_accuracy``,
        ``confusion_matrix`` for classifiers; ``mae``, ``rmse``, ``r2`` for
        regression. For an exported dual encoder (``embed_image_raw`` /
        ``embed_text_raw`` signatures), ``evaluate_retrieval``'s report on
        the rows as image-text pairs.

    Raises:
        EvaluateError: For a missing file, a model that mmzoo did not write,
            or a label column the data lacks (one line).

    Example::

        report = mmzoo.evaluate("runs/emoji/model", "test.jsonl", output_dir="runs/emoji/test")
    """
    from mmzoo.training import fit as fit_lib  # noqa: PLC0415
    from mmzoo.training import metrics, reports  # noqa: PLC0415

    try:
        manifest = fit_lib.as_manifest(data, "data")
    except fit_lib.FitError as error:
        raise EvaluateError(str(error)) from None
    if isinstance(model_or_export, fit_lib.FitResult):
        plan = model_or_export.plan
        ds = fit_lib._datasets(plan, manifest, batch_size, 0, False, "raise")
        report = fit_lib.evaluate_model(model_or_export.model, ds, plan)
    elif isinstance(model_or_export, (str, os.PathLike)):
        import tensorflow as tf  # noqa: PLC0415

        if not tf.io.gfile.isdir(model_or_export):
            raise EvaluateError(f"model: folder not found: {os.fspath(model_or_export)}")
        signatures = _retrieval_signatures(model_or_export)
        if signatures is not None:
            report = _evaluate_pairs(signatures, data, *_pair_columns(model_or_export, image, text), batch_size)
            if output_dir is not None:
                from mmzoo import _gfile  # noqa: PLC0415

                _gfile.write_text(os.path.join(os.fspath(output_dir), "report.json"), json.dumps(report, indent=2))
            return report
        info = _fit_info(model_or_export)
        label = label or info["label"]
        if label not in manifest.columns:
            raise EvaluateError(
                f"data: label column {label!r} is not in the data; it has {', '.join(manifest.columns)}"
            )
        missing = sorted({c for spec in info["inputs"].values() for c in spec["columns"] if "{" not in c}
                         - set(manifest.columns))
        if missing:
            raise EvaluateError(f"data: column(s) {missing} the model reads are not in the data")
        y_true = _targets(manifest, label, info)
        outputs, served = predict_export_on_manifest(model_or_export, manifest, info, batch_size)
        if info["task"] == "regression":
            report = metrics.regression_report(y_true, outputs["scores"], target_names=info["classes"])
        else:
            threshold = served.threshold if served.threshold is not None else 0.5
            report = metrics.classification_report(y_true, outputs["probabilities"], class_names=info["classes"],
                                                   task=info["task"], threshold=threshold)
    else:
        if features is None or label is None:
            raise EvaluateError("a Keras model needs its `features` (column specs) and `label` spec")
        from mmzoo import data as data_lib  # noqa: PLC0415

        ds = data_lib.make_dataset(manifest, features, label, batch_size=batch_size)
        task = getattr(label, "task", "class")
        classes = [str(c) for c in (label.classes or [])]
        if task == "class":
            task = "binary" if len(classes) == 2 and model_or_export.output.shape[-1] == 1 else "multiclass"
        report = fit_lib.evaluate_model(model_or_export, ds, task=task, class_names=classes)
    if output_dir is not None:
        reports.write_report(report, output_dir, prefix="report")
    return report
