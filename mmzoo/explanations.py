"""Which modality decided a prediction: ``mmzoo.explain`` and its ``Explanation``.

``explain(model, inputs)`` takes a composed model (dict inputs keyed by
modality; also a reloaded export, ``mmzoo.load(path)``) and a batch, and
measures each modality's part in the prediction of one class (the
*target*) per example, three ways:

* **ablation**: the drop of the target's probability when the modality is
  absent. mmzoo's convention for an absent modality is an all-zeros input (a
  black image, a silent waveform, all-padding token ids 0); models trained
  with modality dropout (``compose(modality_dropout=...)``) read it as
  "missing". ``baselines`` replaces the zeros per modality.
* **integrated gradients** (Sundararajan et al., 2017) of the float inputs
  (images, audio, numeric features), along the straight path from all the
  baselines to the inputs together, summed per modality. Token ids (integer
  inputs) have no gradient: each token is occluded instead (replaced by its
  baseline id, 0 = padding, one at a time), and the drops are its
  attributions.
* **shares**: ``|ablation|`` normalised to sum 1 per example.

Audio. When the model computes a spectrogram from a waveform input
(``keras.layers.MelSpectrogram`` or ``mmzoo.layers.Spectrogram``, as the
mmzoo audio branches do), its integrated gradients are taken on that
spectrogram (from the spectrogram of the baseline waveform to the input's),
which gives a time-frequency saliency map. On the waveform itself (an
export, or a model without such a layer) they are of little use for a
model that normalises the waveform's level (``level="rms"``, the default of
the audio branches): such a model does not change when the waveform is
scaled, so along the path from silence its gradient is orthogonal to the
waveform and the summed attribution is ~0 (the jump happens at silence
itself). The per-sample map still shows where the evidence lies, and the
ablation, which the shares use, is unaffected.

Models that read all-zeros as absent (a modality-dropout gate) jump at the
zero baseline too; integrated gradients then explain the content of a
present modality, and do not add up to the ablation.

Per-element maps (``saliency``) show where in each input the evidence lies.
``Explanation.plot`` draws it all to a PNG; ``mmzoo explain`` does the same
for an export and raw files.

Example:

>>> import mmzoo
>>> from mmzoo.datasets import av_digits_recipe
>>> model = mmzoo.build("av_digits_concat", image_filters=(4,), audio_filters=(4,), hidden=(8,))
>>> inputs = {k: v[:2] for k, v in av_digits_recipe.load_arrays()["test"][0].items()}
>>> explanation = mmzoo.explain(model, inputs, steps=4)
>>> sorted(explanation.shares), explanation.shares["image"].shape
(['audio', 'image'], (2,))
>>> explanation.saliency["image"].shape, explanation.saliency["audio"].shape   # audio: (frames, mel bins)
((2, 28, 28), (2, 32, 40))
"""

from __future__ import annotations

import dataclasses
import io
import numbers
import os

import keras
import numpy as np
import tensorflow as tf

from mmzoo import _gfile
from mmzoo import fusion as fusion_lib
from mmzoo import heads as heads_lib
from mmzoo.layers import Spectrogram
from mmzoo.serving.loaded import ExportedModel

# Rows (examples x path points or occlusions) per model call.
ROWS_PER_CALL = 128
# Input names that mark a rank-2 float input as a waveform when no spectrogram layer says so.
_AUDIO_HINTS = ("audio", "wav", "speech", "sound", "waveform")


# --------------------------------------------------------------------------
# The model behind a uniform interface: a Keras model or a reloaded export.
# --------------------------------------------------------------------------
class _Subject:
    """What ``explain`` needs of a model: input specs, task, a differentiable forward pass."""

    def __init__(self):
        self.name = ""
        self.names = ()
        self.specs = {}  # name -> (shape without batch, tf.DType)
        self.kinds = {}  # name -> "image", "audio", "text", "numeric" or "map"
        self.task = "scores"
        self.class_names = None
        self.units = 1
        self.vocabularies = {}  # name -> token strings by id
        self.spectrograms = {}  # name -> its spectrogram layer (Keras models)
        self.keras_model = None

    def __call__(self, feeds):
        raise NotImplementedError


