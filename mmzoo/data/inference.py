"""Infer what each manifest column holds: image/audio files, free text, numbers, categories, the label's task.

Used by ``mmzoo.fit(columns="auto")``; every decision is returned with its
reason so the caller can print what it decided.

Rules, per column (looking at the non-empty values):

* file paths ending in an image extension -> ``"image"``; in an audio
  extension -> ``"audio"``;
* every value a finite number -> ``"numeric"``;
* strings: identifiers (every value distinct and a single token, e.g. a
  hexcode) and columns named ``id`` / ``*_id`` -> ``"ignore"``; few distinct,
  short values -> ``"categorical"``; otherwise ``"text"``.

Label: ``"|"``-separated sets -> ``"multilabel"``; numbers with more than 20
distinct values or any non-integer -> ``"regression"``; otherwise a class
label (``"binary"`` with 2 classes, else ``"multiclass"``).
"""

from __future__ import annotations

import os

from mmzoo.data.tabular import parse_number

KINDS = ("image", "audio", "text", "numeric", "categorical", "ignore")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")
MAX_CLASSES_FOR_NUMBERS = 20
_SAMPLE = 500


def _values(manifest, column):
    values = []
    for i in range(0, len(manifest), max(1, len(manifest) // _SAMPLE)):  # spread over the file
        value = manifest.value(i, column) if column in manifest.records[i] else None
        if value is not None and not (isinstance(value, str) and not value.strip()):
            values.append(value)
    return values


def infer_kind(manifest, column):
    """``(kind, reason)`` for one feature column.

    Args:
        manifest: A ``mmzoo.data.Manifest``.
        column: The column name.

    Returns:
        A kind from ``KINDS`` and a short reason.

    Example:

    >>> from mmzoo.data import from_records
    >>> infer_kind(from_records([{"x": "a.png"}, {"x": "b.png"}]), "x")
    ('image', 'file paths with image extensions (.png)')
    """
    values = _values(manifest, column)
    if not values:
        return "ignore", "no values"
    lowered = column.lower()
    if lowered == "id" or lowered.endswith("_id"):
        return "ignore", "an identifier column (by its name)"
    if all(isinstance(v, str) for v in values):
        extensions = {os.path.splitext(v.strip())[1].lower() for v in values}
        if extensions and extensions <= set(IMAGE_EXTENSIONS):
            return "image", f"file paths with image extensions ({', '.join(sorted(extensions))})"
        if extensions and extensions <= set(AUDIO_EXTENSIONS):
            return "audio", f"file paths with audio extensions ({', '.join(sorted(extensions))})"
    if all(parse_number(v) is not None for v in values):
        return "numeric", "every value is a number"
    if any(isinstance(v, (list, tuple, dict)) for v in values):
        return "ignore", "holds lists or objects"
    strings = [str(v).strip() for v in values]
    distinct = set(strings)
    words = sum(len(s.split()) for s in strings) / len(strings)
    if len(distinct) == len(strings) and len(strings) > 20 and words <= 1.0:
        return "ignore", "an identifier (every value distinct, one token each)"
    if len(distinct) <= max(2, min(50, len(strings) // 5)) and words <= 3:
        return "categorical", f"{len(distinct)} distinct short values"
    return "text", f"free text ({words:.1f} words on average)"


def infer_label_task(manifest, column):
    """``(task, reason)`` of a label column: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.

    Raises:
        ValueError: If the column is missing or empty, or holds a single class.

    Example:

    >>> from mmzoo.data import from_records
    >>> infer_label_task(from_records([{"y": "cat"}, {"y": "dog"}, {"y": "cat"}]), "y")
    ('binary', '2 classes')
    """
    manifest.require_columns([column], "label")
    values = [manifest.value(i, column) for i in range(len(manifest))]
    present = [v for v in values if v is not None and not (isinstance(v, str) and not v.strip())]
    if not present:
        raise ValueError(f"label column {column!r} is empty")
    if any(isinstance(v, (list, tuple)) or (isinstance(v, str) and "|" in v) for v in present):
        return "multilabel", "label sets ('|'-separated)"
    numbers = [parse_number(v) for v in present]
    if all(n is not None for n in numbers):
        distinct = set(numbers)
        if any(n != int(n) for n in distinct) or len(distinct) > MAX_CLASSES_FOR_NUMBERS:
            return "regression", f"numbers ({len(distinct)} distinct values)"
    distinct = {str(v) for v in present}
    if len(distinct) < 2:
        raise ValueError(f"label column {column!r} has a single class ({next(iter(distinct))!r}): nothing to learn")
    return ("binary" if len(distinct) == 2 else "multiclass"), f"{len(distinct)} classes"
