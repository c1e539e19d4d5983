"""``ExportedModel``: a reloaded export with its metadata and numpy helpers."""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

from mmzoo import _gfile
from mmzoo.serving.metadata import read_metadata


class ExportedModel:
    """A SavedModel written by ``mmzoo.export``, reloaded.

    Attributes:
        path: The SavedModel folder.
        module: What ``tf.saved_model.load`` returned.
        metadata: The export's metadata dict (inputs, task, class names,
            threshold, head, signatures).
        signatures: The serving signatures by name.

    Example::

        served = mmzoo.load("saved_models/av_digits_concat")
        served.task, served.class_names[:3]                              # ('multiclass', ['0', '1', '2'])
        served.predict_raw({"image": [png], "audio": [wav]})["class_name"]  # array([b'7'], dtype=object)
    """

    def __init__(self, path):
        path = os.fspath(path)
        if not _gfile.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"No SavedModel at {path} (expected {os.path.join(path, 'saved_model.pb')}).")
        self.path = path
        self.metadata = read_metadata(path)
        self.module = tf.saved_model.load(path)
        self.signatures = dict(self.module.signatures)

    @property
    def class_names(self):
        """The class names, or ``None``."""
        return self.metadata.get("class_names")

    @property
    def task(self):
        """The task.

        One of ``"binary"``, ``"multiclass"``, ``"multilabel"``, ``"regression"``, ``"scores"`` or ``"embeddings"``.
        """
        return self.metadata.get("task")

    @property
    def threshold(self):
        """The decision threshold of a binary or multi-label model, else ``None``."""
        return self.metadata.get("threshold")

    @property
    def inputs(self):
        """The input contract: ``{name: {"dtype", "shape", "raw"}}``."""
        return self.metadata["inputs"]

    def _call(self, signature, inputs, dtype_of):
        if signature not in self.signatures:
            raise ValueError(f"This export has no {signature!r} signature; it has {sorted(self.signatures)}.")
        wanted = self.metadata["signatures"][signature]["inputs"]
        if not isinstance(inputs, dict) or sorted(inputs) != sorted(wanted):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"`inputs` of {signature!r} must be a dict with keys {sorted(wanted)}. Received: {got}")
        tensors = {name: self._tensor(name, value, dtype_of(name)) for name, value in inputs.items()}
        return {k: v.numpy() for k, v in self.signatures[signature](**tensors).items()}

    def _tensor(self, name, value, dtype):
        """Checks one input against the contract and converts it, naming it on error."""
        if dtype == tf.string:
            array = np.asarray(value, object)
            if array.ndim != 1 or not all(isinstance(v, bytes) for v in array):
                raise ValueError(f"Input {name!r}: expected a list of bytes/str (one per example). Received: "
                                 f"{type(value).__name__} of shape {array.shape}")
            return tf.constant(array, tf.string)
        spec = self.inputs[name]
        array = np.asarray(value)
        want = tf.as_dtype(spec["dtype"])
        ok_kind = array.dtype.kind in "iu" if want.is_integer else array.dtype.kind in "iuf"
        if not ok_kind:
            raise ValueError(f"Input {name!r}: expected {want.name} values. Received dtype: {array.dtype}")
        if array.dtype.kind in "iu" and want.is_floating and (spec.get("raw") or {}).get("kind") == "image":
            raise ValueError(
                f"Input {name!r}: images are float32 in [0, 1]; integer pixels are not converted silently (divide "
                f"8-bit pixels by 255, or send the encoded file with predict_raw). Received dtype: {array.dtype}"
            )
        if list(array.shape[1:]) != spec["shape"][1:] or array.ndim != len(spec["shape"]):
            raise ValueError(
                f"Input {name!r}: expected shape {tuple(spec['shape'])} (None = batch). Received: {array.shape}"
            )
        return tf.constant(array, want)

    def predict(self, inputs, signature="serving_default"):
        """Calls a numeric signature.

        Args:
            inputs: Dict of arrays keyed by input name (batch first).
            signature: Signature name.

        Returns:
            Dict of numpy outputs.

        Raises:
            ValueError: If the keys do not match the signature's inputs, or
                an image input is given integer pixels (images are float32
                in [0, 1]).
            tf.errors.InvalidArgumentError: If a value is invalid (an empty
                batch, NaN or infinite values, image values outside [0, 1]);
                the message names the input and the bad example indices.
        """
        return self._call(signature, inputs, lambda name: tf.as_dtype(self.inputs[name]["dtype"]))

    def predict_raw(self, inputs, signature="serving_raw", on_error="raise"):
        """Calls a raw signature with bytes (images, WAV) and ``str`` (text).

        Args:
            inputs: Dict of lists of ``bytes``/``str`` keyed by input name.
            signature: Signature name.
            on_error: ``"raise"`` (default): one bad example fails the call
                with an ``InvalidArgumentError`` naming the input and the
                example. ``"skip"``: the good examples are still answered;
                the result then also holds ``"indices"`` (the examples the
                output rows belong to) and ``"errors"`` (``{example index:
                reason}``).

        Returns:
            Dict of numpy outputs (with ``"indices"`` and ``"errors"`` for
            ``on_error="skip"``).

        Raises:
            ValueError: If the keys do not match the signature's inputs, or
                ``on_error`` is unknown.
            tf.errors.InvalidArgumentError: With ``on_error="raise"``, if a
                value cannot be decoded (the message names the input and the
                example index).
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"`on_error` must be 'raise' or 'skip'. Received: on_error={on_error!r}")
        inputs = {k: np.asarray([v.encode("utf-8") if isinstance(v, str) else v for v in vs], object)
                  for k, vs in inputs.items()} if isinstance(inputs, dict) else inputs
        if on_error == "raise":
            # The error is raised after the handlers, so it carries no chain of TensorFlow's tracebacks (their
            # frames hold the request's tensors: a refused request would leave them to the cyclic collector).
            try:
                return self._call(signature, inputs, lambda name: tf.string)
            except tf.errors.InvalidArgumentError as error:
                reason = self._name_the_failure(error, signature, inputs)
            raise tf.errors.InvalidArgumentError(None, None, reason)
        try:
            out = self._call(signature, inputs, lambda name: tf.string)
            return {**out, "indices": np.arange(len(next(iter(inputs.values())))), "errors": {}}
        except tf.errors.InvalidArgumentError:
            pass
        count = len(next(iter(inputs.values())))
        good, errors = [], {}
        for i in range(count):  # one call per example finds the bad ones; the good ones are then answered together
            try:
                self._call(signature, {k: v[i : i + 1] for k, v in inputs.items()}, lambda name: tf.string)
                good.append(i)
            except tf.errors.InvalidArgumentError as error:
                errors[i] = _reason(error, i)
        if not good:
            return {"indices": np.zeros(0, np.int64), "errors": errors}
        out = self._call(signature, {k: v[good] for k, v in inputs.items()}, lambda name: tf.string)
        return {**out, "indices": np.asarray(good), "errors": errors}

    def _name_the_failure(self, error, signature, inputs):
        """The one-line reason of a failed raw call, naming the input and the example."""
        sizes = {len(v) for v in inputs.values()}
        if "serving input `" in str(error) or len(sizes) != 1:
            return _reason(error, None)  # our own check: it names the input (and the example)
        # A TensorFlow decoder's own error ("Invalid PNG data, size 132"): find the example, name it.
        count = sizes.pop()
        for i in range(count if count > 1 else 0):
            try:
                self._call(signature, {k: v[i : i + 1] for k, v in inputs.items()}, lambda name: tf.string)
            except tf.errors.InvalidArgumentError as alone:
                return _reason(alone, i)
        return _reason(error, 0)


def _reason(error, index):
    """The readable part of a serving ``InvalidArgumentError`` for example ``index`` (run alone as example 0).

    ``index=None``: the error of a whole batch, whose message has the indices.

    Our own checks' messages name the input and example; an error of one of
    TensorFlow's decoders does not, so the input is read from the node it was
    raised at (``serving_input_<name>`` scope) and the example is ``index``.
    """
    text = str(getattr(error, "message", error))
    found = re.search(r"assertion failed: ((?:\[[^\]]*\]\s*)+)", text)
    if found:  # our checks: "[serving input `audio`, example] [0] [: invalid WAV: ...]"
        items = re.findall(r"\[([^\]]*)\]", found.group(1))
        reason = " ".join(" ".join(items).split())
        reason = re.sub(r" (:)", r"\1", reason)
        return reason if index is None else re.sub(r", example 0\b", f", example {index}", reason)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if not line.startswith(("Graph execution error", "Detected at node",
                                                                   "<stack traces", "[["))), lines[0] if lines else "")
    detail = re.sub(r"\s*\[\[\{\{node.*$", "", detail)
    node = re.search(r"serving_input_([A-Za-z0-9_.-]+?)/", text)
    where = f"serving input `{node.group(1)}`, example {index}" if node else f"example {index}"
    return f"{where}: cannot decode: {detail}"
