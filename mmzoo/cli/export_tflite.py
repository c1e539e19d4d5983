"""``mmzoo export-tflite``: convert a ``.keras`` file or an export to TFLite.

For AV-digits-shaped models (inputs among ``image`` (28, 28, 1) and
``audio`` (4000,), 10 classes) the embedded AV-digits data is used: its
train split calibrates ``--quantize int8``, and its test split measures the
accuracy change against the float model (``compare_with_float``). Other
models are converted with ``none``/``float16``/``dynamic`` (int8 needs
representative data: use ``mmzoo.export_tflite(..., representative_data=...)``).

Example::

    mmzoo export-tflite saved_models/av_digits_concat av.int8.tflite --quantize int8
"""

from __future__ import annotations

QUANTIZE_CHOICES = ("none", "dynamic", "int8", "float16")


class ExportTFLiteError(ValueError):
    """A user error of ``mmzoo export-tflite`` (one line)."""


def add_parser(subparsers):
    """Adds the ``export-tflite`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "export-tflite", help="convert a .keras model or an mmzoo SavedModel export to a .tflite file"
    )
    parser.add_argument("model", help="a .keras file (model.save) or a SavedModel folder (mmzoo.export / mmzoo train)")
    parser.add_argument("output", help="the .tflite file to write")
    parser.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none",
                        help="quantization (default: %(default)s)")
    return parser


def av_digits_split(model):
    """``(train_inputs, test_inputs, test_labels)`` of the embedded AV-digits data, or ``None`` if ``model`` differs."""
    from mmzoo.datasets import av_digits_recipe as av_digits  # noqa: PLC0415

    shapes = {"image": av_digits.IMAGE_SHAPE, "audio": (av_digits.NUM_SAMPLES,)}
    names = set(model.input)
    if not names or not names <= set(shapes) or model.output.shape[-1] != av_digits.NUM_CLASSES:
        return None
    if any(tuple(model.input[n].shape[1:]) != shapes[n] for n in names):
        return None
    arrays = av_digits.load_arrays()
    (x_train, _), (x_test, y_test) = arrays["train"], arrays["test"]
    return {n: x_train[n] for n in names}, {n: x_test[n] for n in names}, y_test


def run(args):
    """Runs ``mmzoo export-tflite`` for parsed ``args``; returns the exit code.

    Raises:
        ExportTFLiteError: For a user error (the CLI prints it and exits with 2).
    """
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.serving import tflite  # imports TensorFlow  # noqa: PLC0415

    if not args.output.endswith(".tflite"):
        raise ExportTFLiteError(f"output: expected a .tflite file name. Received: {args.output}")
    try:
        model = tflite.load_model(args.model)
    except (FileNotFoundError, ValueError) as error:
        raise ExportTFLiteError(str(error).splitlines()[0]) from None
    if not isinstance(getattr(model, "input", None), dict):
        raise ExportTFLiteError(f"{args.model}: the model must have dict inputs keyed by modality")
    quantize = None if args.quantize == "none" else args.quantize
    data = av_digits_split(model)
    if quantize == "int8" and data is None:
        raise ExportTFLiteError(
            f"--quantize int8 needs representative data; built in only for AV-digits models, and {args.model} "
            f"has inputs {sorted(model.input)}. Use mmzoo.export_tflite(model, path, quantize='int8', "
            f"representative_data=...) from Python."
        )
    path = tflite.export_tflite(model, args.output, quantize=quantize,
                                representative_data=data[0] if data is not None else None)
    print(f"wrote {path}: {tf.io.gfile.stat(path).length / 1024:.1f} KiB (quantize={args.quantize})")
    if data is not None:
        report = tflite.compare_with_float(model, path, data[1], data[2])
        print(f"AV-digits test split ({len(data[2])} examples): float accuracy {report['float_accuracy']:.4f}, "
              f"tflite accuracy {report['tflite_accuracy']:.4f} ({report['accuracy_change']:+.1f} points), "
              f"max |tflite - float| {report['max_abs_diff']:.2e}")
    return 0
