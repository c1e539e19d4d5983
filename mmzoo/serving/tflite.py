"""LiteRT / TFLite conversion of a model's numeric graph, with quantization.

``export_tflite`` converts the model (dict inputs, the same numeric contract
as ``serving_default``) into a ``.tflite`` file whose signature
``serving_default`` takes the inputs by name and returns ``output`` (the
model's probabilities / scores). Raw decoding stays outside: on device, decode
with the platform's codecs into the same tensors.

Quantization (``quantize``):

* ``None``: float32.
* ``"float16"``: weights stored as float16 (about half the size).
* ``"dynamic"``: weights int8, activations float (dynamic range).
* ``"int8"``: weights and activations int8, calibrated on a representative
  dataset; ops without an int8 kernel fall back to float, inputs and outputs
  stay float32.

The interpreter is ``ai_edge_litert.interpreter.Interpreter`` when that
package is installed, else TensorFlow's ``tf.lite.Interpreter`` (still
present in TF 2.21).
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from mmzoo import _gfile

QUANTIZATIONS = (None, "dynamic", "int8", "float16")
# Ops kept in float under quantize="int8" (the spectrogram front end's dynamic range).
FLOAT_OPS = (
    "MIRROR_PAD", "SLICE", "GATHER", "SQUARE", "ADD", "SQRT",
    "FULLY_CONNECTED", "MAXIMUM", "LOG", "REDUCE_MAX", "SUB", "MUL",
)


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415 (optional)
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter


CALIBRATION_PROGRESS_MIN = 100
"""int8 calibration on at least this many examples shows a progress bar."""


def _representative(representative_data, names, num_examples):
    if representative_data is None:
        raise ValueError(
            '`representative_data` is required for quantize="int8" (a dict of arrays keyed by input name).'
        )
    if not isinstance(representative_data, dict) or sorted(representative_data) != sorted(names):
        if isinstance(representative_data, dict):
            got = sorted(representative_data)
        else:
            got = type(representative_data).__name__
        raise ValueError(f"`representative_data` must be a dict with keys {sorted(names)}. Received: {got}")
    count = min(len(v) for v in representative_data.values())
    if count == 0:
        raise ValueError("`representative_data` holds no examples.")

    total = min(count, num_examples)

    def generate():
        progress = None
        if total >= CALIBRATION_PROGRESS_MIN:
            print(f"int8 calibration on {total} examples")
            progress = keras.utils.Progbar(total, unit_name="example")
        for i in range(total):
            yield {k: np.asarray(v[i : i + 1], np.float32 if np.asarray(v).dtype.kind == "f" else np.int32)
                   for k, v in representative_data.items()}
            if progress is not None:
                progress.update(i + 1)

    return generate


def _check_int8_convertible(model):
    """Refuses int8 for models whose per-example level normalisation divides by a quantized level."""
    from mmzoo import _keras_compat  # noqa: PLC0415
    from mmzoo.layers import WaveformNormalization  # noqa: PLC0415

    for layer in _keras_compat.walk_layers(model):
        if isinstance(layer, WaveformNormalization):
            raise ValueError(
                f'quantize="int8" cannot convert layer {layer.name!r} (WaveformNormalization): in 8-bit '
                "integers a quiet recording's level rounds to 0 and the division by it fails at run time. Use "
                'quantize="dynamic" or "float16" (weights quantized, activations float), or build the audio '
                "branch with level=None."
            )


def export_tflite(model, path, quantize=None, representative_data=None, num_calibration_examples=200):
    """Converts ``model`` to a ``.tflite`` file.

    Args:
        model: A Keras model with dict inputs keyed by modality.
        path: Output file (``.tflite``); its folder is created.
        quantize: ``None``, ``"dynamic"``, ``"int8"`` or ``"float16"``.
        representative_data: For ``"int8"``: a dict of arrays keyed by input
            name (real training examples) used to calibrate activations.
        num_calibration_examples: How many examples of ``representative_data`` to use.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``quantize`` is unknown (or ``"int8"`` for a model
            with a ``WaveformNormalization`` layer), ``model`` has no dict inputs,
            or ``representative_data`` is missing/mismatched for ``"int8"``.

    Example::

        train, test = mmzoo.datasets.av_digits_recipe.load_arrays().values()
        mmzoo.export_tflite(model, "av.int8.tflite", quantize="int8", representative_data=train[0])
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"`quantize` must be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
    if quantize == "int8":
        _check_int8_convertible(model)
    if not isinstance(getattr(model, "input", None), dict):
        raise ValueError("`model` must have dict inputs keyed by modality to convert to TFLite.")
    names = sorted(model.input)
    specs = {n: tf.TensorSpec((1, *model.input[n].shape[1:]), model.input[n].dtype, name=n) for n in names}
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(inputs):
        return {"output": model(inputs, training=False)}

    archive.add_endpoint("serving_default", serve, input_signature=[specs])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["serving_default"])
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = _representative(representative_data, names, num_calibration_examples)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
            # The log-mel front end (|STFT| -> mel matrix -> log) spans many orders of
            # magnitude before the log; int8 there erases quiet bands (measured on
            # AV-digits: -36 accuracy points). Those ops stay float; convolutions and
            # the rest run in int8.
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter,
                debug_dataset=converter.representative_dataset,
                debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(FLOAT_OPS)),
            )
            flatbuffer = debugger.get_nondebug_quantized_model()
        if quantize != "int8":
            flatbuffer = converter.convert()
    return _gfile.write_bytes(path, flatbuffer)