class _KerasSubject(_Subject):
    def __init__(self, model):
        super().__init__()
        try:
            inputs, outputs = model.input, model.outputs
        except (AttributeError, ValueError):  # a subclassed model that has no functional graph
            inputs, outputs = None, None
        if not isinstance(inputs, dict):
            raise ValueError(
                "`model` must be a functional Keras model with dict inputs keyed by modality (mmzoo.compose / "
                f"mmzoo.build) or an export reloaded with mmzoo.load. Received: model={model.name!r} with inputs "
                f"{inputs!r}"
            )
        if not outputs or len(outputs) != 1 or len(outputs[0].shape) != 2:
            raise ValueError(
                f"`model` must have one (batch, units) output. Received: model={model.name!r} with outputs "
                f"{[tuple(t.shape) for t in outputs or []]}"
            )
        self.keras_model = model
        self.name = model.name
        self.names = tuple(model.input)
        self.specs = {n: (tuple(t.shape[1:]), tf.as_dtype(t.dtype)) for n, t in model.input.items()}
        try:
            head = heads_lib.from_model(model)
        except ValueError:
            head = None
        self.task = head.kind if head is not None else "scores"
        self.class_names = head.class_names if head is not None else None
        self.units = int(model.outputs[0].shape[-1])
        self.spectrograms = {n: _spectrogram_layer(model, n) for n in self.names if self._is_float_vector(n)}
        self.kinds = {n: self._kind(n) for n in self.names}

    def _is_float_vector(self, name):
        shape, dtype = self.specs[name]
        return dtype.is_floating and len(shape) == 1

    def _kind(self, name):
        return _kind_from_spec(name, *self.specs[name], has_spectrogram=self.spectrograms.get(name) is not None)

    def __call__(self, feeds):
        return tf.cast(self.keras_model(feeds, training=False), tf.float32)


class _ExportSubject(_Subject):
    def __init__(self, served):
        super().__init__()
        if served.task == "embeddings" or "serving_default" not in served.signatures:
            raise ValueError(
                f"`model` must be an export of a model with a task (a prediction to explain); this export has task "
                f"{served.task!r}. Received: model={served.path!r}"
            )
        self.signature = served.signatures["serving_default"]
        self.name = served.metadata.get("model_name") or os.path.basename(_gfile.normpath(served.path))
        self.names = tuple(served.metadata["signatures"]["serving_default"]["inputs"])
        self.specs = {n: (tuple(served.inputs[n]["shape"][1:]), tf.as_dtype(served.inputs[n]["dtype"]))
                      for n in self.names}
        self.task = served.task
        self.class_names = tuple(served.class_names) if served.class_names else None
        self.output_key = "scores" if served.task in ("regression", "scores") else "probabilities"
        self.units = int(self.signature.structured_outputs[self.output_key].shape[-1])
        for name in self.names:
            raw = served.inputs[name].get("raw") or {}
            self.kinds[name] = raw.get("kind") or _kind_from_spec(name, *self.specs[name], has_spectrogram=False)
            vocab = os.path.join(served.path, raw.get("tokenizer_dir") or "-", "vocab.txt")
            if raw.get("kind") == "text" and _gfile.isfile(vocab):
                with _gfile.open_text(vocab) as f:
                    self.vocabularies[name] = [line.rstrip("\n") for line in f]

    def __call__(self, feeds):
        return tf.cast(self.signature(**feeds)[self.output_key], tf.float32)


def _kind_from_spec(name, shape, dtype, has_spectrogram):
    """``"image"``, ``"audio"``, ``"text"``, ``"numeric"`` or ``"map"`` from an input's spec and name."""
    if dtype.is_integer:
        return "text"
    if len(shape) == 3:
        return "image"
    if len(shape) == 1:
        hinted = any(hint in name.lower() for hint in _AUDIO_HINTS)
        return "audio" if has_spectrogram or hinted else "numeric"
    return "map"


def _connected(inputs, output):
    """Whether ``output`` can be computed from ``inputs`` alone (a functional model between them exists)."""
    try:
        keras.Model(inputs, output)
    except ValueError:
        return False
    return True


def _spectrogram_layer(model, name):
    """The one spectrogram layer computed from input ``name`` alone, or ``None``.

    Looks at the model's own layers (not into nested models) for a
    ``keras.layers.MelSpectrogram`` or ``mmzoo.layers.Spectrogram`` whose
    output depends on that input only (a level normalisation before it is fine).
    """
    found = []
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.MelSpectrogram, Spectrogram)):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if len(output.shape) == 3 and _connected(model.input[name], output):
            found.append(layer)
    return found[0] if len(found) == 1 else None


def _spectrogram_path(model, names, layers):
    """A model from the spectrogram outputs (instead of those waveforms) and the other inputs to the output.

    Returns ``(sub_model, keys)`` where ``keys`` lists the sub-model's inputs
    as ``(name, "spectrogram" | "input")``; the waveform inputs come last
    when the model also reads them elsewhere (e.g. a presence gate), where
    they are held at their values. ``None`` if no such model exists.
    """
    keys = [(n, "spectrogram" if n in layers else "input") for n in names]
    tensors = [layers[n].output if kind == "spectrogram" else model.input[n] for n, kind in keys]
    for extra in ([], [(n, "input") for n in names if n in layers]):
        try:
            sub = keras.Model(tensors + [model.input[n] for n, _ in extra], model.outputs[0])
        except ValueError:
            continue
        return sub, keys + extra
    return None


