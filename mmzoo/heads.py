"""Task heads: the output layer, its activation (in float32) and its defaults.

A head is a small description, not a layer: ``compose`` asks it for the
output ``Dense`` (logits), the float32 activation, the default loss and fresh
default metrics. The activation is a ``HeadActivation`` layer whose config
holds the head (kind, units, class names, threshold, top-k), so the task
travels inside the model: it is saved with ``model.save`` / ``get_config``
and read back by ``heads.from_model``, ``mmzoo.export``, ``mmzoo predict``
and ``mmzoo.training``. The activation runs in float32 so models stay
numerically sound under a ``mixed_float16`` / ``mixed_bfloat16`` policy.

Example:

>>> import mmzoo
>>> from mmzoo import branches, heads
>>> image = branches.image_cnn((28, 28, 1), filters=(4,), name="image")
>>> head = heads.multiclass(3, class_names=["cat", "dog", "fox"])
>>> model = mmzoo.compose([image], head=head, hidden=(8,))   # compiled with head.loss
>>> heads.from_model(model).class_names
('cat', 'dog', 'fox')
"""

from __future__ import annotations

import abc
import numbers

import keras

from mmzoo import _validation as check

KINDS = ("binary", "multiclass", "multilabel", "regression")


def _threshold(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"`threshold` must be a number in (0, 1). Received: threshold={value!r}")
    return float(value)


class Head(abc.ABC):
    """Base head. Subclasses set ``kind``, ``activation`` and the defaults.

    Attributes:
        units: Width of the output layer.
        activation: Output activation name (applied in float32).
        kind: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        class_names: Names of the classes / labels / targets (a tuple of
            ``str``), or ``None``. A binary head has two: negative, positive.
    """

    kind = None
    activation = "linear"

    def __init__(self, units, class_names=None):
        self.units = check.positive_int("units", units)
        if class_names is not None:
            if isinstance(class_names, str):
                raise ValueError(f"`class_names` must be a list of names, not a string. Received: "
                                 f"class_names={class_names!r}")
            class_names = tuple(str(c) for c in class_names)
            if len(class_names) != self._num_names():
                raise ValueError(
                    f"`class_names` must have {self._num_names()} entries. Received: class_names={class_names!r}"
                )
        self.class_names = class_names

    def _num_names(self):
        return self.units

    def logits(self, x, name="output"):
        """Applies the output ``Dense`` layer (named ``{name}_logits``)."""
        return keras.layers.Dense(self.units, name=f"{name}_logits")(x)

    def activate(self, logits, name="output"):
        """Applies the output activation in float32: a ``HeadActivation`` layer named ``name``."""
        return HeadActivation(**self.get_config(), activation=self.activation, dtype="float32", name=name)(logits)

    def __call__(self, x, name="output"):
        return self.activate(self.logits(x, name), name)

    @property
    @abc.abstractmethod
    def loss(self):
        """The default loss (a fresh Keras loss object)."""

    @abc.abstractmethod
    def metrics(self):
        """Fresh default metric objects for ``model.compile``."""

    def get_config(self):
        """The head as a JSON-able dict: ``kind``, ``units``, ``class_names`` (+ ``threshold``/``top_k``)."""
        return {"kind": self.kind, "units": self.units,
                "class_names": None if self.class_names is None else list(self.class_names)}

    @staticmethod
    def from_config(config):
        """Rebuilds a head from ``get_config()`` (or a ``HeadActivation``'s config).

        Args:
            config: A dict with ``kind`` and the fields of that kind's head.

        Returns:
            A ``Head``.

        Raises:
            ValueError: If ``kind`` is unknown or a field is invalid.
        """
        config = dict(config)
        kind = config.pop("kind", None)
        check.choice("kind", kind, KINDS)
        class_names = config.get("class_names")
        if kind == "binary":
            if config.get("units", 1) != 1:
                raise ValueError(f"A binary head has one unit. Received: units={config['units']!r}")
            return BinaryHead(threshold=_or(config.get("threshold"), 0.5), class_names=class_names)
        if kind == "multiclass":
            return MulticlassHead(config.get("units"), top_k=_or(config.get("top_k"), 5), class_names=class_names)
        if kind == "multilabel":
            return MultilabelHead(config.get("units"), threshold=_or(config.get("threshold"), 0.5),
                                  class_names=class_names)
        return RegressionHead(units=config.get("units"), class_names=class_names)

    def __eq__(self, other):
        return type(other) is type(self) and other.get_config() == self.get_config()

    def __hash__(self):
        return hash((self.kind, self.units, self.class_names))

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "kind" and v is not None)
        return f"{type(self).__name__}({fields})"


def _or(value, default):
    return default if value is None else value