class TFLiteModel:
    """Runs a ``.tflite`` file written by ``export_tflite`` on numpy inputs.

    Args:
        path: The ``.tflite`` file.
        num_threads: Interpreter threads.

    Raises:
        FileNotFoundError: If ``path`` does not exist.

    Example::

        probabilities = TFLiteModel("av.tflite").predict({"image": images, "audio": audio})
    """

    def __init__(self, path, num_threads=None):
        if not _gfile.isfile(path):
            raise FileNotFoundError(f"No TFLite model at {path}")
        self.path = path
        source = {"model_content": _gfile.read_bytes(path)} if _gfile.is_remote(path) else {"model_path": path}
        self._interpreter = _interpreter_class()(**source, num_threads=num_threads)
        self._runner = self._interpreter.get_signature_runner("serving_default")
        self.input_details = self._runner.get_input_details()

    def predict(self, inputs):
        """Runs the model example by example (the file has batch size 1).

        Args:
            inputs: Dict of arrays keyed by input name, batch first.

        Returns:
            float32 ``(batch, units)`` outputs.

        Raises:
            ValueError: If the keys or shapes do not match the model's inputs.
        """
        if not isinstance(inputs, dict) or sorted(inputs) != sorted(self.input_details):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"`inputs` must be a dict with keys {sorted(self.input_details)}. Received: {got}")
        count = len(next(iter(inputs.values())))
        rows = []
        for i in range(count):
            feed = {}
            for name, detail in self.input_details.items():
                value = np.asarray(inputs[name][i : i + 1]).astype(detail["dtype"])
                if tuple(value.shape) != tuple(detail["shape"]):
                    raise ValueError(f"Input {name!r}: expected shape {tuple(detail['shape'][1:])} per example. "
                                     f"Received: {value.shape[1:]}")
                feed[name] = value
            rows.append(self._runner(**feed)["output"])
        return np.concatenate(rows).astype(np.float32)


def compare_with_float(model, path, inputs, labels):
    """Accuracy and file size of a ``.tflite`` model against the Keras float model.

    Args:
        model: The Keras model (float).
        path: Its ``.tflite`` conversion.
        inputs: Dict of test arrays keyed by input name.
        labels: int class labels of the test examples.

    Returns:
        A dict: ``size_bytes``, ``float_accuracy``, ``tflite_accuracy``,
        ``accuracy_change`` (points, tflite - float), ``max_abs_diff`` of the outputs.

    Example::

        compare_with_float(model, "av.int8.tflite", test_inputs, test_labels)["accuracy_change"]
    """
    expected = keras.ops.convert_to_numpy(model.predict(inputs, verbose=0, batch_size=256))
    got = TFLiteModel(path).predict(inputs)
    labels = np.asarray(labels)
    float_acc = float(np.mean(np.argmax(expected, -1) == labels))
    lite_acc = float(np.mean(np.argmax(got, -1) == labels))
    return {
        "size_bytes": tf.io.gfile.stat(path).length,
        "float_accuracy": float_acc,
        "tflite_accuracy": lite_acc,
        "accuracy_change": 100.0 * (lite_acc - float_acc),
        "max_abs_diff": float(np.max(np.abs(got - expected))),
    }


def load_model(path):
    """Loads a model to convert: a ``.keras`` file or an ``mmzoo.export`` SavedModel folder.

    A SavedModel folder is wrapped as a Keras model (``keras.layers.TFSMLayer``
    on its ``serving_default``) whose dict inputs are the export's inputs and
    whose output is its ``probabilities`` (or ``scores``), so ``export_tflite``
    and ``compare_with_float`` treat it like the original model.

    Args:
        path: A ``.keras`` file (``model.save``) or a SavedModel folder.

    Returns:
        A Keras model with dict inputs.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If ``path`` is neither a ``.keras`` file nor an mmzoo
            export with one ``probabilities``/``scores`` output.

    Example::

        model = load_model("saved_models/av_digits_concat")
        export_tflite(model, "av.tflite")
    """
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such file or folder (expected a .keras file or a SavedModel folder)")
    if not tf.io.gfile.isdir(path):
        if not path.endswith(".keras"):
            raise ValueError(f"{path}: expected a .keras file (model.save) or a SavedModel folder")
        import mmzoo  # noqa: F401, PLC0415 (registers mmzoo's serializable layers)

        return keras.saving.load_model(path)
    from mmzoo.serving.metadata import read_metadata  # noqa: PLC0415

    metadata = read_metadata(path)
    outputs = metadata["signatures"]["serving_default"]["outputs"]
    key = next((k for k in ("probabilities", "scores") if k in outputs), None)
    if key is None:
        raise ValueError(f"{path}: serving_default returns {outputs}; TFLite conversion needs a model with one "
                         f"`probabilities` or `scores` output (not a dual encoder).")
    inputs = {n: keras.Input(tuple(s["shape"][1:]), dtype=s["dtype"], name=n) for n, s in metadata["inputs"].items()}
    served = keras.layers.TFSMLayer(path, call_endpoint="serving_default", name="saved_model")
    return keras.Model(inputs, served(inputs)[key], name=metadata["model_name"])
