"""``mmzoo explain``: which modality decided an exported model's prediction on one example.

The files are decoded exactly as the export's ``serving_raw`` signature
decodes them: with the ``mmzoo.data`` column specs described in the export's
metadata (image size and fit, audio rate, length and trimming recipe, the
saved tokenizer), through ``mmzoo.serving.raw.decode_all``, the function the
signature runs. ``mmzoo.explain`` then works on the export's
``serving_default`` signature (tensor inputs): the ablation of each modality
(all zeros: absent), integrated gradients through the restored function and
per-token occlusion for text. The signature holds no Keras layers, so audio
saliency is on the waveform and attention weights are not shown; when the
export folder also holds the Keras model (``assets/model.keras``), that
model is explained instead (time-frequency audio saliency on its
spectrogram layer, attention weights).

Each of ``--image``, ``--audio``, ``--text`` feeds the input of that name
(or the model's only input of that kind); ``--input NAME=VALUE`` feeds any
input by name (a model of ``mmzoo.fit`` has one text input per text column),
and a text input that may be empty (``TextColumn(allow_empty=True)``) left
out is the empty text. An input the export marks
optional (a model trained with modality dropout) may be left out: it is
absent (all zeros), as an empty string is in ``serving_raw``. Problems (a missing file, a
modality the model does not have, a missing input) raise ``ExplainError``
with a one-line message; ``mmzoo explain`` prints it and exits with code 2.

Example::

    mmzoo explain saved_models/av_digits_concat --image 7.png --audio 7_jackson_0.wav --output why.png
    mmzoo explain saved_models/av_digits_concat --image 7.png --audio 7_jackson_0.wav --json
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from mmzoo.cli import predict as predict_cli

FLAGS = ("image", "audio", "text")
# The Keras model inside an export folder, explained instead of the signature when present.
KERAS_MODEL_FILE = os.path.join("assets", "model.keras")
# Keys of an audio input's raw config that ``_audio_column`` knows how to rebuild.
_AUDIO_KEYS = {"kind", "encoding", "sampling_rate", "num_samples", "crop", "trim_leading_silence", "peak_normalize"}


class ExplainError(ValueError):
    """A user error of ``mmzoo explain`` (one line, naming the file or input)."""


def add_parser(subparsers):
    """Adds the ``explain`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "explain", help="which modality decided an exported model's prediction: shares, saliency PNG"
    )
    parser.add_argument("path", metavar="MODEL_DIR", help="SavedModel folder written by mmzoo.export / mmzoo train")
    parser.add_argument("--image", help="image file (PNG/JPEG/GIF/BMP)")
    parser.add_argument("--audio", help="WAV file")
    parser.add_argument("--text", help="text")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                        help="any input by name: a file for image/audio inputs, the text for text inputs "
                             "(e.g. --input tags='cheerful, happy'); repeat for each")
    parser.add_argument("--output", default="explanation.png", metavar="PNG",
                        help="figure to write (default: %(default)s)")
    parser.add_argument("--target", help="class to explain, a name or an id (default: the top class)")
    parser.add_argument("--steps", type=int, default=32,
                        help="integrated-gradients path points (default: %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (top classes, shares, ablation, attributions, PNG path)")
    return parser


def _metadata(path):
    """The export's metadata (read before the SavedModel is loaded, so that user errors answer at once)."""
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.serving.metadata import read_metadata  # noqa: PLC0415

    if not tf.io.gfile.isdir(path):
        raise ExplainError(f"{path}: no such folder (expected a SavedModel written by mmzoo.export)")
    try:
        metadata = read_metadata(path)
    except (FileNotFoundError, ValueError) as error:
        raise ExplainError(str(error).splitlines()[0]) from None
    if "serving_raw" not in metadata.get("signatures", {}):
        raise ExplainError(f"{path}: this export has no serving_raw signature (exported without preprocessing)")
    return metadata


def _load(path):
    try:
        return predict_cli.load_export(path)
    except predict_cli.PredictError as error:
        raise ExplainError(str(error)) from None


def _keras_model(path):
    """The Keras model saved in the export folder (``KERAS_MODEL_FILE``, loaded in safe mode), or ``None``."""
    from mmzoo import _gfile  # noqa: PLC0415

    file = os.path.join(path, KERAS_MODEL_FILE)
    if not _gfile.isfile(file):
        return None
    import keras  # noqa: PLC0415

    import mmzoo.branches  # noqa: PLC0415  # registers the serializable layers of mmzoo models
    import mmzoo.composition  # noqa: F401, PLC0415

    return keras.saving.load_model(file, compile=False, safe_mode=True)


def _assign(args, metadata):
    """``({input name: value}, kinds, absent)`` from the flags.

    A flag feeds the input of its name, else the model's only input of its
    kind; an optional input (a model trained with modality dropout) without
    a flag is absent (all zeros), any other missing input is an error.
    """
    kinds = {name: (spec.get("raw") or {}).get("kind") for name, spec in metadata["inputs"].items()}
    values = {}
    for flag in FLAGS:
        value = getattr(args, flag)
        if value is None:
            continue
        of_kind = [name for name, kind in kinds.items() if kind == flag]
        name = flag if flag in kinds else of_kind[0] if len(of_kind) == 1 else None
        if name is None:
            raise ExplainError(f"--{flag}: this model has no {flag!r} input; its inputs: {sorted(kinds)}")
        values[name] = value
    for item in args.input:
        name, sep, value = item.partition("=")
        if not sep or name not in kinds:
            raise ExplainError(f"--input {item!r}: expected NAME=VALUE with NAME one of this model's inputs "
                               f"{sorted(kinds)}")
        if name in values:
            raise ExplainError(f"--input {item!r}: input {name!r} is already given")
        values[name] = value
    for name, spec in metadata["inputs"].items():  # a text field that may be empty ("no tags") defaults to empty
        if name not in values and (spec.get("raw") or {}).get("allow_empty"):
            values[name] = ""
    absent = [name for name in kinds if name not in values and metadata["inputs"][name].get("optional")]
    missing = [name for name in kinds if name not in values and name not in absent]
    if missing:
        name = missing[0]
        only = kinds[name] in FLAGS and (name == kinds[name] or list(kinds.values()).count(kinds[name]) == 1)
        flag = f" (--{kinds[name]})" if only else f" (--input {name}=...)"
        raise ExplainError(f"missing input {name!r}{flag}: this model needs {sorted(kinds)}")
    if not values:
        raise ExplainError(f"no input given: this model takes {sorted(kinds)}")
    return values, kinds, absent


def _audio_column(name, raw):
    from mmzoo.data import AudioColumn  # noqa: PLC0415
    from mmzoo.serving.audio import FittedAudioColumn  # noqa: PLC0415

    unknown = sorted(set(raw) - _AUDIO_KEYS)
    if unknown:
        raise ExplainError(f"input {name!r}: the export's audio decoding has settings {unknown} that mmzoo explain "
                           "cannot rebuild")
    if "trim_leading_silence" in raw:
        trim = raw["trim_leading_silence"]
        return FittedAudioColumn(name, raw["sampling_rate"], raw["num_samples"], frame=trim["frame"],
                                 threshold=trim["threshold"], margin=trim["margin"], peak=raw["peak_normalize"])
    return AudioColumn(name, raw["sampling_rate"], raw["num_samples"], crop=raw["crop"])


def columns_from_metadata(metadata, path, names=None):
    """The ``mmzoo.data`` column specs that an export's ``serving_raw`` decodes with, rebuilt from its metadata.

    Args:
        metadata: The export's metadata (``mmzoo.serving.read_metadata``).
        path: The export folder (its saved tokenizers).
        names: The inputs to rebuild (default: all).

    Returns:
        A dict of ``ImageColumn`` / ``AudioColumn`` (``FittedAudioColumn``
        for the AV-digits recipe) / ``TextColumn`` (the saved tokenizer)
        keyed by input name.

    Raises:
        ExplainError: For an input of another kind or settings it cannot rebuild.
    """
    from mmzoo.data import ImageColumn, TextColumn, load_tokenizer  # noqa: PLC0415

    columns = {}
    for name, spec in metadata["inputs"].items():
        if names is not None and name not in names:
            continue
        raw = spec.get("raw") or {}
        kind = raw.get("kind")
        if kind == "image":
            columns[name] = ImageColumn(name, tuple(raw["image_shape"]), fit=raw["fit"], pad_value=raw["pad_value"],
                                        **({"max_pixels": raw["max_pixels"]} if "max_pixels" in raw else {}))
        elif kind == "audio":
            columns[name] = _audio_column(name, raw)
        elif kind == "text":
            columns[name] = TextColumn(name, load_tokenizer(os.path.join(path, raw["tokenizer_dir"])),
                                       max_bytes=raw.get("max_bytes"), allow_empty=raw.get("allow_empty", False))
        else:
            raise ExplainError(f"input {name!r} is {kind or 'not a raw input'}; mmzoo explain reads images, audio "
                               "and text")
    return columns


def _raw_values(values, kinds):
    """File bytes (checked to be the input's format) or UTF-8 text, one per input."""
    out = {}
    for name, value in values.items():
        if kinds[name] == "text":
            out[name] = value.encode("utf-8")
            continue
        try:
            out[name] = predict_cli._read_file(name, kinds[name], value)
        except predict_cli.PredictError as error:
            raise ExplainError(str(error)) from None
    return out


def _decode(columns, raw, values, kinds, absent, metadata):
    """The model inputs (numpy batches of one) decoded by ``serving_raw``'s own decoding function.

    Absent inputs are all zeros, as ``serving_raw`` decodes their empty string.
    """
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.serving import raw as raw_lib  # noqa: PLC0415

    try:  # one example: no parallel iterations (eager map_fn warns about them)
        decoded = raw_lib.decode_all(columns, {name: tf.constant([value]) for name, value in raw.items()},
                                     parallel_iterations=1)
    except (tf.errors.OpError, ValueError) as error:
        files = ", ".join(f"{name}={values[name]}" for name in sorted(values) if kinds[name] != "text")
        raise ExplainError(f"cannot decode {files}: {predict_cli._error_reason(error)}") from None
    out = {name: value.numpy() for name, value in decoded.items()}
    for name in absent:
        spec = metadata["inputs"][name]
        out[name] = np.zeros([1, *spec["shape"][1:]], tf.as_dtype(spec["dtype"]).as_numpy_dtype)
    return out


def _target(value, class_names):
    if value is None:
        return None
    if class_names and value in class_names:
        return value
    if value.lstrip("-").isdigit():
        return int(value)
    raise ExplainError(f"--target: {value!r} is not a class of this model"
                       + (f" {list(class_names)}" if class_names else " (give a class id)"))


def _summary(explanation, label, path):
    record = explanation.to_dict(0)
    lines = [f"example: {label}"]
    key = "value" if explanation.task in ("regression", "scores") else "probability"
    lines.append("top classes: " + "  ".join(f"{c['class']} ({c[key]:.4f})" for c in record["top_classes"]))
    lines.append(f"explained class: {record['target']['class']} (score {record['target']['score']:.4f})")
    width = max(len("modality"), *(len(m) for m in explanation.modalities))
    lines.append(f"{'modality':{width}s}  share  ablation  attribution")
    for m in explanation.modalities:
        lines.append(f"{m:{width}s}  {record['shares'][m]:.3f}  {record['ablation'][m]:+8.4f}  "
                     f"{record['integrated_gradients'][m]:+.4f} ({record['attribution_method'][m]})")
    lines.append(f"wrote explanation: {path}")
    return lines


def run(args):
    """Runs ``mmzoo explain`` for parsed ``args``; returns the exit code.

    Raises:
        ExplainError: For any user error (the CLI prints it and exits with 2).
    """
    if args.steps < 1:
        raise ExplainError(f"--steps must be a positive integer. Received: {args.steps}")
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo import _gfile  # noqa: PLC0415

    output = _gfile.abspath(args.output)
    if not tf.io.gfile.isdir(os.path.dirname(output)):
        raise ExplainError(f"--output: no such folder: {os.path.dirname(output)}")
    metadata = _metadata(args.path)
    values, kinds, absent = _assign(args, metadata)
    raw = _raw_values(values, kinds)
    target = _target(args.target, metadata.get("class_names"))
    columns = columns_from_metadata(metadata, args.path, names=list(values))
    inputs = _decode(columns, raw, values, kinds, absent, metadata)
    served = _load(args.path)
    from mmzoo.explanations import explain  # noqa: PLC0415

    vocabularies = {name: list(column.tokenizer.vocabulary) for name, column in columns.items()
                    if kinds[name] == "text"}
    try:
        explanation = explain(_keras_model(args.path) or served, inputs, target=target, steps=args.steps)
    except ValueError as error:
        raise ExplainError(str(error).splitlines()[0]) from None
    served_outputs = served.predict_raw({name: [raw.get(name, b"")] for name in kinds})  # "": absent
    served_key = "scores" if "scores" in served_outputs else "probabilities"
    if not np.allclose(served_outputs[served_key], explanation.predictions, atol=1e-4):
        print("mmzoo explain: warning: the decoded inputs give other outputs than serving_raw "
              f"({served_outputs[served_key][0][:4]} vs {explanation.predictions[0][:4]})", file=sys.stderr)
    explanation.plot(0, output, class_names=served.class_names, vocabularies=vocabularies)
    label = " ".join(f"{n}=(absent)" if n in absent else repr(values[n]) if kinds[n] == "text"
                     else os.path.basename(values[n]) for n in sorted(kinds))
    if args.json:
        print(json.dumps({"example": label, **explanation.to_dict(0), "png": output}))
    else:
        print("\n".join(_summary(explanation, label, output)))
    sys.stdout.flush()
    return 0