# --------------------------------------------------------------------------
# Arguments.
# --------------------------------------------------------------------------
def _subject(model):
    if isinstance(model, ExportedModel):
        return _ExportSubject(model)
    if isinstance(model, keras.Model):
        return _KerasSubject(model)
    raise ValueError(
        "`model` must be a keras.Model with dict inputs (mmzoo.compose / mmzoo.build) or an export reloaded with "
        f"mmzoo.load. Received: model={model!r}"
    )


def _check_inputs(subject, inputs):
    if not isinstance(inputs, dict):
        raise ValueError(
            f"`inputs` must be a dict of arrays keyed by modality {list(subject.names)}. Received: "
            f"inputs={type(inputs).__name__}"
        )
    missing = [n for n in subject.names if n not in inputs]
    if missing:
        raise ValueError(
            f"`inputs` is missing modality {missing[0]!r}; the model {subject.name!r} takes {list(subject.names)}. "
            f"Received: inputs with keys {sorted(inputs)}"
        )
    extra = sorted(set(inputs) - set(subject.names))
    if extra:
        raise ValueError(
            f"`inputs` has {extra} which the model {subject.name!r} does not take (its inputs: "
            f"{list(subject.names)}). Received: inputs with keys {sorted(inputs)}"
        )
    out = {}
    for name in subject.names:
        shape, dtype = subject.specs[name]
        value = np.asarray(inputs[name])
        if value.dtype.kind not in ("iu" if dtype.is_integer else "iuf") or value.ndim != len(shape) + 1 or any(
            want is not None and got != want for got, want in zip(value.shape[1:], shape)
        ):
            raise ValueError(
                f"`inputs[{name!r}]` must be {dtype.name} of shape (batch, {', '.join(map(str, shape))}). "
                f"Received: inputs[{name!r}] of dtype {value.dtype} and shape {value.shape}"
            )
        out[name] = value.astype(dtype.as_numpy_dtype)
    sizes = {name: len(value) for name, value in out.items()}
    if len(set(sizes.values())) != 1 or not next(iter(sizes.values())):
        raise ValueError(
            f"Every entry of `inputs` must hold the same number of examples (at least one). Received batch sizes: "
            f"inputs={sizes}"
        )
    return out


def _check_baselines(subject, inputs, baselines):
    out = {name: np.zeros_like(value) for name, value in inputs.items()}
    if baselines is None:
        return out
    if not isinstance(baselines, dict):
        raise ValueError(
            f"`baselines` must be None or a dict keyed by modality. Received: baselines={type(baselines).__name__}"
        )
    extra = sorted(set(baselines) - set(subject.names))
    if extra:
        raise ValueError(f"`baselines` names {extra}, not inputs of the model {list(subject.names)}. "
                         f"Received: baselines with keys {sorted(baselines)}")
    for name, value in baselines.items():
        try:
            out[name] = np.broadcast_to(np.asarray(value, inputs[name].dtype), inputs[name].shape).copy()
        except (ValueError, TypeError):
            raise ValueError(
                f"`baselines[{name!r}]` must broadcast to the input's shape {inputs[name].shape}. Received: "
                f"baselines[{name!r}] of shape {np.shape(value)}"
            ) from None
    return out


def _num_classes(subject):
    return 2 if subject.task == "binary" else subject.units


def _class_id(subject, value):
    """One target (an id or a class name) as an int id, or ``None`` if invalid."""
    if isinstance(value, str):
        names = subject.class_names or ()
        return names.index(value) if value in names else None
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        return int(value) if 0 <= value < _num_classes(subject) else None
    return None


def _check_target(subject, target, predictions):
    batch = len(predictions)
    if target is None:
        if subject.task == "binary":
            return np.ones(batch, np.int64)  # the positive class: its probability is the output
        if subject.task == "regression" or subject.units == 1:
            return np.zeros(batch, np.int64)  # the (first) output
        return np.argmax(predictions, axis=-1).astype(np.int64)
    values = [target] * batch if isinstance(target, (str, numbers.Integral, np.integer)) else target
    try:
        values = list(values)
    except TypeError:
        values = None
    ids = [_class_id(subject, v) for v in values] if values is not None and len(values) == batch else None
    if ids is None or any(i is None for i in ids):
        names = f" or class names {list(subject.class_names)}" if subject.class_names else ""
        raise ValueError(
            f"`target` must be None, a class id in [0, {_num_classes(subject)}){names}, or one per example "
            f"({batch}). Received: target={target!r}"
        )
    return np.asarray(ids, np.int64)


# --------------------------------------------------------------------------
# Scores, integrated gradients, occlusion.
# --------------------------------------------------------------------------
def _score(outputs, target, binary):
    """The explained value per row: the target's probability (binary: P(class)), or the output unit."""
    target = tf.constant(target)
    if binary:
        positive = outputs[:, 0]
        return tf.where(target == 1, positive, 1.0 - positive)
    return tf.gather(outputs, target, axis=1, batch_dims=1)


