"""``mmzoo predict``: predictions of an exported model on files and text.

Class names, the task and the decision threshold come from the export's
metadata, i.e. from the head the model carried when it was exported.

Raw inputs go through the export's ``serving_raw`` signature
(``mmzoo.load(path).predict_raw``), so files are decoded exactly as the
SavedModel decodes them for any client. Examples come from repeated flags
(``--image a.png --image b.png``; the k-th value of every flag makes example
k) or from a JSONL/CSV manifest whose keys/columns are the input names (file
paths relative to the manifest's folder). Problems (a missing file, a PNG
given as audio, a missing input, a bad manifest) raise ``PredictError`` with
a one-line message naming the file or input; ``mmzoo predict`` prints it
and exits with code 2.

Example::

    mmzoo predict saved_models/av_digits_concat --image 7.png --audio 7_jackson_0.wav
    mmzoo predict saved_models/av_digits_concat --manifest examples.jsonl --top-k 3
"""

from __future__ import annotations

import csv
import json
import os
import sys

import numpy as np

# Leading bytes of the encoded formats serving_raw accepts (checked here to name the file).
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")
FLAG_INPUTS = ("image", "audio", "text")


class PredictError(ValueError):
    """A user error of ``mmzoo predict`` (one line, naming the file or input)."""


def add_parser(subparsers):
    """Adds the ``predict`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "predict", help="predict with an exported model (SavedModel from mmzoo.export) on files/text"
    )
    parser.add_argument("path", help="SavedModel folder written by mmzoo.export / mmzoo train")
    parser.add_argument(
        "--image", action="append", default=[], help="image file (PNG/JPEG/GIF/BMP); repeat for a batch"
    )
    parser.add_argument("--audio", action="append", default=[], help="WAV file; repeat for a batch")
    parser.add_argument("--text", action="append", default=[], help="text; repeat for a batch")
    parser.add_argument("--manifest", help="JSONL or CSV file, one example per line/row, keys = input names")
    parser.add_argument("--top-k", type=int, default=1, help="classes shown per example (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per example")
    return parser


def _read_manifest(path):
    """``(rows, folder)``: a list of dicts from a JSONL or CSV file."""
    from mmzoo import _gfile  # noqa: PLC0415  (imports TensorFlow: not needed to parse the command line)

    if not _gfile.isfile(path):
        raise PredictError(f"--manifest: file not found: {path}")
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".jsonl", ".csv"):
        raise PredictError(f"--manifest: {path}: expected a .jsonl or .csv file")
    rows = []
    with _gfile.open_text(path, newline="") as f:
        if extension == ".csv":
            rows = list(csv.DictReader(f))
        else:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise PredictError(f"--manifest: {path} line {number}: not valid JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise PredictError(f"--manifest: {path} line {number}: expected a JSON object")
                rows.append(row)
    if not rows:
        raise PredictError(f"--manifest: {path} holds no examples")
    return rows, os.path.dirname(_gfile.abspath(path))


def _gather(args, inputs):
    """``{input: [values]}`` and ``[source label per value]`` from flags or a manifest."""
    flagged = {name: getattr(args, name) for name in FLAG_INPUTS if getattr(args, name)}
    if args.manifest and flagged:
        raise PredictError(f"give either --manifest or --{'/--'.join(flagged)}, not both")
    if args.manifest:
        rows, folder = _read_manifest(args.manifest)
        values = {}
        for name, spec in inputs.items():
            column = []
            for i, row in enumerate(rows):
                if name not in row or row[name] in (None, ""):
                    if spec.get("optional") or (spec.get("raw") or {}).get("allow_empty"):
                        column.append("")  # absent: the model was trained to do without it
                        continue
                    raise PredictError(f"--manifest: {args.manifest} example {i + 1}: missing input {name!r}")
                value = str(row[name])
                column.append(value if spec["kind"] == "text" else os.path.join(folder, value))
            values[name] = column
        extra = sorted(set().union(*rows) - set(inputs) - {"label", "id"})
        if extra:
            raise PredictError(f"--manifest: {args.manifest}: {extra} are not inputs of this model {sorted(inputs)}")
        return values
    extra = sorted(set(flagged) - set(inputs))
    if extra:
        raise PredictError(f"--{extra[0]}: this model has no {extra[0]!r} input; its inputs: {sorted(inputs)}")
    missing = [name for name in inputs if name not in flagged and not inputs[name].get("optional")]
    if missing:
        hint = "" if missing[0] in FLAG_INPUTS else " (use --manifest for inputs without a flag)"
        raise PredictError(f"missing input {missing[0]!r}: this model needs {sorted(inputs)}{hint}")
    if not flagged:
        raise PredictError(f"give at least one input; this model's inputs (all optional): {sorted(inputs)}")
    counts = {name: len(v) for name, v in flagged.items()}
    if len(set(counts.values())) > 1:
        raise PredictError(f"every input needs the same number of values; received {counts}")
    count = next(iter(counts.values()))
    # An optional input left out is absent: the empty string of the serving_raw contract.
    return {name: flagged.get(name, [""] * count) for name in inputs}


def _read_file(name, kind, path):
    """The bytes of one file, checked to be the input's format (naming file and input)."""
    from mmzoo import _gfile  # noqa: PLC0415

    if not _gfile.isfile(path):
        raise PredictError(f"{path}: file not found (input {name!r})")
    contents = _gfile.read_bytes(path)
    if kind == "image" and not contents.startswith(_IMAGE_MAGIC):
        raise PredictError(f"{path}: not a PNG, JPEG, GIF or BMP image (input {name!r})")
    if kind == "audio" and not (contents[:4] == b"RIFF" and contents[8:12] == b"WAVE"):
        raise PredictError(f"{path}: not a WAV file (input {name!r} expects RIFF/WAVE audio)")
    return contents