class BinaryHead(Head):
    """One sigmoid unit: P(positive). Loss: binary cross-entropy.

    Attributes:
        threshold: Decision threshold: ``class_id = P(positive) >= threshold``
            (metrics, export and ``mmzoo predict`` all use it).
    """

    kind = "binary"
    activation = "sigmoid"

    def __init__(self, threshold=0.5, class_names=None):
        self.threshold = _threshold(threshold)
        super().__init__(1, class_names)

    def _num_names(self):
        return 2

    @property
    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [
            keras.metrics.BinaryAccuracy("accuracy", threshold=self.threshold),
            keras.metrics.Precision(thresholds=self.threshold, name="precision"),
            keras.metrics.Recall(thresholds=self.threshold, name="recall"),
            keras.metrics.AUC(name="auc"),
        ]

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class MulticlassHead(Head):
    """``num_classes`` softmax units; integer labels. Loss: sparse categorical CE.

    Attributes:
        top_k: ``k`` of the top-k accuracy metric (dropped when ``k`` covers
            every class).
    """

    kind = "multiclass"
    activation = "softmax"

    def __init__(self, num_classes, top_k=5, class_names=None):
        if check.positive_int("num_classes", num_classes) < 2:
            raise ValueError(f"`num_classes` must be at least 2. Received: num_classes={num_classes!r}")
        self.top_k = check.positive_int("top_k", top_k)
        super().__init__(num_classes, class_names)

    @property
    def loss(self):
        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self):
        metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        if self.top_k < self.units:
            metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=self.top_k, name=f"top{self.top_k}_accuracy"))
        return metrics

    def get_config(self):
        return {**super().get_config(), "top_k": self.top_k}


class MultilabelHead(Head):
    """``num_labels`` independent sigmoid units; multi-hot labels. Loss: binary CE.

    Attributes:
        threshold: A label is predicted when its probability is ``>= threshold``.
    """

    kind = "multilabel"
    activation = "sigmoid"

    def __init__(self, num_labels, threshold=0.5, class_names=None):
        self.threshold = _threshold(threshold)
        super().__init__(check.positive_int("num_labels", num_labels), class_names)

    @property
    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self):
        return [
            keras.metrics.BinaryAccuracy("accuracy", threshold=self.threshold),
            keras.metrics.Precision(thresholds=self.threshold, name="precision"),
            keras.metrics.Recall(thresholds=self.threshold, name="recall"),
            keras.metrics.AUC(multi_label=True, num_labels=self.units, name="auc"),
        ]

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class RegressionHead(Head):
    """``units`` linear outputs. Loss: mean squared error; metrics MSE and MAE.

    ``class_names`` here name the targets (one per unit).
    """

    kind = "regression"
    activation = "linear"

    def __init__(self, units=1, class_names=None):
        super().__init__(check.positive_int("units", units), class_names)

    @property
    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.MeanSquaredError("mse"), keras.metrics.MeanAbsoluteError("mae")]


_ACTIVATIONS = {"binary": "sigmoid", "multiclass": "softmax", "multilabel": "sigmoid", "regression": "linear"}


