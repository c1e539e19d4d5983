"""Manifests: a dataset described as rows (one per example) of named fields.

A manifest comes from a CSV file (header row), a JSONL file (one JSON object
per line) or a Python list of dicts. File paths in it are relative to the
manifest file's folder (or ``base_dir``) unless absolute. Manifest files and
the files they name may be local or on a TensorFlow file system (``gs://``;
read through ``tf.io.gfile``). Which column feeds which model input is
declared separately (``mmzoo.data.columns``) and checked against the
manifest before any data is read.

Text that is not valid UTF-8 is kept (with Python's ``surrogateescape``) so
that the bad-row policy can report or skip exactly that row instead of
failing on the whole file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re

from mmzoo import _gfile

_SURROGATES = re.compile("[\udc80-\udcff]")


def is_valid_utf8(value):
    """True unless ``value`` holds bytes that were not valid UTF-8.

    Args:
        value: A field value read by this module (``str``) or anything else.

    Returns:
        ``False`` only for strings carrying undecodable bytes.
    """
    return not (isinstance(value, str) and _SURROGATES.search(value))


def _decode(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value


class Manifest:
    """Rows of fields plus where they came from.

    Args:
        records: A list of dicts, one per example.
        base_dir: Folder that relative file paths are resolved against
            (default: the working directory).
        sources: Optional per-row location strings for error messages (e.g.
            ``"train.csv line 5"``).

    Raises:
        ValueError: If ``records`` is not a list of dicts.

    Example:

    >>> m = Manifest([{"image": "a.png", "label": "cat"}], base_dir="/data")
    >>> m.path(0, "image")
    '/data/a.png'
    """

    def __init__(self, records, base_dir=None, sources=None):
        if isinstance(records, (str, bytes, dict)) or not hasattr(records, "__iter__"):
            raise ValueError(f"`records` must be a list of dicts. Received: {type(records).__name__}")
        records = list(records)
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise ValueError(f"Manifest row {i} must be a dict of fields. Received: {record!r}")
        self.records = [{str(k): _decode(v) for k, v in r.items()} for r in records]
        self.base_dir = _gfile.abspath(base_dir) if base_dir is not None else os.getcwd()
        if sources is not None and len(sources) != len(records):
            raise ValueError(f"`sources` has {len(sources)} entries for {len(records)} records.")
        self.sources = list(sources) if sources is not None else [f"record {i}" for i in range(len(records))]

    def __len__(self):
        return len(self.records)

    @property
    def columns(self):
        """Every field name that appears in some row (sorted)."""
        return sorted({k for r in self.records for k in r})

    def where(self, i):
        """``"row {i} ({source})"``, the row's name in error messages."""
        return f"row {i} ({self.sources[i]})"

    def require_columns(self, names, argument):
        """Raises ``ValueError`` naming any column of ``names`` that no row has.

        Args:
            names: Column names.
            argument: What asked for them (named in the message).
        """
        present = set(self.columns)
        for name in names:
            if name not in present:
                raise ValueError(
                    f"{argument} refers to column {name!r}, which the manifest does not have. "
                    f"Columns: {self.columns}"
                )

    def value(self, i, column):
        """The field ``column`` of row ``i``.

        Raises:
            ValueError: If that row lacks the field (naming row and column).
        """
        record = self.records[i]
        if column not in record or record[column] is None:
            raise ValueError(f"{self.where(i)} has no value for column {column!r}.")
        return record[column]

    def path(self, i, column):
        """The file path in ``column`` of row ``i``, resolved against ``base_dir``."""
        value = self.value(i, column)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{self.where(i)}: column {column!r} must hold a file path. Received: {value!r}")
        return _gfile.resolve(self.base_dir, value)

    def subset(self, positions):
        """A new manifest with only the rows at ``positions`` (sources kept)."""
        return Manifest([self.records[p] for p in positions], self.base_dir, [self.sources[p] for p in positions])


def from_records(records, base_dir=None):
    """A manifest from a Python list of dicts.

    Args:
        records: ``[{"image": "cat.png", "caption": "a cat", "label": "cat"}, ...]``.
        base_dir: Folder for relative paths (default: working directory).

    Returns:
        A ``Manifest``.

    Raises:
        ValueError: If ``records`` is not a list of dicts.

    Example:

    >>> m = from_records([{"text": "hi", "label": 1}])
    >>> len(m)
    1
    """
    return Manifest(records, base_dir=base_dir)


