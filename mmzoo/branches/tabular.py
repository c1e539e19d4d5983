"""Tabular branch builders: numeric features (normalised in the model) and categorical ids (embedded).

Inputs follow ``mmzoo.data.NumericColumn`` (float32 ``(num_features,)``) and
``mmzoo.data.CategoricalColumn`` (int32 ``(num_columns,)`` ids in one id
space of size ``cardinality``).
"""

from __future__ import annotations

import keras
import numpy as np

from mmzoo import _validation as check
from mmzoo.branches.base import Branch


def tabular_numeric(num_features, mean=None, variance=None, units=(32,), name="numeric"):
    """Numeric features -> ``Normalization`` (fixed training statistics) -> ``Dense`` layers.

    Args:
        num_features: Values per example.
        mean: Per-feature training mean (``None``: no normalisation).
        variance: Per-feature training variance (with ``mean``).
        units: Widths of the ReLU ``Dense`` layers (``()`` for none).
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` (modality ``"tabular"``) with ``units[-1]`` features
        (``num_features`` when ``units`` is empty).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> b = branches.tabular_numeric(3, mean=[0.0, 1.0, 2.0], variance=[1.0, 4.0, 9.0])
    >>> tuple(b.features.shape)
    (None, 32)
    """
    num_features = check.positive_int("num_features", num_features)
    units = check.positive_ints("units", units, allow_empty=True)
    check.identifier("name", name)
    if (mean is None) != (variance is None):
        raise ValueError(f"Pass both `mean` and `variance`, or neither. Received: mean={mean!r}, variance={variance!r}")
    inputs = keras.Input((num_features,), name=name)
    x = inputs
    if mean is not None:
        mean = np.asarray(mean, "float32").reshape(-1)
        variance = np.asarray(variance, "float32").reshape(-1)
        if mean.shape != (num_features,) or variance.shape != (num_features,) or (variance < 0).any():
            raise ValueError(
                f"`mean` and `variance` must hold {num_features} values (variance >= 0). "
                f"Received: mean={mean.tolist()!r}, variance={variance.tolist()!r}"
            )
        x = keras.layers.Normalization(
            mean=mean.tolist(), variance=np.maximum(variance, 1e-12).tolist(), name=f"{name}_normalization"
        )(x)
    for i, width in enumerate(units, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"{name}_mlp{i}")(x)
    return Branch(name, inputs, x, "tabular")


def tabular_categorical(num_columns, cardinality, embedding_dim=8, name="categorical"):
    """Categorical ids (one per column, one shared id space) -> ``Embedding`` -> flattened.

    Args:
        num_columns: Ids per example.
        cardinality: Size of the id space (``CategoricalColumn.cardinality``).
        embedding_dim: Embedding width per column.
        name: Input name and layer-name prefix.

    Returns:
        A ``Branch`` (modality ``"tabular"``) with ``num_columns * embedding_dim`` features.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo import branches
    >>> b = branches.tabular_categorical(2, cardinality=10, embedding_dim=4)
    >>> tuple(b.features.shape)
    (None, 8)
    """
    num_columns = check.positive_int("num_columns", num_columns)
    cardinality = check.positive_int("cardinality", cardinality)
    embedding_dim = check.positive_int("embedding_dim", embedding_dim)
    check.identifier("name", name)
    inputs = keras.Input((num_columns,), dtype="int32", name=name)
    x = keras.layers.Embedding(cardinality, embedding_dim, name=f"{name}_embedding")(inputs)
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    return Branch(name, inputs, x, "tabular")
