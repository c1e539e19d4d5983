"""Tabular column specs: numeric and categorical manifest columns as model inputs.

Both follow the column-spec contract of ``mmzoo.data.columns`` (``prepare``,
``row_problem``, ``python_value``, ``decode``): a row's values travel through
``tf.data`` as one string (numbers joined with ``","``, categories with the
unit separator ``"\\x1f"``) and are decoded inside the pipeline, so a served
model parses raw strings with the same ops as training.

* ``NumericColumn``: one or more number columns -> float32 ``(num_columns,)``.
  Missing, non-numeric, NaN and infinite values are bad rows (named, never
  imputed silently). Normalisation happens in the model
  (``branches.tabular_numeric`` adapts a ``keras.layers.Normalization`` on the
  training values), so the export carries it.
* ``CategoricalColumn``: one or more category columns -> int32
  ``(num_columns,)`` ids in one shared id space: column ``k``'s values map to
  ``offsets[k] + 1 + index`` and its unknown values to ``offsets[k]`` (so every
  column has its own out-of-vocabulary id). The vocabularies are learned on the
  training rows (``fit``) and saved with the export.

Example::

    numeric = NumericColumn(["age", "income"])
    categorical = CategoricalColumn.fit(["city", "plan"], train_manifest)
    ds = make_dataset(train_manifest, {"numeric": numeric, "categorical": categorical}, label=...)
"""

from __future__ import annotations

import math
import numbers

import tensorflow as tf

from mmzoo.data.manifest import is_valid_utf8

NUMBER_SEPARATOR = ","
CATEGORY_SEPARATOR = "\x1f"


def _names(argument, value):
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(
            f"`{argument}` must be a column name or a list of distinct names. Received: {argument}={value!r}"
        )
    return names