def load_export(path):
    """``mmzoo.load(path)``, with a ``PredictError`` when it is not a raw-serving export."""
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.serving.saved_model import load  # imported here: it loads TensorFlow  # noqa: PLC0415

    if not tf.io.gfile.isdir(path):
        raise PredictError(f"{path}: no such folder (expected a SavedModel written by mmzoo.export)")
    try:
        served = load(path)
    except (FileNotFoundError, ValueError) as error:
        raise PredictError(str(error).splitlines()[0]) from None
    if "serving_raw" not in served.signatures:
        raise PredictError(f"{path}: this export has no serving_raw signature (exported without preprocessing)")
    return served


def predict(served, values):
    """Runs ``serving_raw`` on file paths / texts.

    Args:
        served: An ``ExportedModel`` (``mmzoo.load``).
        values: ``{input name: [file path or text per example]}``.

    Returns:
        The signature's numpy outputs.

    Raises:
        PredictError: If a file is missing, of the wrong format, or cannot be decoded.
    """
    kinds = {name: spec["raw"]["kind"] for name, spec in served.inputs.items()}
    raw = {name: [v if kinds[name] == "text" or v == "" else _read_file(name, kinds[name], v) for v in vs]
           for name, vs in values.items()}
    try:
        return served.predict_raw(raw)
    except Exception as error:
        if len(next(iter(raw.values()))) > 1:
            # Find the example that fails, to name its file.
            for i in range(len(next(iter(raw.values())))):
                predict(served, {name: vs[i : i + 1] for name, vs in values.items()})
        files = ", ".join(f"{name}={vs[0]}" for name, vs in values.items() if kinds[name] != "text")
        reason = _error_reason(error)
        raise PredictError(f"cannot decode {files}: {reason}") from None


def _error_reason(error):
    """The informative line of a TensorFlow error (not "Graph execution error:" or a node trace)."""
    lines = [ln.strip() for ln in str(getattr(error, "message", error)).splitlines()]
    skip = ("Graph execution error", "Detected at node", "<stack traces", "[[")
    useful = [ln for ln in lines if ln and not ln.startswith(skip)]
    return (useful[0] if useful else type(error).__name__)[:200]


