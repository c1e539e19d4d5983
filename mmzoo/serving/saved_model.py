"""SavedModel export with tensor and raw-input serving signatures, and reload.

An export holds these signatures (``keras.export.ExportArchive``):

* ``serving_default``: the model's numeric inputs (a dict keyed by modality,
  e.g. ``image`` float32 ``(None, 28, 28, 1)``) -> named outputs, by the task
  the model's head carries (``mmzoo.heads.from_model``): ``probabilities`` and
  ``class_id`` (plus ``class_name`` when class names are known) for multiclass
  and binary models (binary: ``P(positive) >= threshold``, the head's
  threshold); ``probabilities`` and multi-hot ``labels`` (plus
  ``label_names``) for multi-label ones; ``scores`` for regression and for
  models without a head.
* ``serving_raw``: ``tf.string`` ``(None,)`` per input (encoded image bytes,
  WAV bytes, UTF-8 text) -> the same outputs. Decoding and tokenizing run in
  the serving function with the ``mmzoo.data`` column specs of training; the
  tokenizers' tables are part of the SavedModel. Inputs the model can do
  without (``compose(modality_dropout=...)``) are ``optional`` in the
  metadata: an empty string marks that modality absent for that example.
* ``metadata``: no inputs -> ``{"json": ...}``, the export's contract.
* ``assets/model.keras``: for models of up to 32 MB of weights, the Keras
  model itself, which ``mmzoo explain`` uses for spectrogram saliency and
  attention weights (serving never reads it).
* For a ``mmzoo.retrieval.DualEncoder``: ``serving_default`` returns
  ``image_embedding`` and ``text_embedding``, and ``embed_image`` /
  ``embed_text`` (and their ``_raw`` forms) run one encoder alone.

Reload with ``mmzoo.load(path)``, or without mmzoo with
``tf.saved_model.load(path).signatures["serving_default"]`` or
``keras.layers.TFSMLayer(path, call_endpoint="serving_default")``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import warnings

import keras
import tensorflow as tf

from mmzoo import _gfile, balance
from mmzoo.data import ImageColumn
from mmzoo.serving import metadata as metadata_lib
from mmzoo.serving import outputs as outputs_lib
from mmzoo.serving import presets
from mmzoo.serving import raw as raw_lib
from mmzoo.serving.loaded import ExportedModel


def _dual_encoders(model):
    """``{"image": encoder, "text": encoder}`` for a dual encoder, else ``None``."""
    from mmzoo.retrieval import DualEncoder  # imported here: keeps this module's imports light  # noqa: PLC0415

    if isinstance(model, DualEncoder):
        return {"image": model.image_encoder, "text": model.text_encoder}
    return None


def _input_specs(model, encoders):
    if encoders is not None:
        tensors = {name: encoder.input for name, encoder in encoders.items()}
    elif isinstance(getattr(model, "input", None), dict):
        tensors = model.input
    else:
        raise ValueError(
            f"`model` must have dict inputs keyed by modality (or be a mmzoo.retrieval.DualEncoder). "
            f"Received a model with inputs: {getattr(model, 'input', None)}"
        )
    return {name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=name) for name, t in tensors.items()}


def _resolve_preprocessing(preprocessing, input_specs):
    """Returns ``(columns, preset class names)``; ``columns`` covers every input or is empty."""
    preset_names = None
    if isinstance(preprocessing, str):
        columns, preset_names = presets.preset(preprocessing)
    elif preprocessing is None:
        columns = {
            name: ImageColumn(name, tuple(spec.shape[1:]))
            for name, spec in input_specs.items()
            if spec.dtype == tf.float32 and spec.shape.rank == 4 and spec.shape[-1] in (1, 3, 4)
        }
        if set(columns) != set(input_specs):
            missing = sorted(set(input_specs) - set(columns))
            warnings.warn(
                f"mmzoo.export: no `preprocessing` for input(s) {missing} (audio needs its sample rate and "
                f"length, text its tokenizer), so the export has no serving_raw signature. Pass "
                f"preprocessing={{name: mmzoo.data column spec}} or a preset name to add it.",
                stacklevel=3,
            )
            columns = {}
    else:
        columns = dict(preprocessing)
    if columns:
        raw_lib.check_columns(columns, input_specs)
    return columns, preset_names


def _bad_indices(ok):
    """Batch indices of the examples where the per-example boolean ``ok`` is false."""
    return tf.cast(tf.where(tf.logical_not(ok))[:, 0], tf.int32)


def _checked(inputs, unit_range=()):
    """Asserts a non-empty batch, the static example shape, equal batch sizes and finite values; returns the inputs.

    Float inputs must be finite (NaN or inf would give NaN probabilities and
    class 0); inputs named in ``unit_range`` (images) must lie in [0, 1], the
    range the model was trained on (0-255 pixels would be silently misread).
    """
    checks = [
        tf.debugging.assert_positive(
            tf.shape(x)[0], message=f"serving input `{name}`: empty batch (expected at least one example)"
        )
        for name, x in inputs.items()
    ]
    checks += [
        tf.debugging.assert_equal(
            tf.shape(x)[1:],
            tf.constant(x.shape[1:].as_list(), tf.int32),
            message=f"serving input `{name}`: wrong shape; expected (batch, {', '.join(map(str, x.shape[1:]))})",
        )
        for name, x in inputs.items()
        if x.shape.rank and x.shape.rank > 1
    ]
    checks += raw_lib.check_same_batch(inputs)
    for name, x in inputs.items():
        if not x.dtype.is_floating:
            continue
        axes = list(range(1, x.shape.rank or 1)) if (x.shape.rank or 0) > 1 else None
        finite = tf.math.is_finite(x) if axes is None else tf.reduce_all(tf.math.is_finite(x), axis=axes)
        checks.append(tf.debugging.Assert(tf.reduce_all(finite), [
            f"serving input `{name}`: NaN or infinite values; bad example indices:", _bad_indices(finite)],
            name="check_finite"))
        if name in unit_range:
            inside = tf.logical_and(x >= 0.0, x <= 1.0)
            inside = tf.reduce_all(inside, axis=axes) if axes else inside
            checks.append(tf.debugging.Assert(tf.reduce_all(inside), [
                f"serving input `{name}`: pixel values outside [0, 1] (images are float32 in [0, 1]: divide 8-bit "
                "pixels by 255, or send the encoded file to serving_raw); bad example indices:",
                _bad_indices(inside)], name="check_unit_range"))
    with tf.control_dependencies(checks):
        return {name: tf.identity(x) for name, x in inputs.items()}


def _embed_fn(name, encoder):
    def embed(inputs):
        return {f"{name}_embedding": tf.cast(encoder(inputs[name], training=False), tf.float32)}

    return embed


def _endpoints(model, encoders, task, class_names, threshold):
    """``[(endpoint name, input names, fn(inputs) -> outputs)]`` of the numeric model."""
    if encoders is not None:
        def both(inputs):
            return {f"{m}_embedding": tf.cast(encoders[m](inputs[m], training=False), tf.float32) for m in encoders}

        return [("serving_default", sorted(encoders), both)] + [
            (f"embed_{m}", [m], _embed_fn(m, encoder)) for m, encoder in encoders.items()
        ]

    def serve(inputs):
        return outputs_lib.named_outputs(task, model(inputs, training=False), class_names, threshold)

    return [("serving_default", sorted(model.input), serve)]


def _tensor_fn(fn, unit_range=()):
    """The numeric endpoint: checks, then ``fn``."""

    def serve(inputs):
        return fn(_checked(inputs, unit_range))

    return serve


def _raw_fn(fn, columns, optional=()):
    """The raw endpoint: decode each input with its column spec, check, then ``fn``."""

    def serve(inputs):
        return fn(_checked(raw_lib.decode_all(columns, inputs, optional=optional)))

    return serve


def _raw_name(endpoint):
    return "serving_raw" if endpoint == "serving_default" else f"{endpoint}_raw"


def _prepare_folder(path):
    """Checks ``path`` can receive an export (nothing is deleted yet) and creates its parent."""
    path = os.fspath(path)
    if tf.io.gfile.exists(path) and (
        not tf.io.gfile.isdir(path)
        or (tf.io.gfile.listdir(path) and not _gfile.isfile(os.path.join(path, "saved_model.pb")))
    ):
        raise ValueError(
            f"`path` exists and is not a SavedModel folder; refusing to overwrite it. Received: path={path!r}"
        )
    parent = os.path.dirname(_gfile.abspath(path))
    try:
        with _gfile.os_errors(parent):
            tf.io.gfile.makedirs(parent)
    except OSError as error:
        raise OSError(f"`path`: cannot create the folder {parent!r} for the export ({error.strerror}). "
                      f"Received: path={path!r}") from None
    if not _gfile.is_remote(parent) and not os.access(parent, os.W_OK):
        raise OSError(f"`path`: the folder {parent!r} is not writable. Received: path={path!r}")
    return path


def _swap_into_place(staging, path):
    """Moves the finished ``staging`` folder (a sibling of ``path``) to ``path``, replacing an older export.

    Locally a rename (same parent: atomic). On a remote file system, where a
    folder rename is not atomic (GCS) or not supported (``ram://``), the files
    are copied with ``saved_model.pb`` last, after the old export's
    ``saved_model.pb`` was removed first: an interrupted copy leaves a folder
    without ``saved_model.pb``, which does not load as a model.
    """
    pb = os.path.join(staging, "saved_model.pb")
    if not _gfile.isfile(pb) or tf.io.gfile.stat(pb).length == 0:
        raise OSError(f"The export to {path!r} wrote no saved_model.pb (is the disk full?); nothing was replaced.")
    if _gfile.is_remote(path):
        _copy_into_place(staging, path)
        return
    old = None
    if os.path.exists(path):
        old = f"{staging}.previous"
        os.rename(path, old)
    try:
        os.rename(staging, path)
    except OSError:
        if old is not None:
            os.rename(old, path)  # the previous export stays where it was
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _copy_into_place(staging, path):
    """Replaces the remote export ``path`` by a copy of ``staging``, ``saved_model.pb`` removed first, copied last."""
    path = _gfile.normpath(path)
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        tf.io.gfile.remove(os.path.join(path, "saved_model.pb"))
    _gfile.remove_tree(path)
    files = []
    for folder, _, names in tf.io.gfile.walk(staging):
        target = path + folder[len(staging):]
        tf.io.gfile.makedirs(target)
        files += [(os.path.join(folder, n), os.path.join(target, n)) for n in names if n != "saved_model.pb"]
    for source, target in [*files, (os.path.join(staging, "saved_model.pb"), os.path.join(path, "saved_model.pb"))]:
        tf.io.gfile.copy(source, target, overwrite=True)


def export(model, path, preprocessing=None, class_names=None, threshold=None, task=None):
    """Writes ``model`` as a SavedModel with tensor and raw-input signatures.

    Args:
        model: A built Keras model with dict inputs keyed by modality, or a
            ``mmzoo.retrieval.DualEncoder``.
        path: Output folder, local or on a TensorFlow file system (``gs://``;
            created; an existing SavedModel there is replaced). The export is
            written to a hidden sibling folder first, then moved into place:
            locally by a rename (atomic: a failed export leaves the older one
            as it was); on a remote file system, where folder renames are not
            atomic, by copying its files with ``saved_model.pb`` written last
            (the older export's removed first), so an interrupted copy leaves
            a folder without ``saved_model.pb`` that does not load as a model.
        preprocessing: How ``serving_raw`` decodes raw inputs: a dict of
            ``mmzoo.data`` column specs keyed by input name (the ones used to
            build the training ``tf.data`` pipeline: ``ImageColumn``,
            ``AudioColumn``, ``TextColumn`` with its fitted tokenizer), or a
            preset name (``"av_digits"``). ``None`` infers image inputs
            (``ImageColumn``, resize); a model with audio or text inputs then
            gets no ``serving_raw`` (with a warning).
        class_names: Class names overriding the ones the model's head carries
            (binary: negative, positive); ``None`` uses the head's, else the
            preset's. Stored in the metadata and returned as ``class_name``
            (``label_names``) outputs.
        threshold: Decision threshold overriding the head's (binary
            ``class_id``, multi-label ``labels``); ``None`` uses the head's.
        task: Only for a model without an mmzoo head (a plain Keras model):
            ``"binary"``, ``"multiclass"``, ``"multilabel"``, ``"regression"``
            or ``"scores"`` (the default: outputs returned as they are). A
            model built by ``mmzoo.compose`` / ``mmzoo.build`` carries its task;
            a ``task`` that contradicts it is an error.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``model`` has no dict inputs, ``preprocessing`` does not
            match the model's inputs, ``class_names`` has the wrong length,
            ``task`` or ``threshold`` is invalid, or ``path`` is an existing
            folder that is not a SavedModel.

    Example::

        model = mmzoo.build("av_digits_concat")   # its head carries class names "0".."9"
        mmzoo.export(model, "saved_models/av_digits", preprocessing="av_digits")
        served = tf.saved_model.load("saved_models/av_digits")
        served.signatures["serving_raw"](image=png_batch, audio=wav_batch)["class_name"]
        # A plain Keras model has no head: say what it is.
        mmzoo.export(plain_model, "saved_models/plain", task="multiclass", class_names=["cat", "dog"])
    """
    if isinstance(model, keras.Model) and not model.built:
        raise ValueError("`model` must be built before export (call it once or build it with an input shape).")
    encoders = _dual_encoders(model)
    input_specs = _input_specs(model, encoders)
    columns, preset_names = _resolve_preprocessing(preprocessing, input_specs)
    if encoders is not None:
        if task not in (None, "embeddings") or class_names is not None or threshold is not None:
            raise ValueError(
                f"A dual encoder exports embeddings; it takes no `task`, `class_names` or `threshold`. Received: "
                f"task={task!r}, class_names={class_names!r}, threshold={threshold!r}"
            )
        resolved = {"task": "embeddings", "class_names": None, "threshold": None, "head": None}
    else:
        resolved = outputs_lib.resolve_task(model, task, class_names, threshold, default_class_names=preset_names)
    task, class_names, threshold = resolved["task"], resolved["class_names"], resolved["threshold"]
    optional = balance.optional_inputs(model) if encoders is None else []
    path = _prepare_folder(path)

    archive = keras.export.ExportArchive()
    archive.track(model)
    for column in columns.values():
        if raw_lib.raw_kind(column) == "text":
            archive.track(column.tokenizer)
        elif raw_lib.raw_kind(column) == "categorical":
            archive.track(column)  # its lookup table
    signatures = {}
    for endpoint, names, fn in _endpoints(model, encoders, task, class_names, threshold):
        specs = {n: input_specs[n] for n in names}

        images = [n for n in names if n in columns and raw_lib.raw_kind(columns[n]) == "image"]
        served = archive.add_endpoint(endpoint, _tensor_fn(fn, images), input_signature=[specs])
        output_names = sorted(served.get_concrete_function(specs).structured_outputs)
        signatures[endpoint] = {"inputs": names, "outputs": output_names, "raw": False}
        if columns:
            raw_specs = {n: tf.TensorSpec((None,), tf.string, name=n) for n in names}
            archive.add_endpoint(_raw_name(endpoint), _raw_fn(fn, columns, optional), input_signature=[raw_specs])
            signatures[_raw_name(endpoint)] = {"inputs": names, "outputs": output_names, "raw": True}

    raw_configs = {n: raw_lib.column_config(c) for n, c in columns.items()}
    metadata = metadata_lib.build_metadata(
        model.name, task, class_names, input_specs, raw_configs, signatures, head=resolved["head"], optional=optional
    )
    metadata["signatures"]["metadata"] = {"inputs": [], "outputs": ["json"], "raw": False}
    metadata_json = json.dumps(metadata, indent=2, sort_keys=True)

    def metadata_fn():
        return {"json": tf.constant(metadata_json)}

    archive.add_endpoint("metadata", tf.function(metadata_fn, input_signature=[]))
    # Written to a hidden sibling folder, then moved into place (``_swap_into_place``): an export that fails before
    # the move (a full disk, an interrupt) leaves neither a half-written model nor a lost older one.
    parent, base = os.path.split(_gfile.abspath(path))
    if _gfile.is_remote(parent):
        staging = os.path.join(parent, f".{base}.partial-{uuid.uuid4().hex[:8]}")
    else:
        staging = tempfile.mkdtemp(prefix=f".{base}.partial-", dir=parent)
    try:
        archive.write_out(staging, verbose=False)
        assets = os.path.join(staging, "assets")
        _gfile.write_text(os.path.join(assets, metadata_lib.METADATA_FILE), metadata_json)
        for name, column in columns.items():
            if raw_lib.raw_kind(column) == "text":
                column.tokenizer.save(os.path.join(assets, metadata_lib.TOKENIZERS_DIR, name))
        if encoders is None:
            _save_keras_copy(model, assets)
        _swap_into_place(staging, path)
    finally:
        _gfile.remove_tree(staging)
    return path


KERAS_COPY = "model.keras"
KERAS_COPY_MAX_BYTES = 32 * 2**20
"""Models whose weights take at most this many bytes get a ``.keras`` copy in the export's assets."""


def _save_keras_copy(model, assets):
    """Writes ``assets/model.keras`` (for ``mmzoo explain``'s gradients and attention weights) for small models."""
    size = sum(int(w.numpy().nbytes) for w in model.weights)
    if size > KERAS_COPY_MAX_BYTES:
        return
    try:
        model.save(os.path.join(assets, KERAS_COPY))
    except (TypeError, ValueError, NotImplementedError) as error:  # e.g. a custom layer without get_config
        warnings.warn(f"mmzoo.export: no {KERAS_COPY} copy in the export ({error}); serving is unaffected.",
                      stacklevel=3)


def load(path):
    """Reloads an export written by ``export``.

    Args:
        path: The SavedModel folder.

    Returns:
        A ``mmzoo.serving.ExportedModel`` (``.signatures``, ``.metadata``,
        ``.class_names``, ``.predict(inputs)``, ``.predict_raw(inputs)``).

    Raises:
        FileNotFoundError: If ``path`` holds no SavedModel or no mmzoo metadata.

    Example::

        served = mmzoo.load("saved_models/av_digits_concat")
        served.predict_raw({"image": [png_bytes], "audio": [wav_bytes]})["class_name"]
    """
    return ExportedModel(path)
