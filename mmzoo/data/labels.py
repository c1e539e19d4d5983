"""Label specs beyond single-class labels (``LabelColumn``): multi-label sets and regression targets.

Every label spec offers ``targets(manifest)`` (one target per row, validated,
naming the row on error), ``dtype`` and ``shape`` (per example), which
``make_dataset`` uses to build the label tensor.

* ``LabelColumn`` (``mmzoo.data.columns``): a class name/number -> int32 index.
* ``MultiLabelColumn``: ``"a|b"`` label sets -> float32 multi-hot ``(num_labels,)``.
* ``RegressionLabel``: one or more number columns -> float32 ``(num_targets,)``.

Example::

    tags = MultiLabelColumn("tags", separator="|")          # classes learned from the rows
    price = RegressionLabel("price")
"""

from __future__ import annotations

from mmzoo.data.tabular import parse_number


class MultiLabelColumn:
    """A column of label sets (``"cat|dog"``) -> float32 multi-hot vectors.

    Args:
        column: Manifest column of label sets.
        classes: The label names in index order; ``None`` takes the sorted
            distinct labels of the first manifest it sees (pass them
            explicitly so train and test share one mapping).
        separator: Separates labels inside a field (lists in JSONL work too).

    Raises:
        ValueError: If an argument is invalid.

    Example::

        MultiLabelColumn("tags", classes=["cat", "dog", "bird"])
    """

    task = "multilabel"
    dtype = "float32"

    def __init__(self, column, classes=None, separator="|"):
        if not isinstance(column, str) or not column:
            raise ValueError(f"`column` must be a column name. Received: column={column!r}")
        if not isinstance(separator, str) or not separator:
            raise ValueError(f"`separator` must be a non-empty string. Received: separator={separator!r}")
        self.column = column
        self.separator = separator
        if classes is not None:
            classes = [str(c) for c in classes]
            if not classes or len(set(classes)) != len(classes):
                raise ValueError(f"`classes` must be a non-empty list of distinct names. Received: classes={classes!r}")
        self.classes = classes

    @property
    def shape(self):
        return (len(self.classes),) if self.classes else (None,)

    def label_sets(self, manifest):
        """Each row's set of label names (empty fields give an empty set)."""
        manifest.require_columns([self.column], "MultiLabelColumn")
        out = []
        for i in range(len(manifest)):
            value = manifest.value(i, self.column)
            if isinstance(value, (list, tuple)):
                names = [str(v).strip() for v in value]
            elif value is None:
                names = []
            else:
                names = [v.strip() for v in str(value).split(self.separator)]
            out.append({n for n in names if n})
        return out

    def targets(self, manifest):
        """Multi-hot rows (lists of 0.0/1.0).

        Raises:
            ValueError: If a row holds a label outside ``classes`` (naming the row and label).
        """
        sets = self.label_sets(manifest)
        if self.classes is None:
            self.classes = sorted(set().union(*sets))
            if not self.classes:
                raise ValueError(f"Column {self.column!r} holds no labels.")
        lookup = {c: k for k, c in enumerate(self.classes)}
        out = []
        for i, names in enumerate(sets):
            unknown = sorted(names - set(lookup))
            if unknown:
                raise ValueError(
                    f"{manifest.where(i)}: label(s) {unknown!r} in column {self.column!r} are not among the "
                    f"{len(self.classes)} classes {self.classes[:20]!r}"
                )
            row = [0.0] * len(self.classes)
            for name in names:
                row[lookup[name]] = 1.0
            out.append(row)
        return out


class RegressionLabel:
    """One or more numeric target columns -> float32 ``(num_targets,)``.

    Args:
        columns: A column name or a list of them.

    Raises:
        ValueError: If ``columns`` is not a name or a list of names.

    Example::

        RegressionLabel("price")
    """

    task = "regression"
    dtype = "float32"

    def __init__(self, columns):
        names = [columns] if isinstance(columns, str) else list(columns) if isinstance(columns, (list, tuple)) else []
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"`columns` must be a column name or a list of names. Received: columns={columns!r}")
        self.columns = names
        self.column = names[0]
        self.classes = list(names)

    @property
    def shape(self):
        return (len(self.columns),)

    def targets(self, manifest):
        """Float rows.

        Raises:
            ValueError: If a target is missing, not a number, NaN or infinite (naming the row).
        """
        manifest.require_columns(self.columns, "RegressionLabel")
        out = []
        for i in range(len(manifest)):
            row = []
            for column in self.columns:
                number = parse_number(manifest.value(i, column))
                if number is None:
                    raise ValueError(
                        f"{manifest.where(i)}: target column {column!r} must hold a finite number. "
                        f"Received: {manifest.value(i, column)!r}"
                    )
                row.append(number)
            out.append(row)
        return out