def from_lists(base_dir=None, **columns):
    """A manifest from equal-length Python lists, one per column.

    Args:
        base_dir: Folder for relative paths.
        **columns: ``name=[values...]``.

    Returns:
        A ``Manifest``.

    Raises:
        ValueError: If no column is given or the lists differ in length.

    Example:

    >>> m = from_lists(image=["a.png", "b.png"], label=[0, 1])
    >>> m.columns
    ['image', 'label']
    """
    if not columns:
        raise ValueError("from_lists needs at least one column, e.g. from_lists(image=[...], label=[...]).")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"All column lists must have the same length. Received lengths: {lengths}")
    n = next(iter(lengths.values()))
    return Manifest([{name: columns[name][i] for name in columns} for i in range(n)], base_dir=base_dir)


def from_csv(path, base_dir=None, delimiter=","):
    """Reads a CSV manifest with a header row.

    Args:
        path: The CSV file.
        base_dir: Folder for relative paths (default: the CSV's folder).
        delimiter: Field delimiter.

    Returns:
        A ``Manifest`` whose rows name their CSV line.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it has no header, a repeated column, or a row with
            more fields than the header (naming the line).

    Example:

    >>> import os
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "train.csv")
    ...     with open(path, "w") as f:
    ...         print("path,label", file=f)
    ...         print("images/1F600.png,smileys-emotion", file=f)
    ...     m = from_csv(path)
    >>> m.columns, m.where(0)
    (['label', 'path'], 'row 0 (train.csv line 2)')
    """
    path = os.fspath(path)
    if not _gfile.isfile(path):
        raise FileNotFoundError(f"Manifest file not found: {path}")
    with _gfile.open_text(path, errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path} is empty; a CSV manifest needs a header row naming its columns.")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header) or "" in header:
            raise ValueError(f"{path}: header columns must be non-empty and unique. Received: {header}")
        records, sources = [], []
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) > len(header):
                raise ValueError(f"{path} line {line}: {len(fields)} fields for {len(header)} header columns.")
            records.append({h: v for h, v in zip(header, fields)})
            sources.append(f"{os.path.basename(path)} line {line}")
    return Manifest(records, base_dir or os.path.dirname(_gfile.abspath(path)), sources)


def from_jsonl(path, base_dir=None):
    """Reads a JSONL manifest (one JSON object per line; blank lines ignored).

    Args:
        path: The JSONL file.
        base_dir: Folder for relative paths (default: the file's folder).

    Returns:
        A ``Manifest`` whose rows name their line.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If a line is not a JSON object (naming the line).

    Example:

    >>> import os
    >>> from mmzoo.data import resolve_data_dir
    >>> m = from_jsonl(os.path.join(resolve_data_dir(), "openmoji", "openmoji.jsonl"))
    >>> len(m), m.where(0)
    (2073, 'row 0 (openmoji.jsonl line 1)')
    """
    path = os.fspath(path)
    if not _gfile.isfile(path):
        raise FileNotFoundError(f"Manifest file not found: {path}")
    records, sources = [], []
    with io.BytesIO(_gfile.read_bytes(path)) as f:
        for line_number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8", errors="surrogateescape"))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path} line {line_number} is not valid JSON: {error}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path} line {line_number} must be a JSON object. Received: {record!r}")
            records.append(record)
            sources.append(f"{os.path.basename(path)} line {line_number}")
    return Manifest(records, base_dir or os.path.dirname(_gfile.abspath(path)), sources)


def read_manifest(source, base_dir=None):
    """Reads a manifest from a ``.csv`` / ``.jsonl`` file or a list of dicts.

    Args:
        source: A path ending in ``.csv``, ``.jsonl`` or ``.json`` (JSON
            lines), a list of dicts, or a ``Manifest`` (returned as is).
        base_dir: Folder for relative paths (defaults as in ``from_csv``).

    Returns:
        A ``Manifest``.

    Raises:
        ValueError: For another file type or a malformed file.
        FileNotFoundError: If the file is missing.

    Example:

    >>> import os
    >>> from mmzoo.data import resolve_data_dir
    >>> len(read_manifest(os.path.join(resolve_data_dir(), "openmoji", "openmoji.jsonl")))
    2073
    >>> read_manifest([{"text": "hi", "label": 1}]).columns
    ['label', 'text']
    """
    if isinstance(source, Manifest):
        return source
    if isinstance(source, (str, os.PathLike)):
        extension = os.path.splitext(os.fspath(source))[1].lower()
        if extension == ".csv":
            return from_csv(source, base_dir)
        if extension in (".jsonl", ".json"):
            return from_jsonl(source, base_dir)
        raise ValueError(f"Manifest files must end in .csv or .jsonl. Received: {os.fspath(source)!r}")
    return from_records(source, base_dir)