def format_predictions(outputs, class_names, labels, top_k=1, as_json=False, task=None):
    """One line per example, by the model's task (read from the export's metadata).

    * ``multiclass``: the ``top_k`` classes with their probabilities;
    * ``binary``: the decided class first (``class_id``: ``P(positive) >=``
      the model's threshold), then the other, with their probabilities;
    * ``multilabel``: the predicted labels (``labels``: probability ``>=``
      threshold) with their probabilities, most likely first;
    * ``regression`` / ``scores``: the values, named by ``class_names``
      (target names) when there are some;
    * embeddings: dimension, norm and the first values.

    Args:
        outputs: The serving outputs (numpy).
        class_names: Class names or ``None`` (then class ids are printed).
        labels: A label per example (e.g. its file names).
        top_k: Classes shown per example (multiclass, binary).
        as_json: One JSON object per line instead of text.
        task: The export's task; ``None`` infers it from the output names.

    Returns:
        A list of lines.
    """

    def name(k):
        return class_names[k] if class_names else str(k)

    lines = []
    for i, label in enumerate(labels):
        if "labels" in outputs:  # multilabel
            probabilities = outputs["probabilities"][i]
            chosen = sorted(np.flatnonzero(outputs["labels"][i]), key=lambda k: -probabilities[k])
            top = [(name(k), float(probabilities[k])) for k in chosen]
            record = {"example": label, "labels": [{"label": n, "probability": p} for n, p in top]}
            text = "  ".join(f"{n} ({p:.4f})" for n, p in top) or "(no label)"
        elif "probabilities" in outputs:
            probabilities = outputs["probabilities"][i]
            if task == "binary" or probabilities.shape[-1] == 1:  # binary: P(positive)
                probabilities = np.array([1 - probabilities[0], probabilities[0]])
                decided = int(outputs["class_id"][i]) if "class_id" in outputs else int(probabilities[1] >= 0.5)
                order = [decided, 1 - decided][: max(1, top_k)]
            else:
                order = np.argsort(-probabilities)[: max(1, top_k)]
            top = [(name(k), float(probabilities[k])) for k in order]
            record = {"example": label, "predictions": [{"class": n, "probability": p} for n, p in top]}
            text = "  ".join(f"{n} ({p:.4f})" for n, p in top)
        elif "scores" in outputs:
            scores = outputs["scores"][i].ravel()
            named = {name(k): float(v) for k, v in enumerate(scores)}
            record = {"example": label, "scores": named}
            text = "  ".join(f"{n}: {v:.4f}" for n, v in list(named.items())[:16])
            text += "  ..." if scores.size > 16 else ""
        else:
            parts = {k: v[i] for k, v in outputs.items() if v.dtype.kind == "f"}
            record = {"example": label, **{k: {"dim": int(v.size), "norm": float(np.linalg.norm(v)),
                                               "head": [float(x) for x in v.ravel()[:4]]} for k, v in parts.items()}}
            text = "  ".join(f"{k}: dim {v.size}, norm {np.linalg.norm(v):.4f}, "
                             f"[{', '.join(f'{x:.4f}' for x in v.ravel()[:4])}{', ...' if v.size > 4 else ''}]"
                             for k, v in parts.items())
        lines.append(json.dumps(record) if as_json else f"{label}\t{text}")
    return lines


def run(args):
    """Runs ``mmzoo predict`` for parsed ``args``; returns the exit code.

    Raises:
        PredictError: For any user error (the CLI prints it and exits with 2).
    """
    if args.top_k < 1:
        raise PredictError(f"--top-k must be a positive integer. Received: {args.top_k}")
    served = load_export(args.path)
    inputs = {name: {**spec["raw"], "optional": bool(spec.get("optional"))} for name, spec in served.inputs.items()}
    values = _gather(args, inputs)
    count = len(next(iter(values.values())))

    def shown(name, value):
        if value == "" and inputs[name]["optional"]:
            return f"({name} absent)"
        return repr(value) if inputs[name]["kind"] == "text" else os.path.basename(value)

    labels = [" ".join(shown(n, values[n][i]) for n in sorted(values)) for i in range(count)]
    outputs = predict(served, values)
    for line in format_predictions(outputs, served.class_names, labels, args.top_k, args.json, task=served.task):
        print(line)
    sys.stdout.flush()
    return 0