def parse_number(value):
    """``value`` as a finite float, or ``None`` when it is missing, not a number, NaN or infinite."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


class NumericColumn:
    """Numeric manifest columns -> a float32 vector per example.

    Args:
        columns: A column name or a list of them (the vector's order).

    Raises:
        ValueError: If ``columns`` is not a name or a list of distinct names.

    Example::

        NumericColumn(["age", "income"])   # -> float32 (2,)
    """

    kind = "numeric"

    def __init__(self, columns):
        self.columns = _names("columns", columns)

    @property
    def width(self):
        """Values per example."""
        return len(self.columns)

    def prepare(self, manifest):
        """Checks the columns exist."""
        manifest.require_columns(self.columns, "NumericColumn")

    def numbers(self, manifest, i):
        """Row ``i``'s values as floats (``None`` for a missing or invalid value)."""
        return [parse_number(manifest.value(i, c)) for c in self.columns]

    def row_problem(self, manifest, i):
        """A message naming the column if a value is missing, not a number, NaN or infinite."""
        for column, number in zip(self.columns, self.numbers(manifest, i)):
            if number is None:
                return f"column {column!r} must hold a finite number. Received: {manifest.value(i, column)!r}"
        return None

    def python_value(self, manifest, i):
        """Row ``i``'s numbers joined into one string (how they travel through ``tf.data``)."""
        return NUMBER_SEPARATOR.join(repr(n) for n in self.numbers(manifest, i))

    def values(self, manifest):
        """A list of float rows (for adapting a normalisation); rows with problems are left out."""
        rows = [self.numbers(manifest, i) for i in range(len(manifest))]
        return [row for row in rows if None not in row]

    def decode(self, text):
        """One joined string (or a batch of them) -> float32 ``(width,)`` (or ``(batch, width)``)."""
        parts = tf.strings.split(text, NUMBER_SEPARATOR)
        numbers = tf.strings.to_number(parts, tf.float32)
        if isinstance(numbers, tf.RaggedTensor):
            numbers = numbers.to_tensor(shape=[None, self.width])
        checked = tf.debugging.assert_all_finite(numbers, "numeric input: NaN or infinite value")
        return tf.ensure_shape(checked, numbers.shape[:-1].concatenate([self.width]))

    def get_config(self):
        """JSON-able description (saved in an export's metadata)."""
        return {"kind": self.kind, "columns": list(self.columns)}


class CategoricalColumn(tf.Module):
    """Categorical manifest columns -> int32 ids in one shared id space.

    Args:
        columns: A column name or a list of them.
        vocabularies: One list of category strings per column (the training
            values; ``fit`` learns them).
        name: Optional module name.

    Raises:
        ValueError: If ``vocabularies`` does not have one non-empty list of
            distinct strings per column.

    Example::

        city = CategoricalColumn(["city"], [["Oslo", "Lima", "Pune"]])
        city.cardinality   # 4: three cities and the unknown id
    """

    kind = "categorical"

    def __init__(self, columns, vocabularies, name=None):
        super().__init__(name=name or "categorical_column")
        self.columns = _names("columns", columns)
        vocabularies = [list(v) for v in vocabularies] if isinstance(vocabularies, (list, tuple)) else None
        if vocabularies is None or len(vocabularies) != len(self.columns):
            raise ValueError(
                f"`vocabularies` must hold one list per column ({len(self.columns)}). Received: {vocabularies!r}"
            )
        for column, vocabulary in zip(self.columns, vocabularies):
            if not vocabulary or not all(isinstance(v, str) for v in vocabulary) or len(set(vocabulary)) != len(
                vocabulary
            ):
                raise ValueError(
                    f"The vocabulary of column {column!r} must be a non-empty list of distinct strings. "
                    f"Received: {vocabulary[:10]!r}"
                )
        self.vocabularies = vocabularies
        self.offsets = []
        keys, ids, offset = [], [], 0
        for vocabulary in vocabularies:
            self.offsets.append(offset)
            keys += [f"{len(self.offsets) - 1}{CATEGORY_SEPARATOR}{v}" for v in vocabulary]
            ids += list(range(offset + 1, offset + 1 + len(vocabulary)))
            offset += len(vocabulary) + 1
        self.cardinality = offset
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(ids, tf.int64)), default_value=-1
        )
        self._offsets = tf.constant(self.offsets, tf.int64)

    @property
    def width(self):
        """Ids per example (one per column)."""
        return len(self.columns)

    @classmethod
    def fit(cls, columns, manifest, max_categories=1000):
        """Learns each column's vocabulary from training rows (most frequent first).

        Args:
            columns: A column name or a list of them.
            manifest: The training ``Manifest``.
            max_categories: Most categories kept per column; rarer ones map to
                the column's unknown id (the count left out is logged).

        Returns:
            A ``CategoricalColumn``.
        """
        import collections  # noqa: PLC0415
        import logging  # noqa: PLC0415

        names = _names("columns", columns)
        manifest.require_columns(names, "CategoricalColumn")
        vocabularies = []
        for column in names:
            counts = collections.Counter(
                str(manifest.value(i, column)) for i in range(len(manifest)) if manifest.value(i, column) is not None
            )
            ranked = sorted(counts, key=lambda v: (-counts[v], v))
            if len(ranked) > max_categories:
                logging.getLogger("mmzoo").warning(
                    "mmzoo.data: column %r has %d categories; the %d rarest (%d rows) map to its unknown id.",
                    column, len(ranked), len(ranked) - max_categories,
                    sum(counts[v] for v in ranked[max_categories:]),
                )
            vocabularies.append(ranked[:max_categories] or [""])
        return cls(names, vocabularies)

    def prepare(self, manifest):
        """Checks the columns exist."""
        manifest.require_columns(self.columns, "CategoricalColumn")

    def row_problem(self, manifest, i):
        """A message if a value is missing or not valid UTF-8 (unknown values are fine: they get the unknown id)."""
        for column in self.columns:
            value = manifest.value(i, column)
            if value is None or (isinstance(value, str) and not value.strip()):
                return f"column {column!r} is empty"
            if not is_valid_utf8(value):
                return f"column {column!r} is not valid UTF-8"
        return None

    def python_value(self, manifest, i):
        """Row ``i``'s categories joined into one string."""
        return CATEGORY_SEPARATOR.join(str(manifest.value(i, c)) for c in self.columns)

    def decode(self, text):
        """One joined string (or a batch) -> int32 ``(width,)`` (or ``(batch, width)``) ids."""
        parts = tf.strings.split(text, CATEGORY_SEPARATOR)
        if isinstance(parts, tf.RaggedTensor):
            parts = parts.to_tensor(default_value="", shape=[None, self.width])
        else:
            parts = tf.ensure_shape(parts, [self.width])
        prefixes = tf.broadcast_to(tf.strings.as_string(tf.range(self.width)), tf.shape(parts))
        keys = tf.strings.join([prefixes, parts], separator=CATEGORY_SEPARATOR)
        ids = self._table.lookup(keys)
        ids = tf.where(ids < 0, tf.broadcast_to(self._offsets, tf.shape(ids)), ids)
        return tf.cast(ids, tf.int32)

    def get_config(self):
        """JSON-able description, vocabularies included (saved in an export's metadata)."""
        return {"kind": self.kind, "columns": list(self.columns), "vocabularies": self.vocabularies}
