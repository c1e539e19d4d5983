"""``mmzoo.fit``: your own data (a manifest, records, a DataFrame or arrays) -> a trained, evaluated, exported model.

The path, in order:

1. **Data**: ``train`` / ``valid`` / ``test`` become manifests (or in-memory
   arrays); the columns are mapped to model inputs (``columns="auto"`` infers
   each column's kind and prints what it decided).
2. **Split**: without ``valid``, a seeded, stratified ``valid_fraction`` of
   ``train`` is held out (with ``group=``, whole groups: new speakers). The
   validation split drives early stopping and the best-weights restore;
   ``test`` is evaluated once, at the end.
3. **Model**: ``model="auto"`` sizes one branch per input to the data (image
   size, clip length, vocabulary; colour images go through the bundled
   pretrained EfficientNet-Lite0, frozen, whose features are computed once
   per split: ``mmzoo.training.encoded``) and takes the head from the label;
   ``model=ZOO_NAME`` builds a zoo model with its input overrides.
   ``fusion="auto"`` trains each of a small set of fusions and keeps the one
   with the lowest validation log loss.
4. **Reports**: validation and test reports (``mmzoo.training.metrics``),
   ``folds=K`` stratified cross-validation (mean +- std of every metric).
5. **Export**: with ``output_dir``, the SavedModel (``serving_default`` and
   ``serving_raw``, raw inputs decoded exactly as in training) goes to
   ``output_dir/model`` and the report to ``output_dir/report.json``.

Example::

    result = mmzoo.fit("train.csv", label="group", columns={"image": "image", "annotation": "text"},
                       epochs=20, output_dir="runs/emoji")
    print(result.test["accuracy"], result.export_path)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import uuid
import wave

import numpy as np

from mmzoo import _gfile
from mmzoo import _validation as check
from mmzoo.data import inference

logger = logging.getLogger("mmzoo")

FUSION_CHOICES = ("concat", "add", "weighted_sum", "attention", "gated", "low_rank", "late", "ensemble")
AUTO_FUSIONS = ("concat", "attention", "late", "ensemble")
TEXT_INPUT = "text"
MAX_IMAGE_SIDE = 64
MAX_AUDIO_SECONDS = 2.0
MAX_SEQUENCE_LENGTH = 64
VOCABULARY_SIZE = 20000
FEATURE_NORM = True
IMAGE_BATCH_NORM = False  # BatchNorm's moving statistics lag on small data: image-only 0.151 with, 0.413 without
BUDGET_SMALL_IMAGES_BELOW = 300  # seconds of time_budget under which images default to BUDGET_IMAGE_SIDE
BUDGET_IMAGE_SIDE = 32
IMAGE_ENCODERS = ("auto", "efficientnet_lite0", "mobilenet_v2", "cnn")
# image_encoder="auto"'s pretrained encoder. On OpenMoji groups (benchmarks/fusion.py, 3 seeds) fusion="auto" scored
# 0.887 with EfficientNet-Lite0 and 0.881 with the nsfwjs MobileNetV2, text alone 0.867; see the README.
DEFAULT_PRETRAINED_ENCODER = "efficientnet_lite0"
PRETRAINED_ENCODERS = ("efficientnet_lite0", "mobilenet_v2")
ENCODER_IMAGE_SIDE = 224  # the bundled encoders' training size
ENCODER_MIN_SIDE = 32
ENCODER_MAX_ROWS = 20000  # image_encoder="auto": a frozen pretrained encoder for colour images up to this many rows


class FitError(ValueError):
    """A problem with the data or the arguments of ``mmzoo.fit``, found before training (one line)."""


@dataclasses.dataclass
class DataPlan:
    """What ``fit`` decided about the data: column kinds, model inputs, label and task.

    Attributes:
        kinds: Column name -> kind (``"image"``, ``"audio"``, ``"text"``,
            ``"numeric"``, ``"categorical"``, ``"ignore"``).
        reasons: Column name -> why (for ``columns="auto"``).
        features: Model input name -> ``mmzoo.data`` column spec.
        label: The label spec (``LabelColumn``, ``MultiLabelColumn`` or
            ``RegressionLabel``); ``None`` for retrieval.
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"``, ``"regression"`` or ``"retrieval"``.
        modalities: Model input name -> modality kind.
        encoders: Image input name -> the frozen pretrained encoder it goes
            through (``"efficientnet_lite0"`` or ``"mobilenet_v2"``); inputs
            not named here get a CNN trained from scratch.
    """

    kinds: dict
    reasons: dict
    features: dict
    label: object
    task: str
    modalities: dict
    encoders: dict = dataclasses.field(default_factory=dict)
    encoded: object = dataclasses.field(default=None, repr=False, compare=False)  # EncodedInputs, made on first use

    def describe(self):
        """A few lines saying what was decided (printed by ``fit``)."""
        if self.label is None:
            lines = [f"task: {self.task} (no label: each row is a matching pair)"]
        else:
            lines = [f"label: {self.label.column!r} -> {self.task}" + (
                f" ({len(self.label.classes)} classes)" if self.task != "regression" else "")]
        for column, kind in self.kinds.items():
            reason = self.reasons.get(column)
            lines.append(f"column {column!r}: {kind}" + (f" ({reason})" if reason else ""))
        for name, spec in self.features.items():
            encoder = self.encoders.get(name)
            lines.append(f"input {name!r}: {_spec_summary(spec)}" + (
                f" through the frozen pretrained {encoder}" if encoder else ""))
        return "\n".join(lines)


@dataclasses.dataclass
class FitResult:
    """What ``mmzoo.fit`` returns.

    Attributes:
        model: The trained ``keras.Model`` (best validation epoch's weights).
        history: The Keras history dict of the final training.
        valid: The validation report (``mmzoo.training.metrics``).
        test: The test report, or ``None`` without ``test``.
        export_path: The SavedModel folder (``output_dir/model``), or ``None``.
        plan: The ``DataPlan`` (columns, inputs, label, task).
        fusion: The fusion kind used (the chosen one for ``fusion="auto"``).
        trials: For ``fusion="auto"`` / ``time_budget``: one dict per trial
            (settings, validation score, epochs, seconds).
        folds: For ``folds=K``: one report per fold, and ``cv`` their aggregate.
        cv: Aggregate of the fold reports (mean/std/min/max per metric), or ``None``.
        report_path: ``output_dir/report.json``, or ``None``.
    """

    model: object
    history: dict
    valid: dict
    test: dict | None
    export_path: str | None
    plan: DataPlan
    fusion: str
    trials: list = dataclasses.field(default_factory=list)
    folds: list = dataclasses.field(default_factory=list)
    cv: dict | None = None
    report_path: str | None = None


def _spec_summary(spec):
    from mmzoo.data import AudioColumn, ImageColumn, TextColumn  # noqa: PLC0415

    if isinstance(spec, ImageColumn):
        return f"image {tuple(spec.image_shape)} from {spec.column!r}"
    if isinstance(spec, AudioColumn):
        return f"audio {spec.num_samples} samples at {spec.sampling_rate} Hz from {spec.column!r}"
    if isinstance(spec, TextColumn):
        return (f"text {spec.tokenizer.sequence_length} tokens, vocabulary {spec.tokenizer.vocabulary_size}, "
                f"from {spec.columns!r}")
    return f"{spec.kind} {spec.columns!r}"


# ----------------------------------------------------------------------------------------------- data in


def as_manifest(data, argument="train", base_dir=None):
    """A ``mmzoo.data.Manifest`` from a CSV/JSONL path, a list of dicts or a DataFrame.

    Args:
        data: A manifest path (``.csv`` / ``.jsonl``), a list of dicts, a
            pandas DataFrame (anything with ``to_dict("records")``), or a
            ``Manifest``.
        argument: The argument's name (for errors).
        base_dir: Folder that relative file paths are resolved against
            (default: the manifest file's folder, else the working directory).

    Returns:
        A ``Manifest``.

    Raises:
        FitError: If ``data`` is none of these, a file is missing, or it has no rows.
    """
    from mmzoo import data as data_lib  # noqa: PLC0415

    if isinstance(data, data_lib.Manifest):
        manifest = data
    elif isinstance(data, (str, os.PathLike)):
        if not _gfile.isfile(data):
            raise FitError(f"{argument}: file not found: {os.fspath(data)}")
        try:
            manifest = data_lib.read_manifest(os.fspath(data), base_dir)
        except ValueError as error:
            raise FitError(f"{argument}: {error}") from None
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):
        manifest = data_lib.from_records(data.to_dict("records"), base_dir=base_dir)
    elif isinstance(data, (list, tuple)) and all(isinstance(r, dict) for r in data):
        manifest = data_lib.from_records(list(data), base_dir=base_dir)
    else:
        raise FitError(
            f"`{argument}` must be a CSV/JSONL manifest path, a list of dicts, a DataFrame or a dict of arrays. "
            f"Received: {type(data).__name__}"
        )
    if len(manifest) == 0:
        raise FitError(f"{argument}: the data has no rows")
    return manifest


def _is_arrays(data):
    return isinstance(data, dict) and data and all(isinstance(v, (np.ndarray, list, tuple)) for v in data.values())


def _arrays_to_records(arrays, argument):
    """Dict of equal-length arrays -> (records of scalar fields, dict of array-valued inputs)."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise FitError(f"`{argument}`: every array must have the same length. Received lengths: {lengths}")
    n = next(iter(lengths.values()))
    if n == 0:
        raise FitError(f"`{argument}`: the arrays are empty")
    scalars, tensors = {}, {}
    for key, value in arrays.items():
        array = np.asarray(value)
        if array.ndim == 1:
            scalars[key] = array.tolist()
        else:
            tensors[key] = array
    records = [{k: v[i] for k, v in scalars.items()} for i in range(n)]
    return records, tensors


# ----------------------------------------------------------------------------------------------- planning


def _normalise_columns(columns, manifest, label):
    """``columns`` argument -> dict column -> kind (``None`` kind = infer)."""
    if columns is None or columns == "auto":
        return {c: None for c in manifest.columns if c != label}
    if isinstance(columns, dict):
        out = {}
        for column, kind in columns.items():
            if kind is not None and kind != "auto" and kind not in inference.KINDS:
                raise FitError(
                    f"columns[{column!r}]: unknown kind {kind!r}; expected one of {', '.join(inference.KINDS)}"
                )
            out[column] = None if kind == "auto" else kind
        return out
    if isinstance(columns, (list, tuple)):
        return {c: None for c in columns}
    raise FitError(f"`columns` must be 'auto', a list of column names or a dict column -> kind. Received: {columns!r}")


def _check_column_present(manifest, column, argument="columns"):
    if column not in manifest.columns:
        raise FitError(f"{argument}: column {column!r} is not in the data; it has {', '.join(manifest.columns)}")


def _label_spec(manifest, label, task):
    from mmzoo import data as data_lib  # noqa: PLC0415

    if task == "multilabel":
        spec = data_lib.MultiLabelColumn(label)
    elif task == "regression":
        spec = data_lib.RegressionLabel(label)
    else:
        values = [manifest.value(i, label) for i in range(len(manifest)) if label in manifest.records[i]]
        numbers = [inference.parse_number(v) for v in values]
        if all(n is not None and n == int(n) for n in numbers):  # integer classes, in numeric order
            classes = sorted(set(values), key=lambda v: (float(v), str(v)))
        else:
            classes = sorted(set(values), key=str)
        spec = data_lib.LabelColumn(label, classes=classes)
    try:
        spec.targets(manifest)
    except ValueError as error:
        raise FitError(str(error)) from None
    return spec


def _image_shape(manifest, column, max_side=MAX_IMAGE_SIDE):
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.data import ImageColumn  # noqa: PLC0415

    probe = ImageColumn(column, (8, 8, 3))
    shapes = []
    for i in range(0, len(manifest), max(1, len(manifest) // 20)):
        path = probe.python_value(manifest, i)
        if _gfile.isfile(path):
            try:
                shapes.append(tuple(tf.io.decode_image(tf.io.read_file(path), expand_animations=False).shape))
            except tf.errors.OpError:
                continue
        if len(shapes) >= 10:
            break
    if not shapes:
        raise FitError(f"image column {column!r}: none of the sampled files could be read")
    height = int(statistics.median(s[0] for s in shapes))
    width = int(statistics.median(s[1] for s in shapes))
    channels = 1 if all(s[2] in (1, 2) for s in shapes) else 3
    scale = min(1.0, max_side / max(height, width))
    return (max(8, round(height * scale)), max(8, round(width * scale)), channels)


def _audio_geometry(manifest, column):
    import tensorflow as tf  # noqa: PLC0415

    from mmzoo.data import AudioColumn  # noqa: PLC0415

    probe = AudioColumn(column, 8000, 8000)
    rates, seconds = [], []
    for i in range(0, len(manifest), max(1, len(manifest) // 200)):
        path = probe.python_value(manifest, i)
        try:
            with tf.io.gfile.GFile(path, "rb") as f, wave.open(f) as w:  # reads the header only, local or gs://
                rates.append(w.getframerate())
                seconds.append(w.getnframes() / max(1, w.getframerate()))
        except (OSError, EOFError, wave.Error, tf.errors.OpError):
            continue
    if not rates:
        raise FitError(f"audio column {column!r}: none of the sampled files is a readable WAV file")
    rate = min(statistics.mode(rates), 16000)
    duration = min(float(np.percentile(seconds, 90)), MAX_AUDIO_SECONDS)
    return rate, max(512, round(duration * rate))


def plan_data(manifest, label, columns="auto", modalities=None, verbose=True, image_size=None, image_encoder="auto"):
    """Decides column kinds, model inputs and the label's task for a training manifest.

    Args:
        manifest: The training ``Manifest`` (vocabularies, sizes and
            statistics are learned from it alone).
        label: The label column.
        columns: ``"auto"``, a list of columns (kinds inferred) or a dict
            column -> kind (``"image"``, ``"audio"``, ``"text"``,
            ``"numeric"``, ``"categorical"``, ``"ignore"`` or ``"auto"``). An
            image/audio "column" may be a path template (``"images/{hexcode}.png"``).
        modalities: Keep only these model inputs or modality kinds (e.g.
            ``("text",)`` keeps every text input: a single-modality
            baseline); ``None`` keeps all.
        verbose: Print the decisions.
        image_size: Largest image side fed to the model (images are resized
            to keep their aspect ratio); default 64, or 224 (square) for
            the pretrained encoder.
        image_encoder: ``"efficientnet_lite0"`` or ``"mobilenet_v2"`` (a
            pretrained encoder bundled with mmzoo, frozen:
            ``branches.image_efficientnet_lite0``,
            ``branches.image_mobilenet_v2``), ``"cnn"`` (a small CNN trained
            from scratch) or ``"auto"``: ``DEFAULT_PRETRAINED_ENCODER`` for
            colour images when there are at most ``ENCODER_MAX_ROWS``
            training rows and ``image_size`` (if given) is at least 32, else
            the CNN.

    Returns:
        A ``DataPlan``.

    Raises:
        FitError: For a missing or unusable column, an unknown kind, a label
            with one class, or no usable input.
    """
    from mmzoo import data as data_lib  # noqa: PLC0415

    if image_encoder not in IMAGE_ENCODERS:
        raise FitError(f"image_encoder must be one of {', '.join(IMAGE_ENCODERS)}. "
                       f"Received: image_encoder={image_encoder!r}")
    if image_encoder in PRETRAINED_ENCODERS and image_size is not None and image_size < ENCODER_MIN_SIDE:
        raise FitError(f"image_encoder={image_encoder!r} needs image_size of at least {ENCODER_MIN_SIDE}. "
                       f"Received: image_size={image_size!r}")
    if not isinstance(label, str) or not label:
        raise FitError(f"`label` must be a column name. Received: label={label!r}")
    if label not in manifest.columns:
        raise FitError(f"label: column {label!r} is not in the data; it has {', '.join(manifest.columns)}")
    try:
        task, task_reason = inference.infer_label_task(manifest, label)
    except ValueError as error:
        raise FitError(str(error)) from None
    label_spec = _label_spec(manifest, label, task)
    requested = _normalise_columns(columns, manifest, label)
    kinds, reasons = {}, {"(label)": task_reason}
    for column, kind in requested.items():
        if column == label:
            raise FitError(f"columns: the label column {label!r} cannot also be an input")
        if "{" not in column:
            _check_column_present(manifest, column)
        if kind is None:
            if "{" in column:
                raise FitError(f"columns[{column!r}]: give a path template's kind explicitly ('image' or 'audio')")
            kind, reasons[column] = inference.infer_kind(manifest, column)
        kinds[column] = kind

    features, modality_of, source, encoders = {}, {}, {}, {}

    def add(name, spec, kind, column):
        if name in features:  # e.g. text columns "a b" and "a_b", or a text column named "image" beside an image
            raise FitError(f"columns: {source[name]!r} and {column!r} would both be the model input {name!r}; "
                           "rename one of them")
        features[name], modality_of[name], source[name] = spec, kind, column

    by_kind = {k: [c for c, kk in kinds.items() if kk == k] for k in inference.KINDS}
    for kind in ("image", "audio"):
        for column in by_kind[kind]:
            name = kind if len(by_kind[kind]) == 1 else _input_name(column)
            if kind == "image":
                shape = _image_shape(manifest, column, image_size or MAX_IMAGE_SIDE)
                if image_encoder in PRETRAINED_ENCODERS or (
                        image_encoder == "auto" and shape[-1] == 3 and len(manifest) <= ENCODER_MAX_ROWS
                        and (image_size or ENCODER_IMAGE_SIDE) >= ENCODER_MIN_SIDE):
                    side = image_size or ENCODER_IMAGE_SIDE
                    shape = (side, side, 3)
                    encoders[name] = DEFAULT_PRETRAINED_ENCODER if image_encoder == "auto" else image_encoder
                spec = data_lib.ImageColumn(column, shape)
            else:
                rate, samples = _audio_geometry(manifest, column)
                spec = data_lib.AudioColumn(column, sampling_rate=rate, num_samples=samples, crop="center")
            add(name, spec, kind, column)
    texts = by_kind["text"]
    for column in texts:
        # One input per text column, each with its own vocabulary: a title and its tags are different
        # words, and an empty field is information ("no tags") that a joined text would hide.
        name = TEXT_INPUT if len(texts) == 1 else _input_name(column)
        add(name, _text_column(manifest, [column], allow_empty=len(texts) > 1), "text", column)
    if by_kind["numeric"]:
        add("numeric", data_lib.NumericColumn(by_kind["numeric"]), "numeric", by_kind["numeric"][0])
    if by_kind["categorical"]:
        add("categorical", data_lib.CategoricalColumn.fit(by_kind["categorical"], manifest), "categorical",
            by_kind["categorical"][0])
    if modalities is not None:
        modalities = (modalities,) if isinstance(modalities, str) else tuple(modalities)
        unknown = sorted(set(modalities) - set(features) - set(modality_of.values()))
        if unknown or not modalities:
            raise FitError(
                f"modalities: {unknown or modalities!r} not among this data's inputs {sorted(features)} "
                f"or their kinds {sorted(set(modality_of.values()))}"
            )
        features = {k: v for k, v in features.items() if k in modalities or modality_of[k] in modalities}
        modality_of = {k: v for k, v in modality_of.items() if k in features}
    if not features:
        raise FitError(f"no usable input column (columns: {kinds}); name them with columns={{...}}")
    for spec in features.values():
        try:
            spec.prepare(manifest)
        except ValueError as error:
            raise FitError(str(error)) from None
    encoders = {k: v for k, v in encoders.items() if k in features}
    plan = DataPlan(kinds, reasons, features, label_spec, task, modality_of, encoders)
    if verbose:
        print(plan.describe())
    return plan


def _input_name(column):
    name = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in column).strip("_") or "input"
    return name


def _text_column(manifest, columns, allow_empty=False):
    from mmzoo import data as data_lib  # noqa: PLC0415

    texts = []
    for i in range(len(manifest)):
        parts = [manifest.records[i].get(c) for c in columns]
        texts.append(" ".join(str(p) for p in parts if p is not None))
    if allow_empty and not any(t.strip() for t in texts):
        raise FitError(f"columns: text column(s) {columns} are empty in every training row")
    import tensorflow as tf  # noqa: PLC0415

    # Lengths in the tokenizer's own words (punctuation and script changes split words too).
    probe = data_lib.VocabTokenizer([], sequence_length=1)
    lengths = np.concatenate([probe.words(tf.constant(texts[i:i + 4096])).row_lengths().numpy()
                              for i in range(0, len(texts), 4096)])
    sequence_length = int(min(MAX_SEQUENCE_LENGTH, max(4, np.percentile(lengths, 99))))
    tokenizer = data_lib.VocabTokenizer.fit(texts, sequence_length=sequence_length, vocabulary_size=VOCABULARY_SIZE)
    return data_lib.TextColumn(columns, tokenizer, allow_empty=allow_empty)


# ----------------------------------------------------------------------------------------------- model


def build_model(plan, train_manifest, fusion="concat", hidden=(128,), dropout=0.3, learning_rate=1e-3, model="auto",
                width=1.0, balance=None, encoded=False):
    """The model ``fit`` trains: one branch per input sized to the data, a fusion, the label's head.

    Args:
        plan: The ``DataPlan``.
        train_manifest: Training rows (numeric statistics are computed on them).
        fusion: A ``mmzoo.fusion`` kind (``"concat"``, ``"add"``, ``"weighted_sum"``,
            ``"attention"``, ``"late"``) or ``"ensemble"`` (late fusion with
            learned weights, trained by ``mmzoo.training.ensemble``).
        hidden: Dense widths after the fusion.
        dropout: Dropout after each hidden layer.
        learning_rate: Adam learning rate.
        model: ``"auto"`` or a zoo model name (built with the data's geometry as overrides).
        width: Multiplier of the branches' widths (used by the search).
        balance: ``compose`` options against modality imbalance
            (``modality_dropout``, ``auxiliary_loss_weight``,
            ``gradient_modulation``), or None. Ignored with one input.
        encoded: Inputs in ``plan.encoders`` are their encoder's features
            (what ``EncodedInputs`` yields), not images: the model ``fit``
            trains; its layers are named as in the model with the encoders.

    Returns:
        A compiled ``keras.Model`` whose inputs are ``plan.features``' names.
    """
    import keras  # noqa: PLC0415

    from mmzoo import branches, composition  # noqa: PLC0415
    from mmzoo import fusion as fusion_lib  # noqa: PLC0415

    if model != "auto":
        return _zoo_model(plan, model, learning_rate)

    def w(n):
        return max(4, round(n * width))

    parts = []
    for name, spec in plan.features.items():
        kind = plan.modalities[name]
        if name in plan.encoders:
            # The frozen encoder's pooled features, standardised with the training rows' statistics, then
            # projected to the text branches' width. On OpenMoji (MobileNetV2, 3 seeds): a dense head on the raw
            # ReLU6 features, image only, 0.39; standardised 0.61 (one run); concat with text 0.820 without the
            # projection, 0.852 with.
            if encoded:
                pooled = keras.Input((_pretrained_encoder(plan.encoders[name])[1],), name=name)
                branch = branches.Branch(name, pooled, pooled, kind)
            else:
                branch = _pretrained_encoder(plan.encoders[name])[0](spec.image_shape, name=name)
            mean, variance = _encoded_inputs(plan).statistics(train_manifest, name)
            features = keras.layers.Normalization(mean=mean, variance=variance, name=f"{name}_standardize")(
                branch.features)
            features = keras.layers.Dense(w(64), activation="relu", name=f"{name}_project")(features)
            parts.append(dataclasses.replace(branch, features=features))
        elif kind == "image":
            parts.append(branches.image_cnn(spec.image_shape, filters=(w(32), w(64), w(128)), padding="same",
                                            batch_norm=IMAGE_BATCH_NORM, reduction="avg", name=name))
        elif kind == "audio":
            parts.append(branches.audio_spectrogram_cnn(spec.num_samples, spec.sampling_rate,
                                                        filters=(w(32), w(64)), reduction="avg", name=name))
        elif kind == "text":
            parts.append(branches.text_embedding(spec.tokenizer.sequence_length, spec.tokenizer.vocabulary_size,
                                                 w(64), reduction="avg", name=name))
        elif kind == "numeric":
            values = np.asarray(spec.values(train_manifest), "float64")
            parts.append(branches.tabular_numeric(spec.width, values.mean(0), values.var(0), units=(w(32),), name=name))
        else:
            parts.append(branches.tabular_categorical(spec.width, spec.cardinality, 8, name=name))
    if len(parts) > 1 and FEATURE_NORM:
        # Each modality's features on one scale before fusion, so the branch whose features start
        # largest (batch-normalised image maps vs small initial embeddings) does not drown the others.
        parts = [dataclasses.replace(b, features=keras.layers.LayerNormalization(name=f"{b.name}_feature_norm")(
            b.features)) for b in parts]
    if fusion in ("late", "ensemble"):
        fusion_layer = fusion_lib.late("weighted" if fusion == "ensemble" else "mean")
    else:
        fusion_layer = fusion_lib.get(fusion)
    balance = dict(balance or {}) if len(parts) > 1 else {}
    return composition.compose(parts, fusion=fusion_layer, head=_head(plan), hidden=hidden, dropout=dropout,
                               learning_rate=learning_rate, name="mmzoo_fit", **balance)


def _head(plan):
    from mmzoo import heads  # noqa: PLC0415

    classes = [str(c) for c in plan.label.classes]
    if plan.task == "binary":
        return heads.binary(class_names=classes)
    if plan.task == "multiclass":
        return heads.multiclass(len(classes), top_k=min(5, len(classes) - 1), class_names=classes)
    if plan.task == "multilabel":
        return heads.multilabel(len(classes), class_names=classes)
    return heads.regression(len(classes), class_names=classes)


def _zoo_model(plan, name, learning_rate):
    import inspect  # noqa: PLC0415

    from mmzoo import zoo  # noqa: PLC0415

    try:
        entry = zoo.get(name)
    except ValueError as error:
        raise FitError(f"model: {error}") from None
    accepted = inspect.signature(entry.builder).parameters
    overrides = {}
    for spec in plan.features.values():
        for attribute, key in (("image_shape", "image_shape"), ("num_samples", "num_samples"),
                               ("sampling_rate", "sampling_rate")):
            if hasattr(spec, attribute) and key in accepted:
                overrides[key] = tuple(getattr(spec, attribute)) if key == "image_shape" else getattr(spec, attribute)
        tokenizer = getattr(spec, "tokenizer", None)
        if tokenizer is not None:
            for key in ("sequence_length", "vocabulary_size"):
                if key in accepted:
                    overrides[key] = getattr(tokenizer, key)
    if "modalities" in accepted:
        overrides["modalities"] = tuple(plan.features)
    if "num_classes" in accepted and plan.task in ("binary", "multiclass"):
        overrides["num_classes"] = len(plan.label.classes)
    if "learning_rate" in accepted:
        overrides["learning_rate"] = learning_rate
    try:
        model = zoo.build(name, **overrides)
    except ValueError as error:
        raise FitError(f"model {name!r} does not fit this data: {error}") from None
    missing = sorted(set(model.input) - set(plan.features))
    if missing:
        raise FitError(
            f"model {name!r} needs inputs {missing} that this data does not provide ({sorted(plan.features)})"
        )
    return model


# ----------------------------------------------------------------------------------------------- training


def _datasets(plan, manifest, batch_size, seed, shuffle, on_error, encoded=False, verbose=0):
    from mmzoo import data as data_lib  # noqa: PLC0415

    if encoded:
        return _encoded_inputs(plan).dataset(manifest, list(plan.features), batch_size, seed, shuffle, on_error,
                                             verbose)
    return data_lib.make_dataset(manifest, plan.features, plan.label, batch_size=batch_size, shuffle=shuffle,
                                 seed=seed, on_error=on_error)


def _pretrained_encoder(name):
    """``(branch builder, number of features)`` of a bundled pretrained image encoder."""
    from mmzoo import branches  # noqa: PLC0415

    return {"efficientnet_lite0": (branches.image_efficientnet_lite0, branches.efficientnet_lite.FEATURES),
            "mobilenet_v2": (branches.image_mobilenet_v2, branches.mobilenet.FEATURES)}[name]


def _encoded_inputs(plan):
    """The plan's ``EncodedInputs`` (shared by the plans ``dataclasses.replace`` makes of it)."""
    from mmzoo.training.encoded import EncodedInputs  # noqa: PLC0415

    if plan.encoded is None:
        def build_encoder(name, spec):
            import keras  # noqa: PLC0415

            branch = _pretrained_encoder(plan.encoders[name])[0](spec.image_shape, name=name)
            return keras.Model(branch.input, branch.features, name=f"{name}_encoder")

        plan.encoded = EncodedInputs(plan, build_encoder)
    return plan.encoded


def _with_encoders(plan, train_manifest, trained, **build):
    """The model with the encoders in front: ``build_model(encoded=False)`` given ``trained``'s weights by layer."""
    net = build_model(plan, train_manifest, **build)
    for layer in trained.layers:
        if layer.weights:
            net.get_layer(layer.name).set_weights(layer.get_weights())
    net.optimizer.build(net.trainable_variables)  # saved and loaded with the variables a trained model has
    return net


def _check_group(group, manifest, label, columns, valid, folds):
    """Validates ``fit(group=...)``; returns ``columns`` with the group column kept out of ``"auto"``."""
    if not isinstance(group, str) or not group:
        raise FitError(f"`group` must be a column name. Received: group={group!r}")
    if group not in manifest.columns:
        raise FitError(f"group: column {group!r} is not in the data; it has {', '.join(manifest.columns)}")
    if group == label:
        raise FitError(f"group: the label column {label!r} cannot also be the group column")
    if valid is not None:
        raise FitError("group: splits the validation rows off `train`; with `valid` given there is nothing to split "
                       "(hold out whole groups in `valid` yourself, or drop one of the two)")
    if folds is not None:
        raise FitError("group: the K folds of `folds` are stratified, not grouped; pass one of `group` or `folds`")
    missing = [i for i, record in enumerate(manifest.records) if record.get(group) in (None, "")]
    if missing:
        raise FitError(f"group: {len(missing)} training rows have no {group!r} value (first: row {missing[0]})")
    if columns is None or columns == "auto":
        return {c: ("ignore" if c == group else "auto") for c in manifest.columns if c != label}
    return columns


def _check_ensemble_folds(ensemble_folds, group, fusion):
    if isinstance(ensemble_folds, bool) or not isinstance(ensemble_folds, int) or ensemble_folds < 2:
        raise FitError(f"ensemble_folds must be an integer of at least 2. Received: ensemble_folds={ensemble_folds!r}")
    if group is None:
        raise FitError("ensemble_folds cross-fits the ensemble over folds of groups: pass `group` too")
    if fusion not in ("ensemble", "auto"):
        raise FitError(f"ensemble_folds applies to fusion='ensemble' (or 'auto'). Received: fusion={fusion!r}")


def _split_train_valid(manifest, plan, valid_fraction, seed, group=None):
    from mmzoo.data import splits  # noqa: PLC0415

    if not 0 < valid_fraction < 1:
        raise FitError(f"valid_fraction must be in (0, 1). Received: valid_fraction={valid_fraction!r}")
    targets = plan.label.targets(manifest)
    try:
        if group is not None:
            train_idx, valid_idx = splits.group_split([str(r[group]) for r in manifest.records], valid_fraction,
                                                      seed=seed)
        elif plan.task == "regression":
            train_idx, valid_idx = splits.stratified_split([row[0] for row in targets], valid_fraction, seed=seed,
                                                           stratify=False)
        else:  # class indices, or multi-hot rows (stratified on the label set)
            train_idx, valid_idx = splits.stratified_split(targets, valid_fraction, seed=seed)
    except ValueError as error:
        raise FitError(f"{'group' if group is not None else 'valid_fraction'}: {error}") from None
    if len(valid_idx) == 0 or len(train_idx) == 0:
        raise FitError(f"valid_fraction={valid_fraction} leaves an empty split of {len(manifest)} rows")
    return manifest.subset(sorted(train_idx)), manifest.subset(sorted(valid_idx))


def _primary_score(report, task):
    """Higher is better: accuracy (classification), macro F1 (multi-label), -RMSE (regression)."""
    if task == "regression":
        return -report["rmse"]
    if task == "multilabel":
        return report["macro_f1"]
    return report["accuracy"]


def evaluate_model(model, dataset, plan=None, task=None, class_names=None, threshold=None):
    """A metrics report of ``model`` on a batched ``(inputs, label)`` dataset.

    Args:
        model: A Keras model (or anything with ``predict``).
        dataset: Batched ``tf.data`` of ``(inputs, labels)``.
        plan: A ``DataPlan`` (gives task and class names), or pass ``task`` / ``class_names``.
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        class_names: Class (or target) names.
        threshold: Decision threshold (binary / multi-label); default the model's head's, else 0.5.

    Returns:
        The report dict of ``mmzoo.training.metrics``; for a classifier whose
        outputs are probabilities, with ``log_loss`` too (the mean
        cross-entropy of the true labels).
    """
    labels, outputs = [], []
    for inputs, y in dataset:
        labels.append(np.asarray(y))
        outputs.append(np.asarray(model.predict_on_batch(inputs) if hasattr(model, "predict_on_batch")
                                  else model.predict(inputs)))
    if threshold is None:
        threshold = _model_threshold(model)
    return report_of_outputs(np.concatenate(labels), np.concatenate(outputs), plan, task, class_names, threshold)


def report_of_outputs(y_true, y_pred, plan=None, task=None, class_names=None, threshold=0.5):
    """The report of ``evaluate_model`` for given targets and model outputs (probabilities or values)."""
    from mmzoo.training import metrics  # noqa: PLC0415

    task = task or plan.task
    class_names = class_names or [str(c) for c in plan.label.classes]
    if task == "regression":
        return metrics.regression_report(y_true, y_pred, target_names=class_names)
    report = metrics.classification_report(y_true, y_pred, class_names=class_names, task=task, threshold=threshold)
    loss = _log_loss(y_true, y_pred, task)
    if loss is not None:
        report["log_loss"] = loss
    return report


def _log_loss(y_true, probabilities, task):
    """Mean cross-entropy of the true labels, or None when the outputs are not probabilities."""
    p = np.asarray(probabilities, "float64")
    if p.size == 0 or not np.all((p >= 0) & (p <= 1)):
        return None
    p = np.clip(p, 1e-7, 1 - 1e-7)
    y = np.asarray(y_true)
    if task == "multiclass":
        if p.ndim != 2 or not np.allclose(p.sum(1), 1.0, atol=1e-3) or y.ndim != 1:
            return None
        return float(-np.log(p[np.arange(len(y)), y.astype(int)]).mean())
    p, y = p.reshape(len(p), -1), y.reshape(len(y), -1).astype("float64")
    if p.shape != y.shape:
        return None
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def _selection_score(report, task):
    """Higher is better: the validation log loss, negated, where there is one (steadier than accuracy on a small
    validation split), else the primary score."""
    if report.get("log_loss") is not None:
        return -report["log_loss"]
    return _primary_score(report, task)


def _model_threshold(model):
    try:
        from mmzoo import heads  # noqa: PLC0415

        head = heads.from_model(model)
        return float(getattr(head, "threshold", 0.5))
    except (AttributeError, ValueError):
        return 0.5


def _deadline_callback(deadline):
    """A Keras callback that stops training after the batch during which ``time.perf_counter()`` passes ``deadline``."""
    import time  # noqa: PLC0415

    import keras  # noqa: PLC0415

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.perf_counter() > deadline:
                self.model.stop_training = True

    return Deadline()


def _train_once(plan, train_manifest, valid_manifest, *, fusion, model, seed, epochs, batch_size, learning_rate,
                dropout, hidden, width, patience, callbacks, tensorboard, verbose, on_error, balance=None,
                deadline=None, group=None, ensemble_folds=None):
    import time  # noqa: PLC0415

    import keras  # noqa: PLC0415

    # A frozen pretrained encoder runs once per split; the model trains on its cached features.
    encoded = bool(plan.encoders) and model == "auto"
    train_ds = _datasets(plan, train_manifest, batch_size, seed, True, on_error, encoded, verbose)
    valid_ds = _datasets(plan, valid_manifest, batch_size, seed, False, on_error, encoded, verbose)
    build = dict(fusion=fusion, hidden=hidden, dropout=dropout, learning_rate=learning_rate, model=model, width=width,
                 balance=balance)
    # Seeded after the datasets: the same model whether or not building them built an encoder first.
    keras.utils.set_random_seed(seed)
    net = build_model(plan, train_manifest, encoded=encoded, **build)
    monitor = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    all_callbacks = [monitor, *callbacks]
    if deadline is not None:
        all_callbacks.append(_deadline_callback(deadline))
    if tensorboard:
        all_callbacks.append(keras.callbacks.TensorBoard(log_dir=os.fspath(tensorboard)))
    start, honest = time.perf_counter(), None
    if fusion == "ensemble" and len(plan.features) > 1:
        from mmzoo.training import ensemble  # noqa: PLC0415

        branches = ensemble.fit_branches(net, train_ds, valid_ds, epochs, learning_rate=learning_rate,
                                         patience=patience, callbacks=all_callbacks[1:], verbose=verbose)
        if ensemble_folds:  # weights that know how far each modality can be trusted on a new group; bagged
            logits, targets, members = _cross_fit_ensemble(
                plan, train_manifest, valid_ds, group, ensemble_folds, seed=seed, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, patience=patience, verbose=verbose, on_error=on_error, hidden=hidden,
                dropout=dropout, model=model, width=width, encoded=encoded)
            weights = ensemble.fit_weights_to_logits(net, logits, targets)
            if encoded:  # bag the models that take images
                net = _with_encoders(plan, train_manifest, net, **build)
                members = [_with_encoders(plan, train_manifest, m, **build) for m in members]
                valid_ds, encoded = _datasets(plan, valid_manifest, batch_size, seed, False, on_error), False
            net = ensemble.bag(net, members)
        else:
            logits, targets = ensemble.branch_logits(net, valid_ds)
            weights = ensemble.fit_weights_to_logits(net, logits, targets)
            # The weights saw the validation labels: score outputs cross-fitted over the validation rows instead.
            honest = (targets, ensemble.cross_fitted_outputs(net, logits, targets, seed=seed))
        history = {f"{name}_{key}": values for name, run in branches.items() for key, values in run["history"].items()}
        info = {"best_epoch": max(run["best_epoch"] for run in branches.values()),
                "best_epochs": {name: run["best_epoch"] for name, run in branches.items()}, "weights": weights}
    else:
        fitted = net.fit(train_ds, validation_data=valid_ds, epochs=epochs, callbacks=all_callbacks, verbose=verbose,
                         shuffle=False)  # the pipeline shuffles (seeded)
        history, info = fitted.history, {"best_epoch": int(monitor.best_epoch) + 1}
    info["seconds"] = round(time.perf_counter() - start, 1)
    report = (report_of_outputs(*honest, plan, threshold=_model_threshold(net)) if honest
              else evaluate_model(net, valid_ds, plan))
    if encoded:
        net = _with_encoders(plan, train_manifest, net, **build)
    return net, history, report, info


def _cross_fit_ensemble(plan, train_manifest, valid_ds, group, folds, *, seed, epochs, batch_size, learning_rate,
                        patience, verbose, on_error, encoded=False, **build):
    """Out-of-group branch logits of ``train_manifest`` over ``folds`` folds of its groups, and the fold models.

    The distinct values of ``group`` are shuffled (``seed``) and dealt into
    ``folds`` folds; for each, a fresh ensemble model has its branches
    trained alone on the other folds (early stopping on ``valid_ds``, groups
    none of them saw) and predicts the fold's rows. Returns ``({input name:
    (N, units) logits}, targets, models)`` for
    ``ensemble.fit_weights_to_logits`` and ``ensemble.bag``.
    """
    from mmzoo.training import ensemble  # noqa: PLC0415

    groups = np.array([str(record[group]) for record in train_manifest.records])
    distinct = np.array(sorted(set(groups.tolist())))
    np.random.default_rng(seed).shuffle(distinct)
    logits, targets, members = {}, [], []
    for fold in np.array_split(distinct, folds):
        held = np.isin(groups, fold)
        member = build_model(plan, train_manifest, fusion="ensemble", learning_rate=learning_rate, encoded=encoded,
                             **build)
        fold_train = _datasets(plan, train_manifest.subset(np.flatnonzero(~held).tolist()), batch_size, seed, True,
                               on_error, encoded)
        ensemble.fit_branches(member, fold_train, valid_ds, epochs, learning_rate=learning_rate, patience=patience,
                              verbose=verbose)
        fold_held = _datasets(plan, train_manifest.subset(np.flatnonzero(held).tolist()), batch_size, seed, False,
                              on_error, encoded)
        z, y = ensemble.branch_logits(member, fold_held)
        for name, values in z.items():
            logits.setdefault(name, []).append(values)
        targets.append(y)
        members.append(member)
    return {name: np.concatenate(parts) for name, parts in logits.items()}, np.concatenate(targets), members


def fit(
    train,
    label=None,
    columns="auto",
    task=None,
    valid=None,
    valid_fraction=0.1,
    group=None,
    ensemble_folds=None,
    test=None,
    model="auto",
    fusion="auto",
    modalities=None,
    modality_dropout=0.0,
    auxiliary_loss_weight=None,
    gradient_modulation=None,
    epochs=30,
    batch_size=32,
    learning_rate=1e-3,
    dropout=0.3,
    hidden=(128,),
    patience=5,
    image_size=None,
    image_encoder="auto",
    time_budget=None,
    folds=None,
    callbacks=(),
    tensorboard=None,
    output_dir=None,
    seed=0,
    on_error="raise",
    verbose=1,
):
    """Trains, selects, evaluates and exports a multimodal model on your own data.

    Args:
        train: Training data: a CSV/JSONL manifest path, a list of dicts, a
            pandas DataFrame, or a dict of arrays (``{"image": (N, H, W, C)
            array, "caption": [str, ...], "label": [...]}``; 4-D/3-D arrays
            are images (float in [0, 1] or uint8), 2-D arrays waveforms in
            [-1, 1] (taken as 16 kHz), 1-D arrays columns; image and waveform
            arrays are written to PNG/WAV files in a temporary folder so they
            take the same decoders as files, in training and in the export).
            File paths are relative to the manifest's folder.
        label: The label column: class names/integers (classification),
            floats (regression) or ``"|"``-separated sets (multi-label).
            None for ``task="retrieval"``.
        columns: ``"auto"`` (infer every column's kind and print the
            decisions), a list of columns, or a dict column -> kind
            (``"image"``, ``"audio"``, ``"text"``, ``"numeric"``,
            ``"categorical"``, ``"ignore"``, ``"auto"``); image/audio columns
            may be path templates such as ``"images/{hexcode}.png"``.
        task: ``None`` (the task follows from ``label``) or
            ``"retrieval"``: each row is a matching image-text pair
            (``columns`` names one ``"image"`` and its ``"text"`` columns,
            no ``label``), trained as a dual encoder and reported as
            retrieval (R@1/5/10 both ways, median rank, MRR); see
            ``mmzoo.training.fit_retrieval``, which takes ``valid``,
            ``valid_fraction``, ``test``, ``epochs``, ``batch_size``,
            ``learning_rate``, ``patience``, ``image_size``, ``callbacks``,
            ``tensorboard``, ``output_dir``, ``seed``, ``on_error`` and
            ``verbose`` from here; the classifier options are refused.
        valid: Validation data (same forms); default: a seeded stratified
            ``valid_fraction`` of ``train``.
        valid_fraction: Fraction of ``train`` held out when ``valid`` is None.
        group: A column whose values (a speaker, a patient, a site) stay on
            one side of the train/valid split: whole groups, at least
            ``valid_fraction`` of the rows, are held out
            (``mmzoo.data.splits.group_split``), so early stopping,
            ``fusion="auto"`` and the ensemble's weights are chosen on groups
            the model never saw, as a test on new speakers needs. With
            ``columns="auto"`` the group column is not an input.
        ensemble_folds: With ``group`` and ``fusion="ensemble"`` (or
            ``"auto"``): ``K`` (at least 2) folds of the training groups for
            cross-fitting the ensemble. ``K`` more ensembles are trained,
            each without one fold of groups, and the fusion weights are fit
            on their predictions for the groups they never saw, rather than
            on the few validation groups; the returned model averages the
            branch logits of the final ensemble and the ``K`` fold ones
            (``mmzoo.training.ensemble.bag``: ``K + 1`` times the size).
            The README's "A new speaker" measures it. ``None``: weights fit
            on the validation split.
        test: Test data, evaluated once at the end (never used for selection).
        model: ``"auto"`` (branches sized to the data; with several inputs
            each branch's features are layer-normalised before the fusion)
            or a zoo model name.
        fusion: A fusion kind (``"concat"``, ``"add"``, ``"weighted_sum"``,
            ``"attention"``, ``"late"``), ``"ensemble"`` (each modality's
            branch trained alone, then their logits combined with weights fit
            on validation: ``mmzoo.training.ensemble``) or ``"auto"``: the
            one with the lowest validation log loss (classifiers; else the
            best validation score) among ``concat``, ``attention``,
            ``late`` and ``ensemble`` (one input: none); the chosen trial's model is the
            result (retrained only when ``callbacks`` or ``tensorboard`` are
            given, so they see the final training).
        modalities: Use only these inputs or modality kinds (e.g.
            ``("text",)``, every text input): single-modality baselines.
        modality_dropout: Rate of whole-modality dropout at train time; the
            trained model also answers with a modality absent (all-zeros
            input; an empty field in ``serving_raw``). See ``mmzoo.balance``.
        auxiliary_loss_weight: Weight of one auxiliary unimodal loss per
            branch (multi-task training against modality imbalance).
        gradient_modulation: ``"ogm"`` / ``"ogm_ge"``: On-the-fly Gradient
            Modulation of the dominant modality (classification).
        epochs: Most training epochs (early stopping on validation loss).
        batch_size: Examples per batch.
        learning_rate: Adam learning rate.
        dropout: Dropout after the hidden layers.
        hidden: Dense widths after the fusion.
        patience: Epochs without validation improvement before stopping.
        image_size: Largest image side fed to the model (default 64, or 32
            with a ``time_budget`` under 300 s; the aspect ratio is kept),
            or the square side fed to the pretrained encoder (default 224).
        image_encoder: ``"auto"`` (default), ``"efficientnet_lite0"``,
            ``"mobilenet_v2"`` or ``"cnn"``. ``"efficientnet_lite0"`` and
            ``"mobilenet_v2"`` send images through a pretrained encoder
            bundled with mmzoo, frozen (``branches.image_efficientnet_lite0``,
            ``branches.image_mobilenet_v2``): its features are computed once
            per split and the layers after it train on them; the exported
            model takes the images. ``"cnn"`` trains a small CNN from
            scratch. ``"auto"`` takes EfficientNet-Lite0 for colour images
            when there are at most 20,000 training rows (and ``image_size``,
            if given, is at least 32), the CNN otherwise (grey images such
            as digits, or more data).
        time_budget: Seconds for a KerasTuner search over fusion kind,
            branch width, learning rate and dropout (validation-selected);
            every trial stops at the budget, and the best trial's model is
            the result (no retraining). ``None`` trains the given settings.
        folds: ``K`` for stratified K-fold cross-validation on ``train``
            (reported as mean +- std); the returned model is still trained
            on ``train`` with ``valid``.
        callbacks: Extra Keras callbacks for the final training.
        tensorboard: A folder for TensorBoard logs.
        output_dir: Folder (local or ``gs://``) for ``model/`` (SavedModel), ``report.json`` and plots.
        seed: Seed of splits, weights, shuffling and the search.
        on_error: ``"raise"`` or ``"skip"`` bad rows (see ``mmzoo.data.make_dataset``).
        verbose: Keras verbosity (0, 1, 2); 0 also silences the decisions.

    Returns:
        A ``FitResult``.

    Raises:
        FitError: For bad data or arguments, before any training.

    Example::

        result = mmzoo.fit("emoji.jsonl", label="group",
                           columns={"images/{hexcode}.png": "image", "annotation": "text"},
                           test="emoji_test.jsonl", epochs=20, output_dir="runs/emoji")
        result.test["accuracy"], result.export_path
    """
    if task == "retrieval":
        return _fit_retrieval(locals())
    if task is not None:
        raise FitError(f"task must be None (follows from the label) or 'retrieval'. Received: task={task!r}")
    if label is None:
        raise FitError("`label` is required (the column to predict), unless task='retrieval'")
    check.choice("on_error", on_error, {"raise", "skip"})
    epochs = check.positive_int("epochs", epochs)
    batch_size = check.positive_int("batch_size", batch_size)
    if fusion != "auto" and fusion not in FUSION_CHOICES:
        raise FitError(f"fusion must be 'auto' or one of {', '.join(FUSION_CHOICES)}. Received: fusion={fusion!r}")
    if output_dir is not None:
        _check_writable(output_dir)
    train_manifest, _ = _load(train, "train")
    full_train_manifest = train_manifest
    if group is not None:
        columns = _check_group(group, train_manifest, label, columns, valid, folds)
    if ensemble_folds is not None:
        _check_ensemble_folds(ensemble_folds, group, fusion)
    if image_size is None and time_budget is not None and time_budget < BUDGET_SMALL_IMAGES_BELOW:
        image_size = BUDGET_IMAGE_SIDE  # a short search trains a model it can finish: smaller images
    plan = plan_data(train_manifest, label, columns, modalities, verbose=bool(verbose), image_size=image_size,
                     image_encoder=image_encoder)
    if valid is None:
        train_manifest, valid_manifest = _split_train_valid(train_manifest, plan, valid_fraction, seed, group)
    else:
        valid_manifest = _load(valid, "valid")[0]
    test_manifest = _load(test, "test")[0] if test is not None else None
    for name, m in (("train", train_manifest), ("valid", valid_manifest), ("test", test_manifest)):
        if m is not None:
            _check_rows(plan, m, name, on_error, verbose)
    if ensemble_folds is not None:
        if len(plan.features) < 2:
            raise FitError(f"ensemble_folds fits the weights of an ensemble of several inputs; the model has one "
                           f"({', '.join(plan.features)}). Received: ensemble_folds={ensemble_folds}")
        training_groups = len({str(r[group]) for r in train_manifest.records})
        if ensemble_folds > training_groups:
            raise FitError(f"ensemble_folds: {ensemble_folds} folds need at least as many training groups; "
                           f"{training_groups} are left after the validation split. Received: "
                           f"ensemble_folds={ensemble_folds}")

    settings = dict(model=model, seed=seed, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    dropout=dropout, hidden=tuple(hidden), width=1.0, patience=patience, tensorboard=None,
                    verbose=verbose, on_error=on_error, callbacks=(),
                    balance=_balance_options(modality_dropout, auxiliary_loss_weight, gradient_modulation),
                    group=group if ensemble_folds else None, ensemble_folds=ensemble_folds)
    trials = []
    if time_budget is not None:
        from mmzoo.training import search  # noqa: PLC0415

        search_settings = {**settings, "callbacks": tuple(callbacks), "tensorboard": tensorboard}
        best, trials, best_run = search.search(plan, train_manifest, valid_manifest, search_settings, time_budget,
                                               fusion)
        settings.update(best)
        chosen_fusion = best["fusion"]
        final = {**settings, "fusion": chosen_fusion, "callbacks": tuple(callbacks), "tensorboard": tensorboard}
        net, history, valid_report, info = best_run  # the best trial's model: no retraining past the budget
    else:
        best_run = None
        if fusion == "auto" and len(plan.features) > 1 and model == "auto":
            chosen_fusion, trials, best_run = _choose_fusion(plan, train_manifest, valid_manifest, settings)
        else:
            chosen_fusion = "concat" if fusion == "auto" else fusion
        final = {**settings, "fusion": chosen_fusion, "callbacks": tuple(callbacks), "tensorboard": tensorboard}
        if best_run is not None and not callbacks and not tensorboard:
            net, history, valid_report, info = best_run  # the chosen trial is the final model: no retraining
        else:
            net, history, valid_report, info = _train_once(plan, train_manifest, valid_manifest, **final)
    valid_report["best_epoch"] = info["best_epoch"]
    test_report = None
    if test_manifest is not None:
        test_report = evaluate_model(net, _datasets(plan, test_manifest, batch_size, seed, False, on_error), plan)

    fold_reports, cv = [], None
    if folds is not None:
        fold_reports, cv = cross_validate(plan, full_train_manifest, folds, final)

    result = FitResult(net, history, valid_report, test_report, None, plan, chosen_fusion, trials, fold_reports, cv)
    if output_dir is not None:
        _write_outputs(result, output_dir)
    return result


RETRIEVAL_OPTIONS = ("train", "columns", "valid", "valid_fraction", "test", "epochs", "batch_size", "learning_rate",
                     "patience", "image_size", "callbacks", "tensorboard", "output_dir", "seed", "on_error", "verbose")
CLASSIFIER_DEFAULTS = {"label": None, "model": "auto", "fusion": "auto", "modalities": None, "modality_dropout": 0.0,
                       "auxiliary_loss_weight": None, "gradient_modulation": None, "dropout": 0.3, "hidden": (128,),
                       "time_budget": None, "folds": None, "group": None, "image_encoder": "auto",
                       "ensemble_folds": None}


def _fit_retrieval(arguments):
    """``fit(task="retrieval")``: refuses the classifier options that were set, then trains a dual encoder."""
    from mmzoo.training.fit_retrieval import fit_retrieval  # noqa: PLC0415

    given = [name for name, default in CLASSIFIER_DEFAULTS.items() if arguments[name] != default
             and not (name == "hidden" and tuple(arguments[name]) == default)]
    if given:
        raise FitError(f"task='retrieval' trains a dual encoder on image-text pairs; it takes no "
                       f"{', '.join(given)}. Received: {', '.join(f'{n}={arguments[n]!r}' for n in given)}")
    return fit_retrieval(**{name: arguments[name] for name in RETRIEVAL_OPTIONS})


def _balance_options(modality_dropout, auxiliary_loss_weight, gradient_modulation):
    from mmzoo import balance  # noqa: PLC0415

    options = {}
    try:
        if modality_dropout:
            options["modality_dropout"] = check.fraction("modality_dropout", modality_dropout)
        if auxiliary_loss_weight is not None:
            options["auxiliary_loss_weight"] = check.non_negative_number("auxiliary_loss_weight",
                                                                         auxiliary_loss_weight)
        if gradient_modulation is not None:
            options["gradient_modulation"] = check.choice("gradient_modulation", gradient_modulation,
                                                          set(balance.MODULATIONS))
    except ValueError as error:
        raise FitError(str(error)) from None
    return options


PROGRESS_MIN_ROWS = 5000  # row checks of larger splits show a progress bar


def _check_rows(plan, manifest, split, on_error, verbose=0):
    """Up-front checks of a split (columns, labels, and under ``on_error="raise"`` every row's fields)."""
    try:
        if plan.label is not None:
            plan.label.targets(manifest)
        for spec in plan.features.values():
            spec.prepare(manifest)
    except ValueError as error:
        raise FitError(f"{split}: {error}") from None
    if on_error == "raise":
        progress = None
        if verbose and len(manifest) >= PROGRESS_MIN_ROWS:
            import keras  # noqa: PLC0415

            print(f"checking the {split} rows' files and fields")
            progress = keras.utils.Progbar(len(manifest), unit_name="row")
        for i in range(len(manifest)):
            for name, spec in plan.features.items():
                problem = spec.row_problem(manifest, i)
                if problem:
                    raise FitError(f"{split}: {manifest.where(i)}, input {name!r}: {problem}")
            if progress is not None and (i + 1) % 500 == 0:
                progress.update(i + 1)
        if progress is not None:
            progress.update(len(manifest), finalize=True)


def _choose_fusion(plan, train_manifest, valid_manifest, settings):
    """Trains each of ``AUTO_FUSIONS``; returns ``(best kind, trials, the best trial's run)``.

    The best has the lowest validation log loss (classifiers), else the best
    primary score. On OpenMoji groups' 171 validation rows, accuracy picked
    the uni-modal ensemble by one or two examples where late fusion had the
    clearly lower loss and the higher test accuracy.
    """
    trials, best = [], None
    for kind in AUTO_FUSIONS:
        run = _train_once(plan, train_manifest, valid_manifest, fusion=kind, **settings)
        report, info = run[2], run[3]
        score, selection = _primary_score(report, plan.task), _selection_score(report, plan.task)
        trials.append({"fusion": kind, "valid_score": round(score, 4),
                       **({"valid_log_loss": round(report["log_loss"], 4)} if "log_loss" in report else {}),
                       **{k: v for k, v in info.items() if k in ("best_epoch", "seconds")}})
        if settings.get("verbose"):
            loss = f", log loss {report['log_loss']:.4f}" if "log_loss" in report else ""
            print(f"fusion={kind}: validation score {score:.4f}{loss} (best epoch {info['best_epoch']})")
        if best is None or selection > best[0]:
            best = (selection, kind, run)
    return best[1], trials, best[2]


def cross_validate(plan, manifest, k, settings):
    """Stratified K-fold cross-validation with the final settings.

    Each fold trains on the other folds (early stopping on a stratified 10%
    of them) and is evaluated on its held-out fold.

    Returns:
        ``(fold_reports, aggregate)``.
    """
    from mmzoo.data import splits  # noqa: PLC0415
    from mmzoo.training import metrics  # noqa: PLC0415

    k = check.positive_int("folds", k)
    if k < 2:
        raise FitError(f"folds must be at least 2. Received: folds={k}")
    targets = plan.label.targets(manifest)
    keys = [row[0] for row in targets] if plan.task == "regression" else targets
    try:
        fold_indices = splits.stratified_kfold(keys, k, seed=settings["seed"],
                                               **({"stratify": False} if plan.task == "regression" else {}))
    except ValueError as error:
        raise FitError(str(error)) from None
    reports = []
    for number, (train_idx, test_idx) in enumerate(fold_indices, start=1):
        fold_train = manifest.subset(sorted(train_idx))
        fold_train, fold_valid = _split_train_valid(fold_train, plan, 0.1, settings["seed"])
        net, _, _, _ = _train_once(plan, fold_train, fold_valid, **{**settings, "callbacks": (), "tensorboard": None})
        fold_test = _datasets(plan, manifest.subset(sorted(test_idx)), settings["batch_size"], settings["seed"], False,
                              settings["on_error"])
        report = evaluate_model(net, fold_test, plan)
        reports.append(report)
        if settings.get("verbose"):
            print(f"fold {number}/{k}: score {_primary_score(report, plan.task):.4f}")
    return reports, metrics.aggregate_reports(reports)


ARRAY_AUDIO_RATE = 16000  # nominal sampling rate of waveform arrays written to WAV files


def _load(data, argument):
    if data is None:
        return None, {}
    if _is_arrays(data):
        records, tensors = _arrays_to_records(data, argument)
        folder = _write_array_files(records, tensors, argument) if tensors else None
        return as_manifest(records, argument, base_dir=folder), tensors
    return as_manifest(data, argument), {}


def _write_array_files(records, tensors, argument):
    """Writes image arrays (N, H, W[, C]) as PNG and waveform arrays (N, T) as 16-bit WAV files.

    The files go to a fresh temporary folder and their names into ``records``, so arrays take the
    same path as files: the same decoders in training and in the export's ``serving_raw``.
    Float images are taken as [0, 1], integer images as 0-255; waveforms as [-1, 1] at
    ``ARRAY_AUDIO_RATE`` Hz.
    """
    import tempfile  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    folder = tempfile.mkdtemp(prefix=f"mmzoo_{argument}_arrays_")
    for key, array in tensors.items():
        name = _input_name(key)
        if array.ndim in (3, 4):
            images = array if array.ndim == 4 else array[..., None]
            if images.shape[-1] not in (1, 3, 4):
                raise FitError(f"{argument}[{key!r}]: image arrays must be (N, H, W) or (N, H, W, 1|3|4). "
                               f"Received shape: {array.shape}")
            if np.issubdtype(images.dtype, np.floating):
                if not np.isfinite(images).all():
                    raise FitError(f"{argument}[{key!r}]: image arrays must be finite (found NaN or inf)")
                images = np.round(np.clip(images, 0.0, 1.0) * 255.0)
            images = images.astype(np.uint8)
            for i, image in enumerate(images):
                path = f"{name}_{i}.png"
                tf.io.write_file(os.path.join(folder, path), tf.io.encode_png(image))
                records[i][key] = path
        elif array.ndim == 2:
            waves = np.asarray(array, np.float32)
            if not np.isfinite(waves).all():
                raise FitError(f"{argument}[{key!r}]: waveform arrays must be finite (found NaN or inf)")
            for i, samples in enumerate(waves):
                path = f"{name}_{i}.wav"
                encoded = tf.audio.encode_wav(np.clip(samples, -1.0, 1.0)[:, None], ARRAY_AUDIO_RATE)
                tf.io.write_file(os.path.join(folder, path), encoded)
                records[i][key] = path
        else:
            raise FitError(f"{argument}[{key!r}]: arrays of rank {array.ndim} are not supported (1-D columns, "
                           "(N, T) waveforms, (N, H, W[, C]) images)")
    return folder


def _check_writable(output_dir):
    """Creates ``output_dir`` and writes a probe file there, so a bad folder fails before training."""
    import tensorflow as tf  # noqa: PLC0415

    path = os.fspath(output_dir)
    probe = os.path.join(path, f".mmzoo_write_check_{uuid.uuid4().hex}")
    try:
        _gfile.write_bytes(probe, b"")
        with _gfile.os_errors(probe):
            tf.io.gfile.remove(probe)
    except OSError as error:
        raise FitError(f"output_dir: cannot write to {path}: {error.strerror or error}") from None


def _write_outputs(result, output_dir):
    from mmzoo.serving.saved_model import export  # noqa: PLC0415
    from mmzoo.training import reports  # noqa: PLC0415

    result.export_path = export(result.model, os.path.join(output_dir, "model"), preprocessing=result.plan.features)
    summary = {
        "label": result.plan.label.column,
        "task": result.plan.task,
        "classes": [str(c) for c in result.plan.label.classes],
        "columns": result.plan.kinds,
        "inputs": {name: _spec_summary(spec) for name, spec in result.plan.features.items()},
        "fusion": result.fusion,
        "valid": result.valid,
        "test": result.test,
        "trials": result.trials,
        "folds": result.folds,
        "cv": result.cv,
        "history": {k: [float(v) for v in vs] for k, vs in result.history.items()},
        "model": _gfile.abspath(result.export_path),
    }
    result.report_path = os.path.join(output_dir, "report.json")
    _gfile.write_text(result.report_path, json.dumps(summary, indent=2, default=float))
    for split in ("valid", "test"):
        report = getattr(result, split)
        if report is not None:
            reports.write_report(report, output_dir, prefix=f"{split}_report")
    _gfile.write_text(os.path.join(result.export_path, "assets", "mmzoo_fit.json"),
                      json.dumps({"label": summary["label"], "task": summary["task"], "classes": summary["classes"],
                                  "columns": summary["columns"], "inputs": _input_sources(result.plan)}, indent=2))


def _input_sources(plan):
    """Model input -> the manifest columns it reads (how ``mmzoo.evaluate`` rebuilds raw inputs)."""
    out = {}
    for name, spec in plan.features.items():
        columns = list(spec.columns) if not hasattr(spec, "column") else [spec.column]
        out[name] = {"kind": plan.modalities[name], "columns": columns,
                     "separator": getattr(spec, "separator", " ")}
    return out