def _batched_scores(fn, rows, target, binary):
    """Scores of many rows, ``ROWS_PER_CALL`` at a time (``rows``: dict of arrays with the same length)."""
    count = len(target)
    out = np.zeros(count, np.float64)
    for start in range(0, count, ROWS_PER_CALL):
        part = slice(start, start + ROWS_PER_CALL)
        feeds = {k: tf.constant(v[part]) for k, v in rows.items()}
        out[part] = _score(fn(feeds), target[part], binary).numpy()
    return out


def _integrated_gradients(fn, start, end, fixed, target, binary, steps):
    """Integrated gradients of the score along ``start -> end`` (midpoint rule), other feeds held at ``fixed``.

    Args:
        fn: ``dict of tensors -> (rows, units)``.
        start, end: Dicts of arrays ``(batch, ...)`` for the varied feeds.
        fixed: Dict of arrays ``(batch, ...)`` held at their values.
        target, binary: What is scored (see ``_score``).
        steps: Points on the path.

    Returns:
        ``(attributions, start_score)``: a dict of ``(batch, ...)`` float
        arrays per varied feed, and the score at the path's start.
    """
    batch = len(target)
    alphas = (np.arange(steps) + 0.5) / steps
    per_call = max(1, ROWS_PER_CALL // batch)
    totals = {k: np.zeros(v.shape, np.float64) for k, v in start.items()}
    for first in range(0, steps, per_call):
        a = alphas[first : first + per_call].astype(np.float32)
        count = len(a)
        feeds = {}
        for k in start:
            diff = (end[k] - start[k])[None]
            path = start[k][None] + a.reshape((count,) + (1,) * start[k].ndim) * diff
            feeds[k] = tf.constant(path.reshape((count * batch,) + start[k].shape[1:]))
        for k, v in fixed.items():
            feeds[k] = tf.constant(np.concatenate([v] * count))
        varied = [feeds[k] for k in start]
        with tf.GradientTape() as tape:
            tape.watch(varied)
            total = tf.reduce_sum(_score(fn(feeds), np.tile(target, count), binary))
        grads = tape.gradient(total, varied)
        for k, g in zip(start, grads):
            if g is not None:
                totals[k] += g.numpy().reshape((count, batch) + start[k].shape[1:]).sum(axis=0)
    attributions = {k: (end[k] - start[k]) * totals[k] / steps for k in start}
    start_feeds = {**start, **fixed}
    return attributions, _batched_scores(fn, start_feeds, target, binary)


def _occlusion(fn, inputs, baselines, name, target, binary, score):
    """Per-element drops of the score when each element of input ``name`` alone takes its baseline value."""
    batch = len(target)
    flat = inputs[name].reshape(batch, -1)
    base = baselines[name].reshape(batch, -1)
    rows, cols = np.nonzero(flat != base)
    drops = np.zeros(flat.shape, np.float64)
    if len(rows):
        feeds = {n: v[rows] for n, v in inputs.items()}
        occluded = feeds[name].reshape(len(rows), -1).copy()
        occluded[np.arange(len(rows)), cols] = base[rows, cols]
        feeds[name] = occluded.reshape((len(rows),) + inputs[name].shape[1:])
        drops[rows, cols] = score[rows] - _batched_scores(fn, feeds, target[rows], binary)
    return drops.reshape(inputs[name].shape)


def _attention(subject, inputs):
    """``{modality: (batch,) weight}`` of an ``AttentionFusion`` layer named ``"fusion"``, or ``None``."""
    model = subject.keras_model
    if model is None:
        return None
    try:
        layer = model.get_layer("fusion")
    except ValueError:
        return None
    if not isinstance(layer, fusion_lib.AttentionFusion):
        return None
    weights = fusion_lib.attention_weights(model, inputs)
    names = list(subject.names)
    # The modality each fusion input is computed from, alone.
    owners = [n for tensor in layer.input for n in names if _connected(model.input[n], tensor)]
    if len(owners) != len(layer.input) or len(set(owners)) != len(owners):
        # Each fusion input reads several modalities (e.g. through a modality-dropout gate): compose feeds the
        # fusion its branches in the order of the model's inputs.
        owners = names if len(names) == weights.shape[1] else [f"fusion_input_{k}" for k in range(weights.shape[1])]
    return {owner: weights[:, k] for k, owner in enumerate(owners)}


# --------------------------------------------------------------------------
# The result.
# --------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class Explanation:
    """What ``explain`` found, per modality and example.

    Attributes:
        model_name: The model's name.
        modalities: The input names, in the model's order.
        kinds: Modality -> ``"image"``, ``"audio"``, ``"text"``
            (integer ids: tokens, categories), ``"numeric"`` or ``"map"``.
        task: The model's head kind (``"multiclass"``, ``"binary"``...,
            ``"scores"`` without a head).
        class_names: The head's class names, or ``None``.
        inputs: The explained batch (numpy, keyed by modality).
        predictions: The model's output ``(batch, units)``: probabilities
            (binary: ``(batch, 1)``, P(positive)), or regression values.
        target: ``(batch,)`` the explained class id (binary: 1 = positive,
            0 = negative; regression: the output unit).
        score: ``(batch,)`` the explained value: the target's probability
            (regression: the output).
        ablation: Modality -> ``(batch,)``: ``score`` minus the score with
            that modality at its baseline (absent: all zeros). Positive: the
            modality supported the target.
        integrated_gradients: Modality -> ``(batch,)`` attributions summed
            over the modality's elements: integrated gradients for float
            inputs (audio with a spectrogram layer: taken on the model's
            spectrogram, see ``saliency``), the sum of the per-token
            occlusion drops for integer inputs (``attribution_method``).
        attribution_method: Modality -> ``"integrated_gradients"``,
            ``"integrated_gradients_spectrogram"`` or ``"occlusion"``.
        ig_baseline_score: ``(batch,)`` the score at the start of the
            integrated-gradients path (float inputs at their baselines,
            integer inputs as given). Completeness: the float modalities'
            attributions sum to ``score - ig_baseline_score`` up to the
            path's discretisation (``completeness_error``).
        shares: Modality -> ``(batch,)``: ``|ablation|`` normalised to sum 1
            over the modalities of each example (equal shares where no
            modality changes the score).
        saliency: Modality -> per-element map: images ``(batch, H, W)``
            (``|IG|`` summed over channels); audio ``(batch, frames, bins)``
            (``|IG|`` on the model's spectrogram) when the model has a
            ``MelSpectrogram`` / ``mmzoo.layers.Spectrogram`` layer on that
            input, else ``(batch, samples)`` (``|IG|`` on the waveform);
            text ``(batch, length)`` signed per-token occlusion drops;
            numeric ``(batch, features)`` signed IG.
        spectrograms: Modality -> ``(batch, frames, bins)`` the model's own
            spectrogram of each audio input whose saliency is time-frequency.
        attention_weights: Modality -> ``(batch,)`` weights of the model's
            ``AttentionFusion`` layer named ``"fusion"``, or ``None``.
        vocabularies: Modality -> token strings by id (an export's
            tokenizer), used to label tokens in ``plot``.
        steps: Path points of the integrated gradients.
    """

    model_name: str
    modalities: tuple
    kinds: dict
    task: str
    class_names: tuple
    inputs: dict
    predictions: np.ndarray
    target: np.ndarray
    score: np.ndarray
    ablation: dict
    integrated_gradients: dict
    attribution_method: dict
    ig_baseline_score: np.ndarray
    shares: dict
    saliency: dict
    spectrograms: dict
    attention_weights: dict
    vocabularies: dict
    steps: int

    @property
    def completeness_error(self):
        """``(batch,)`` ``|sum of the float modalities' IG - (score - ig_baseline_score)|``."""
        total = sum(
            (v for m, v in self.integrated_gradients.items() if self.attribution_method[m] != "occlusion"),
            np.zeros_like(self.score),
        )
        return np.abs(total - (self.score - self.ig_baseline_score))

    def _check_index(self, index):
        batch = len(self.score)
        if isinstance(index, bool) or not isinstance(index, (numbers.Integral, np.integer)) or not 0 <= index < batch:
            raise ValueError(f"`index` must be an example index in [0, {batch}). Received: index={index!r}")
        return int(index)

    def _class_name(self, k, class_names=None):
        names = class_names or self.class_names
        return str(names[k]) if names is not None and k < len(names) else str(k)

    def top_classes(self, index=0, k=5, class_names=None):
        """The ``k`` most likely classes of example ``index`` as ``[(name, probability)]``.

        Binary models list both classes; regression models list their first
        ``k`` outputs, in order.
        """
        index = self._check_index(index)
        row = self.predictions[index].astype(float)
        if self.task == "binary":
            row = np.array([1.0 - row[0], row[0]])
        order = np.arange(min(k, len(row))) if self.task == "regression" else np.argsort(-row, kind="stable")[:k]
        return [(self._class_name(int(c), class_names), float(row[c])) for c in order]

    def to_dict(self, index=0, top_k=5, class_names=None):
        """A JSON-able summary of example ``index``.

        Returns:
            A dict with ``model``, ``task``, ``top_classes`` (list of
            ``{"class", "probability"}``; ``"value"`` for regression),
            ``target`` (``{"class", "class_id", "score"}``), ``shares``,
            ``ablation``, ``integrated_gradients``, ``attribution_method``,
            ``ig_baseline_score`` and ``attention_weights`` (or ``None``).
        """
        index = self._check_index(index)
        value = "value" if self.task in ("regression", "scores") else "probability"
        per_modality = {
            key: {m: float(getattr(self, key)[m][index]) for m in self.modalities}
            for key in ("shares", "ablation", "integrated_gradients")
        }
        target = int(self.target[index])
        return {
            "model": self.model_name,
            "task": self.task,
            "top_classes": [{"class": n, value: p} for n, p in self.top_classes(index, top_k, class_names)],
            "target": {"class": self._class_name(target, class_names), "class_id": target,
                       "score": float(self.score[index])},
            **per_modality,
            "attribution_method": dict(self.attribution_method),
            "ig_baseline_score": float(self.ig_baseline_score[index]),
            "attention_weights": None if self.attention_weights is None else {
                m: float(w[index]) for m, w in self.attention_weights.items()},
        }

    def plot(self, index=0, path=None, inputs=None, class_names=None, vocabularies=None):
        """Draws example ``index``: each modality with its saliency, the modality shares and the top classes.

        One panel per modality (an image under its saliency heatmap; the
        model's spectrogram under its time-frequency saliency, or the
        waveform with its saliency envelope; a bar per token, labelled with
        words when a vocabulary is known; a bar per numeric feature), a bar
        chart of the shares (with the ablation drops and the attention
        weights when the model has them) and the top classes with their
        probabilities (the explained class highlighted).

        Args:
            index: The example.
            path: PNG path to write (local or ``gs://``); ``None`` returns the figure instead.
            inputs: Inputs to draw instead of the explained ones (same
                shapes, e.g. the clean version of a degraded batch).
            class_names: Class names overriding the model's.
            vocabularies: Modality -> token strings by id, overriding
                ``self.vocabularies`` (e.g. ``tokenizer.vocabulary``).

        Returns:
            ``path``, or the ``matplotlib.figure.Figure`` when ``path`` is ``None``.

        Raises:
            ValueError: If ``index`` is out of range or ``inputs`` lacks a modality.
        """
        from matplotlib.figure import Figure  # noqa: PLC0415  # no pyplot: leaves the global backend alone

        index = self._check_index(index)
        shown = self.inputs if inputs is None else inputs
        if not isinstance(shown, dict) or any(m not in shown for m in self.modalities):
            raise ValueError(f"`inputs` must be a dict with the modalities {list(self.modalities)}. Received: "
                             f"inputs={sorted(shown) if isinstance(shown, dict) else type(shown).__name__}")
        vocabularies = {**self.vocabularies, **(vocabularies or {})}
        columns = len(self.modalities) + 2
        fig = Figure(figsize=(3.8 * columns, 3.8))
        axes = fig.subplots(1, columns, squeeze=False)[0]
        for ax, modality in zip(axes, self.modalities):
            self._plot_modality(ax, modality, index, np.asarray(shown[modality])[index], vocabularies.get(modality))
        self._plot_shares(axes[-2], index)
        self._plot_classes(axes[-1], index, class_names)
        target = int(self.target[index])
        fig.suptitle(f"{self.model_name}: example {index}, explained class {self._class_name(target, class_names)} "
                     f"(score {self.score[index]:.3f})")
        fig.tight_layout()
        if path is None:
            return fig
        buffer = io.BytesIO()
        fig.savefig(buffer, format=os.path.splitext(os.fspath(path))[1][1:] or None, dpi=100)
        return _gfile.write_bytes(path, buffer.getvalue())

    def _plot_modality(self, ax, modality, index, value, vocabulary):
        kind, sal = self.kinds[modality], self.saliency[modality][index]
        ax.set_title(f"{modality} (share {self.shares[modality][index]:.2f})")
        if kind == "image" and value.ndim == 3:
            picture = value[..., 0] if value.shape[-1] == 1 else value[..., :3] if value.shape[-1] >= 3 else (
                value.mean(-1))
            ax.imshow(np.clip(picture, 0, 1), cmap="gray", vmin=0, vmax=1)
            ax.imshow(sal, cmap="inferno", alpha=_alpha(sal))
            ax.set_xticks([])
            ax.set_yticks([])
        elif sal.ndim == 2:  # time-frequency saliency (frames, bins) over the model's spectrogram, or a 2-D input
            background = self.spectrograms[modality][index] if modality in self.spectrograms else value
            if background.shape == sal.shape:
                ax.imshow(background.T, origin="lower", aspect="auto", cmap="gray")
            ax.imshow(sal.T, origin="lower", aspect="auto", cmap="inferno", alpha=_alpha(sal.T))
            ax.set_xlabel("frame")
            ax.set_ylabel("frequency bin")
        elif kind == "text":
            ids = value.reshape(-1)
            keep = np.flatnonzero(ids)[:30]
            labels = [vocabulary[i] if vocabulary is not None and 0 <= i < len(vocabulary) else str(i)
                      for i in ids[keep]]
            heights = sal.reshape(-1)[keep]
            ax.barh(np.arange(len(keep)), heights, color=np.where(heights >= 0, "tab:green", "tab:red"))
            ax.set_yticks(np.arange(len(keep)), labels, fontsize=8)
            ax.invert_yaxis()
            ax.axvline(0, color="black", lw=0.6)
            ax.set_xlabel("score drop when occluded")
        elif kind == "audio":
            ax.plot(value, color="0.6", lw=0.5)
            ax.set_xlabel("sample")
            ax.set_ylabel("waveform")
            twin = ax.twinx()
            width = max(1, len(sal) // 100)
            envelope = np.convolve(np.abs(sal), np.ones(width) / width, mode="same")
            twin.plot(envelope / (envelope.max() or 1.0), color="tab:red", lw=1)
            twin.set_ylabel("saliency (normalised)")
        else:
            heights = sal.reshape(-1)[:30]
            ax.barh(np.arange(len(heights)), heights, color=np.where(heights >= 0, "tab:green", "tab:red"))
            ax.invert_yaxis()
            ax.set_ylabel("feature")
            ax.set_xlabel("attribution")

    def _plot_shares(self, ax, index):
        positions = np.arange(len(self.modalities))
        shares = [self.shares[m][index] for m in self.modalities]
        height = 0.4 if self.attention_weights else 0.7
        ax.barh(positions, shares, height=height, color="tab:blue", label="share (|ablation|)")
        for y, m in zip(positions, self.modalities):
            ax.text(self.shares[m][index], y, f" drop {self.ablation[m][index]:+.3f}", va="center", fontsize=8)
        if self.attention_weights:
            weights = [self.attention_weights.get(m, np.full_like(self.score, np.nan))[index] for m in self.modalities]
            ax.barh(positions + height, weights, height=height, color="tab:orange", label="attention weight")
        ax.set_yticks(positions + (height / 2 if self.attention_weights else 0), self.modalities)
        ax.set_xlim(0, 1.35)
        ax.invert_yaxis()
        ax.set_xlabel("share")
        ax.set_title("modality shares")
        ax.legend(loc="lower right", fontsize=7)

    def _plot_classes(self, ax, index, class_names):
        top = self.top_classes(index, 5, class_names)
        target = self._class_name(int(self.target[index]), class_names)
        ax.barh(np.arange(len(top)), [p for _, p in top],
                color=["tab:green" if n == target else "0.6" for n, _ in top])
        ax.set_yticks(np.arange(len(top)), [n for n, _ in top])
        ax.invert_yaxis()
        for y, (_, p) in enumerate(top):
            ax.text(p, y, f" {p:.3f}", va="center", fontsize=8)
        regression = self.task in ("regression", "scores")
        ax.set_xlabel("output" if regression else "probability")
        ax.set_title("outputs" if regression else "top classes")
        if not regression:
            ax.set_xlim(0, 1.2)


def _alpha(saliency):
    """Per-pixel opacity of a heatmap: its values scaled to [0, 0.85]."""
    top = float(np.max(saliency)) if np.size(saliency) else 0.0
    return np.clip(saliency / top, 0, 1) * 0.85 if top > 0 else np.zeros_like(saliency)


def _path_attributions(subject, inputs, baselines, floats, target, binary, steps, score):
    """Integrated gradients of the float inputs, all along one path; on the spectrogram for audio when possible.

    Returns:
        ``(attributions, start_score, spectrograms)``: attributions per float
        modality (audio with a spectrogram layer: ``(batch, frames, bins)``),
        the score at the path's start, and the model's spectrogram of each
        audio input so explained.
    """
    if not floats:  # token ids only: occlusion, no path
        return {}, score.copy(), {}
    fixed = {n: inputs[n] for n in subject.names if n not in floats}
    layers = {n: layer for n, layer in subject.spectrograms.items() if layer is not None}
    path = _spectrogram_path(subject.keras_model, subject.names, layers) if layers else None
    if path is None:
        start, end = {n: baselines[n] for n in floats}, {n: inputs[n] for n in floats}
        attributions, start_score = _integrated_gradients(subject, start, end, fixed, target, binary, steps)
        return attributions, start_score, {}
    sub_model, keys = path  # keys: (name, "spectrogram" | "input"), the waveforms again at the end if needed
    start, end, fixed = {}, {}, {}
    for k, (name, kind) in enumerate(keys):
        if kind == "spectrogram":
            to_spectrogram = keras.Model(subject.keras_model.input[name], layers[name].output)
            end[k] = keras.ops.convert_to_numpy(to_spectrogram(tf.constant(inputs[name]))).astype(np.float32)
            start[k] = keras.ops.convert_to_numpy(to_spectrogram(tf.constant(baselines[name]))).astype(np.float32)
        elif name in floats and k < len(subject.names):
            start[k], end[k] = baselines[name], inputs[name]
        else:  # token ids, and waveforms read elsewhere too (e.g. by a presence gate): held at their values
            fixed[k] = inputs[name]

    def fn(feeds):
        return tf.cast(sub_model([feeds[k] for k in range(len(keys))], training=False), tf.float32)

    by_key, start_score = _integrated_gradients(fn, start, end, fixed, target, binary, steps)
    attributions, spectrograms = {}, {}
    for k, (name, kind) in enumerate(keys[: len(subject.names)]):
        if k not in by_key:
            continue
        attributions[name] = by_key[k]
        if kind == "spectrogram":
            mel = isinstance(layers[name], keras.layers.MelSpectrogram)  # (batch, bins, frames): time first
            spectrograms[name] = np.swapaxes(end[k], 1, 2) if mel else end[k]
            attributions[name] = np.swapaxes(by_key[k], 1, 2) if mel else by_key[k]
    return attributions, start_score, spectrograms


# --------------------------------------------------------------------------
# explain.
# --------------------------------------------------------------------------
def explain(model, inputs, *, target=None, steps=32, baselines=None):
    """Measures how much each modality contributed to a model's predictions on a batch.

    See the module docstring for the three measures; ``Explanation``
    documents every field.

    Args:
        model: A ``keras.Model`` with dict inputs keyed by modality (from
            ``mmzoo.compose`` / ``mmzoo.build``), or an export reloaded with
            ``mmzoo.load`` (then audio saliency is on the waveform and there
            are no attention weights: the export holds no layers).
        inputs: A batch: dict of arrays keyed by modality (e.g. a batch of
            ``mmzoo.datasets.av_digits()``).
        target: The class to explain: ``None`` (each example's top class;
            binary: the positive class; regression: the first output), a
            class id (regression: an output index) or name for every
            example, or one per example.
        steps: Points on the integrated-gradients path (midpoint rule).
            Each costs a forward and backward pass over the batch; the
            completeness error shrinks about as ``1 / steps`` (measured on a
            trained AV-digits model: 8% of ``score - ig_baseline_score`` at
            32 steps, 3% at 128).
        baselines: Modality -> the "absent" value (an array broadcast to the
            input's shape); default all zeros, mmzoo's absent modality.

    Returns:
        An ``Explanation``.

    Raises:
        ValueError: If ``model`` is not a model with dict inputs, ``inputs``
            misses a modality, has one the model lacks, a wrong shape or dtype,
            or batch sizes that differ; or ``target``, ``steps`` or
            ``baselines`` is invalid.

    Example::

        model = mmzoo.build("av_digits_concat")
        train_ds, test_ds = mmzoo.datasets.av_digits()
        model.fit(train_ds, epochs=5)
        explanation = mmzoo.explain(model, next(iter(test_ds))[0])
        explanation.shares["image"][:4]            # share of the image in the first 4 predictions
        explanation.plot(0, "explanation.png")
    """
    subject = _subject(model)
    if isinstance(steps, bool) or not isinstance(steps, (numbers.Integral, np.integer)) or steps <= 0:
        raise ValueError(f"`steps` must be a positive integer. Received: steps={steps!r}")
    steps = int(steps)
    inputs = _check_inputs(subject, inputs)
    baselines = _check_baselines(subject, inputs, baselines)
    binary = subject.task == "binary"

    predictions = subject({n: tf.constant(v) for n, v in inputs.items()}).numpy()
    target = _check_target(subject, target, predictions)
    score = _batched_scores(subject, inputs, target, binary)

    ablation = {}
    for name in subject.names:
        ablation[name] = score - _batched_scores(subject, {**inputs, name: baselines[name]}, target, binary)

    floats = [n for n in subject.names if subject.specs[n][1].is_floating]
    method = {n: "integrated_gradients" if n in floats else "occlusion" for n in subject.names}
    ig, ig_baseline_score, spectrograms = _path_attributions(
        subject, inputs, baselines, floats, target, binary, steps, score)
    method.update({n: "integrated_gradients_spectrogram" for n in spectrograms})

    saliency, totals = {}, {}
    for name in subject.names:
        if name not in floats:
            drops = _occlusion(subject, inputs, baselines, name, target, binary, score)
            saliency[name] = drops
            totals[name] = drops.reshape(len(score), -1).sum(axis=1)
            continue
        attributions = ig[name]
        totals[name] = attributions.reshape(len(score), -1).sum(axis=1)
        if subject.kinds[name] == "image" and attributions.ndim == 4:
            saliency[name] = np.abs(attributions).sum(axis=-1)
        elif subject.kinds[name] == "numeric":
            saliency[name] = attributions
        else:
            saliency[name] = np.abs(attributions)

    magnitude = np.stack([np.abs(ablation[n]) for n in subject.names])
    total = magnitude.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    shares = {n: np.where(total > 0, magnitude[k] / safe, 1.0 / len(subject.names))
              for k, n in enumerate(subject.names)}

    return Explanation(
        model_name=subject.name,
        modalities=tuple(subject.names),
        kinds=dict(subject.kinds),
        task=subject.task,
        class_names=subject.class_names,
        inputs=inputs,
        predictions=predictions,
        target=target,
        score=score,
        ablation=ablation,
        integrated_gradients=totals,
        attribution_method=method,
        ig_baseline_score=ig_baseline_score,
        shares=shares,
        saliency=saliency,
        spectrograms=spectrograms,
        attention_weights=_attention(subject, inputs),
        vocabularies=dict(subject.vocabularies),
        steps=steps,
    )
