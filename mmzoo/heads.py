"""Task heads: the output layer, its activation (in float32) and its defaults.

A head is a small description, not a layer: ``compose`` asks it for the
output ``Dense`` (logits), the float32 activation, the default loss and fresh
default metrics. The activation runs in float32 so models stay numerically
sound under a ``mixed_float16`` / ``mixed_bfloat16`` policy.

Example:

>>> head = heads.multiclass(10)
>>> model = mmzoo.compose([image, audio], head=head)   # compiled with head.loss
"""

from __future__ import annotations

import abc

import keras

from mmzoo import _validation as check


class Head(abc.ABC):
    """Base head. Subclasses set ``units``, ``activation`` and the defaults.

    Attributes:
        units: Width of the output layer.
        activation: Output activation name (applied in float32).
        kind: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        class_names: Optional names of the classes / labels / targets.
    """

    kind = None
    activation = "linear"

    def __init__(self, units, class_names=None):
        self.units = check.positive_int("units", units)
        if class_names is not None:
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
        """Applies the output activation in float32 (layer named ``name``)."""
        return keras.layers.Activation(self.activation, dtype="float32", name=name)(logits)

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
        """The head's constructor arguments (used to rebuild zoo models)."""
        return {"kind": self.kind, "units": self.units, "class_names": self.class_names}

    def __repr__(self):
        return f"{type(self).__name__}(units={self.units})"


class BinaryHead(Head):
    """One sigmoid unit: P(positive). Loss: binary cross-entropy."""

    kind = "binary"
    activation = "sigmoid"

    def __init__(self, threshold=0.5, class_names=None):
        if not 0 < threshold < 1:
            raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold!r}")
        self.threshold = float(threshold)
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


class MulticlassHead(Head):
    """``num_classes`` softmax units; integer labels. Loss: sparse categorical CE."""

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


class MultilabelHead(Head):
    """``num_labels`` independent sigmoid units; multi-hot labels. Loss: binary CE."""

    kind = "multilabel"
    activation = "sigmoid"

    def __init__(self, num_labels, threshold=0.5, class_names=None):
        if not 0 < threshold < 1:
            raise ValueError(f"`threshold` must be in (0, 1). Received: threshold={threshold!r}")
        self.threshold = float(threshold)
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


class RegressionHead(Head):
    """``units`` linear outputs. Loss: mean squared error; metrics MSE and MAE."""

    kind = "regression"
    activation = "linear"

    def __init__(self, units=1, class_names=None):
        super().__init__(check.positive_int("units", units), class_names)

    @property
    def loss(self):
        return keras.losses.MeanSquaredError()

    def metrics(self):
        return [keras.metrics.MeanSquaredError("mse"), keras.metrics.MeanAbsoluteError("mae")]


def binary(threshold=0.5, class_names=None):
    """Binary classification head (sigmoid). Example: ``heads.binary()``."""
    return BinaryHead(threshold=threshold, class_names=class_names)


def multiclass(num_classes, top_k=5, class_names=None):
    """Multiclass head (softmax, integer labels). Example: ``heads.multiclass(10)``."""
    return MulticlassHead(num_classes, top_k=top_k, class_names=class_names)


def multilabel(num_labels, threshold=0.5, class_names=None):
    """Multi-label head (independent sigmoids, multi-hot labels). Example: ``heads.multilabel(5)``."""
    return MultilabelHead(num_labels, threshold=threshold, class_names=class_names)


def regression(units=1, class_names=None):
    """Regression head (linear outputs). Example: ``heads.regression(2)``."""
    return RegressionHead(units=units, class_names=class_names)