@keras.saving.register_keras_serializable(package="mmzoo")
class HeadActivation(keras.layers.Layer):
    """The final activation of an mmzoo model; its config is the model's head.

    Applies the head's activation (``sigmoid``, ``softmax`` over the last axis
    or ``linear``) in its own dtype, ``float32`` by default, so outputs are
    float32 under mixed precision. Its config holds ``kind``, ``activation``,
    ``units``, ``class_names``, ``threshold`` (binary, multilabel) and
    ``top_k`` (multiclass): a saved model (``.keras``, ``get_config``) keeps
    its task, and ``heads.from_model`` reads it back.

    Args:
        kind: One of ``KINDS``.
        units: Width of the output (1 for binary).
        activation: The kind's activation (derived from ``kind`` when ``None``).
        class_names: Names of the classes/labels/targets, or ``None``.
        threshold: Decision threshold (binary, multilabel).
        top_k: ``k`` of the top-k metric (multiclass).
        **kwargs: ``keras.layers.Layer`` arguments (``name``, ``dtype``).

    Raises:
        ValueError: If the fields do not make a valid head of ``kind``.

    Example:

    >>> import numpy as np
    >>> layer = HeadActivation("multiclass", 3, class_names=["a", "b", "c"], top_k=1)
    >>> probabilities = layer(np.zeros((2, 3), "float32"))
    >>> layer.head.class_names, tuple(probabilities.shape), keras.backend.standardize_dtype(probabilities.dtype)
    (('a', 'b', 'c'), (2, 3), 'float32')
    """

    def __init__(self, kind, units, activation=None, class_names=None, threshold=None, top_k=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        check.choice("kind", kind, KINDS)
        if activation is not None and activation != _ACTIVATIONS[kind]:
            raise ValueError(
                f"A {kind} head's activation is {_ACTIVATIONS[kind]!r}. Received: activation={activation!r}"
            )
        head = Head.from_config(
            {"kind": kind, "units": units, "class_names": class_names, "threshold": threshold, "top_k": top_k}
        )
        self._head_config = head.get_config()
        self.kind = kind
        self.units = head.units
        self.activation = _ACTIVATIONS[kind]
        self.class_names = head.class_names
        self.threshold = getattr(head, "threshold", None)
        self.top_k = getattr(head, "top_k", None)

    @property
    def head(self):
        """A fresh ``Head`` with this layer's fields (loss, metrics, class names, threshold)."""
        return Head.from_config(self._head_config)

    def call(self, inputs):
        if self.activation == "softmax":
            return keras.ops.softmax(inputs, axis=-1)
        if self.activation == "sigmoid":
            return keras.ops.sigmoid(inputs)
        return keras.ops.convert_to_tensor(inputs, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            kind=self.kind,
            units=self.units,
            activation=self.activation,
            class_names=None if self.class_names is None else list(self.class_names),
            threshold=self.threshold,
            top_k=self.top_k,
        )
        return config


def _all_layers(model):
    """Layers of ``model``, descending into nested models."""
    for layer in getattr(model, "layers", []):
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def from_model(model):
    """The head a model ends in, rebuilt from its ``HeadActivation`` layer.

    Works on models from ``mmzoo.compose`` / ``mmzoo.build`` and on their
    reloaded copies (``keras.saving.load_model``, ``from_config``), nested
    models included.

    Args:
        model: A Keras model.

    Returns:
        A ``Head`` (its ``kind``, ``units``, ``class_names``, ``threshold``,
        ``top_k``, loss and metrics).

    Raises:
        ValueError: If ``model`` has no ``HeadActivation`` (e.g. a plain Keras
            model or a ``mmzoo.retrieval.DualEncoder``), or several and none of
            them makes its single output.

    Example:

    >>> import mmzoo
    >>> from mmzoo import heads
    >>> heads.from_model(mmzoo.build("av_digits_concat", image_filters=(4,), audio_filters=(4,))).class_names[:3]
    ('0', '1', '2')
    """
    found = [layer for layer in _all_layers(model) if isinstance(layer, HeadActivation)]
    if len(found) > 1:
        outputs = getattr(model, "outputs", None) or []
        found = [layer for layer in found if len(outputs) == 1 and _output_of(layer) is outputs[0]]
    if len(found) != 1:
        name = getattr(model, "name", type(model).__name__)
        raise ValueError(
            f"`model` {name!r} has no mmzoo head (no single HeadActivation layer making its output): build it "
            f"with mmzoo.compose / mmzoo.build, or give the task explicitly (e.g. mmzoo.export(..., task=...)). "
            f"Received: model={name!r}"
        )
    return found[0].head


def _output_of(layer):
    try:
        return layer.output
    except (AttributeError, ValueError):
        return None


def binary(threshold=0.5, class_names=None):
    """Binary classification head (sigmoid).

    Args:
        threshold: Decision threshold of ``P(positive)`` (metrics, export).
        class_names: Two names, negative first, or ``None``.

    Returns:
        A ``BinaryHead``.

    Example:

    >>> from mmzoo import heads
    >>> heads.binary(threshold=0.3, class_names=["ham", "spam"]).get_config()["threshold"]
    0.3
    """
    return BinaryHead(threshold=threshold, class_names=class_names)


def multiclass(num_classes, top_k=5, class_names=None):
    """Multiclass head (softmax, integer labels).

    Args:
        num_classes: Number of classes (at least 2).
        top_k: ``k`` of the top-k accuracy metric.
        class_names: ``num_classes`` names, or ``None``.

    Returns:
        A ``MulticlassHead``.

    Example:

    >>> from mmzoo import heads
    >>> heads.multiclass(10).units
    10
    """
    return MulticlassHead(num_classes, top_k=top_k, class_names=class_names)


def multilabel(num_labels, threshold=0.5, class_names=None):
    """Multi-label head (independent sigmoids, multi-hot labels).

    Args:
        num_labels: Number of labels.
        threshold: A label is predicted when its probability is ``>= threshold``.
        class_names: ``num_labels`` names, or ``None``.

    Returns:
        A ``MultilabelHead``.

    Example:

    >>> from mmzoo import heads
    >>> heads.multilabel(5).kind
    'multilabel'
    """
    return MultilabelHead(num_labels, threshold=threshold, class_names=class_names)


def regression(units=1, class_names=None):
    """Regression head (linear outputs).

    Args:
        units: Number of targets.
        class_names: ``units`` target names, or ``None``.

    Returns:
        A ``RegressionHead``.

    Example:

    >>> from mmzoo import heads
    >>> heads.regression(2).activation
    'linear'
    """
    return RegressionHead(units=units, class_names=class_names)
