"""Column specs: the explicit mapping from manifest columns to model inputs.

Each spec names the manifest column(s) it reads, checks them up front, finds
bad rows that can be seen without decoding (missing file, empty or non-UTF-8
text), and decodes one example inside ``tf.data``:

* ``ImageColumn``: an image file -> float32 ``image_shape`` in [0, 1].
* ``AudioColumn``: an audio file -> float32 ``(num_samples,)``.
* ``TextColumn``: one or more text fields -> int32 ids ``(sequence_length,)``.
* ``LabelColumn``: a class name/number -> int32 class index.

Example:

>>> from mmzoo.data import ImageColumn, LabelColumn, TextColumn, VocabTokenizer
>>> from mmzoo.datasets.emoji import GROUPS
>>> tokenizer = VocabTokenizer.fit(["grinning face", "cheerful, happy"], sequence_length=16)
>>> features = {
...     "image": ImageColumn("path", image_shape=(72, 72, 3)),
...     "text": TextColumn(["annotation", "tags"], tokenizer),
... }
>>> label = LabelColumn("group", classes=GROUPS)
"""

from __future__ import annotations

import os
import string

import tensorflow as tf

from mmzoo import _gfile
from mmzoo import _validation as check
from mmzoo.data import audio as audio_lib
from mmzoo.data import image as image_lib
from mmzoo.data.manifest import is_valid_utf8
from mmzoo.data.tokenizers.base import check_tokenizer


def _column_names(argument, value):
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"`{argument}` must be a column name or a list of names. Received: {argument}={value!r}")
    return names


class FileColumn:
    """Base of columns holding one file path per row (missing files are bad rows).

    ``column`` is a column name, or a path template whose ``{field}`` parts
    are filled from the row (``"images/{hexcode}.png"``); relative paths are
    resolved against the manifest's folder.
    """

    def __init__(self, column):
        self.column = _column_names("column", column)[0] if isinstance(column, str) else None
        if self.column is None:
            raise ValueError(f"`column` must be one column name or a path template. Received: column={column!r}")
        try:
            self._fields = [f for _, f, _, _ in string.Formatter().parse(self.column) if f is not None]
        except ValueError as error:
            raise ValueError(f"`column` is not a valid path template ({error}). Received: column={column!r}") from None
        if any(not f for f in self._fields):
            raise ValueError(
                f"Path templates name their fields, e.g. 'images/{{hexcode}}.png'. Received: column={column!r}"
            )

    @property
    def is_template(self):
        """Whether ``column`` is a path template rather than a column name."""
        return bool(self._fields)

    @property
    def columns(self):
        return list(self._fields) if self._fields else [self.column]

    def python_value(self, manifest, i):
        """The resolved file path of row ``i``."""
        if not self._fields:
            return manifest.path(i, self.column)
        relative = self.column.format_map({f: manifest.value(i, f) for f in self._fields})
        return _gfile.resolve(manifest.base_dir, relative)

    def row_problem(self, manifest, i):
        """A message if row ``i``'s file is missing, else ``None``."""
        path = self.python_value(manifest, i)
        if not _gfile.isfile(path):
            return f"file not found: {path} (column {self.column!r})"
        return None

    def prepare(self, manifest):
        """Checks the column exists; subclasses add format checks."""
        manifest.require_columns(self.columns, type(self).__name__)

    def decode(self, path):
        return self.decode_bytes(tf.io.read_file(path))


class ImageColumn(FileColumn):
    """An image file column (PNG, JPEG, BMP, GIF).

    Args:
        column: Manifest column of image paths.
        image_shape: ``(height, width, channels)`` the model expects.
        fit: ``"resize"`` (stretch) or ``"pad"`` (keep aspect, pad).
        pad_value: Padding value for ``fit="pad"`` (1.0 = white).
        max_pixels: The most pixels (``height * width``, read from the
            file's header) an image may have; larger files are refused
            before they are decoded (a decompression bomb costs nothing).
            Default 4096 x 4096. Exports keep the column's limit.

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> column = ImageColumn("path", image_shape=(72, 72, 3))
    >>> column.column, column.image_shape
    ('path', (72, 72, 3))
    """

    def __init__(self, column, image_shape, fit="resize", pad_value=1.0, max_pixels=image_lib.DEFAULT_MAX_PIXELS):
        super().__init__(column)
        self.image_shape = image_lib.check_image_shape(image_shape)
        self.fit = check.choice("fit", fit, set(image_lib.FIT_MODES))
        self.pad_value = float(pad_value)
        self.max_pixels = check.positive_int("max_pixels", max_pixels)

    def decode_bytes(self, contents, where=None):
        """Decodes one file's bytes; ``where`` (default: the column) is named in errors."""
        return image_lib.decode_image(contents, self.image_shape, fit=self.fit, pad_value=self.pad_value,
                                      max_pixels=self.max_pixels,
                                      name=f"column `{self.column}`" if where is None else where)

    def check_batch(self, contents, where, skip=None):
        """Checks a batch's image sizes at once (serving): ``(assertion ops, None)``.

        Decode each example with ``decode_checked`` afterwards.

        Args:
            contents: ``tf.string`` ``(n,)``.
            where: The error prefix, followed by the first bad example's index.
            skip: Optional bool ``(n,)``: examples not checked (absent).
        """
        return image_lib.image_size_checks(contents, self.max_pixels, where, skip=skip), None

    def decode_checked(self, contents, where=None):
        """Decodes one file's bytes whose size ``check_batch`` has checked."""
        return image_lib.decode_checked_image(contents, self.image_shape, self.fit, self.pad_value)


class AudioColumn(FileColumn):
    """An audio file column (WAV everywhere; FLAC/MP3/OGG with working tensorflow-io).

    Every file of the column must have the same extension; it is checked up
    front, and a format this environment cannot decode raises before any
    data is read.

    Args:
        column: Manifest column of audio paths.
        sampling_rate: Sample rate the model expects (files are resampled).
        num_samples: Waveform length (crop or zero-pad).
        crop: Which part of a longer clip to keep: ``"start"``, ``"center"``
            or ``"end"``.
        source_rate: Sample rate of compressed files (WAV reports its own).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> column = AudioColumn("wav", sampling_rate=8000, num_samples=4000, crop="center")
    >>> column.column, column.num_samples
    ('wav', 4000)
    """

    def __init__(self, column, sampling_rate, num_samples, crop="start", source_rate=None):
        super().__init__(column)
        self.sampling_rate = check.positive_int("sampling_rate", sampling_rate)
        self.num_samples = check.positive_int("num_samples", num_samples)
        self.crop = check.choice("crop", crop, set(audio_lib.CROP_MODES))
        self.source_rate = source_rate
        self._decode = None

    def prepare(self, manifest):
        """Checks the column and picks the decoder from the files' extension.

        Raises:
            ValueError: If files of several types are mixed (naming a row).
            UnsupportedAudioFormatError: If the type cannot be decoded here.
        """
        super().prepare(manifest)
        extension, first = None, None
        for i in range(len(manifest)):
            ext = os.path.splitext(self.python_value(manifest, i))[1].lower()
            if extension is None:
                extension, first = ext, i
            elif ext != extension:
                raise ValueError(
                    f"AudioColumn {self.column!r}: {manifest.where(i)} is a {ext!r} file but "
                    f"{manifest.where(first)} is {extension!r}; use one audio type per column."
                )
        if extension is not None and extension not in audio_lib.WAV_EXTENSIONS + audio_lib.COMPRESSED_EXTENSIONS:
            raise audio_lib.UnsupportedAudioFormatError(
                f"AudioColumn {self.column!r}: {manifest.where(first)} has unsupported type {extension!r}; "
                f"supported: {list(audio_lib.WAV_EXTENSIONS + audio_lib.COMPRESSED_EXTENSIONS)}."
            )
        self._decode = audio_lib.audio_decoder(
            extension or ".wav", self.sampling_rate, self.num_samples, self.crop, self.source_rate
        )

    def decode_bytes(self, contents, where=None):
        """Decodes one file's bytes; ``where`` (default: the column) is named in errors."""
        decode = self._decode or audio_lib.audio_decoder(".wav", self.sampling_rate, self.num_samples, self.crop)
        return decode(contents, name=f"column `{self.column}`" if where is None else where)

    def decode_batch(self, contents, where, skip=None):
        """Decodes a batch of WAV bytes (serving): headers checked at once, then the windows; or ``None``.

        ``None`` for a column of compressed audio (serving then decodes it
        example by example with ``decode_bytes``).

        Args:
            contents: ``tf.string`` ``(n,)``.
            where: The error prefix, followed by the first bad example's
                index (e.g. ``"serving input `audio`, example"``).
            skip: Optional bool ``(n,)``: absent examples (zeros).

        Returns:
            float32 ``(n, num_samples)``, or ``None``.
        """
        if self._decode is not None:
            return None
        info = audio_lib.wav_info(contents)
        with tf.control_dependencies(audio_lib.wav_checks(contents, info, where, skip=skip)):
            start, count = self._window(info)
            return audio_lib.decode_checked_batch(
                contents, info, start, count, self.sampling_rate, self.num_samples, self._finish_batch,
                lambda b, file_info, index: self.decode_checked(b, file_info, where=(where, index)), where, skip)

    def _window(self, info):
        """``(start, count)`` of the frames each file's output needs."""
        return audio_lib.crop_window(info, self.sampling_rate, self.num_samples, self.crop)

    def _finish_batch(self, windows, count):
        """Windows decoded at the model's rate -> ``(n, num_samples)``: already cropped, zero-padded here."""
        windows = windows[:, : self.num_samples]
        return tf.pad(windows, [[0, 0], [0, self.num_samples - tf.shape(windows)[1]]])

    def decode_checked(self, contents, info, where=None):
        """Decodes one file's bytes whose header has been checked (``info``: its ``wav_info``)."""
        return audio_lib.decode_checked_wav(contents, info, self.sampling_rate, self.num_samples, self.crop,
                                            name=f"column `{self.column}`" if where is None else where)


DEFAULT_MAX_TEXT_BYTES = 100_000


class TextColumn:
    """One or more text fields, joined with ``separator`` and tokenized.

    Args:
        columns: A column name or a list of them (joined in order).
        tokenizer: A mmzoo tokenizer: ``VocabTokenizer``,
            ``WordPieceTokenizer``, ``KerasHubTokenizer`` (or a
            ``mmzoo.data.tokenizers.Tokenizer`` of your own), the kinds that
            ``mmzoo.export`` can save next to the model.
        separator: Joins the fields.
        max_bytes: The longest text accepted, in UTF-8 bytes (default
            100,000: a tokenizer's cost grows with the text, and no model
            reads more than its ``sequence_length`` tokens). Longer rows are
            bad rows in training; ``serving_raw`` refuses them the same way.
        allow_empty: Accept empty text (all padding ids; a masked pooling
            reads it as "nothing here"). Default False: an empty text is a bad
            row. ``mmzoo.fit`` sets it for each of several text columns, where
            an empty field is information (an emoji without tags).

    Raises:
        ValueError: If an argument is invalid; for a ``tokenizer`` that is
            not a mmzoo tokenizer (a TF-Hub text preprocessor, a bare KerasHub
            preprocessor, a plain function), naming the accepted kinds.

    Example:

    >>> from mmzoo.data import VocabTokenizer
    >>> tokenizer = VocabTokenizer.fit(["grinning face", "cheerful, happy"], sequence_length=16)
    >>> TextColumn(["annotation", "tags"], tokenizer).columns
    ['annotation', 'tags']
    """

    def __init__(self, columns, tokenizer, separator=" ", max_bytes=None, allow_empty=False):
        self.columns = _column_names("columns", columns)
        if not isinstance(allow_empty, bool):
            raise ValueError(f"`allow_empty` must be True or False. Received: allow_empty={allow_empty!r}")
        self.allow_empty = allow_empty
        self.tokenizer = check_tokenizer("tokenizer", tokenizer)
        self.separator = separator
        self.max_bytes = DEFAULT_MAX_TEXT_BYTES if max_bytes is None else check.positive_int("max_bytes", max_bytes)

    def prepare(self, manifest):
        """Checks the columns exist."""
        manifest.require_columns(self.columns, "TextColumn")

    def python_value(self, manifest, i):
        """The joined text of row ``i``."""
        values = []
        for column in self.columns:
            value = manifest.value(i, column)
            if not isinstance(value, str):
                raise ValueError(f"{manifest.where(i)}: column {column!r} must hold text. Received: {value!r}")
            values.append(value)
        return self.separator.join(values)

    def row_problem(self, manifest, i):
        """A message if a field is not valid UTF-8, or the text is empty (unless ``allow_empty``) or too long."""
        for column in self.columns:
            if not is_valid_utf8(manifest.value(i, column)):
                return f"text in column {column!r} is not valid UTF-8"
        if not self.allow_empty and not "".join(manifest.value(i, c) for c in self.columns).strip():
            return f"empty text in column(s) {self.columns}"
        size = len(self.python_value(manifest, i).encode("utf-8", "surrogateescape"))
        if size > self.max_bytes:
            return f"text in column(s) {self.columns} is {size:,} bytes long (max_bytes={self.max_bytes:,})"
        return None

    def decode(self, text):
        ids = self.tokenizer(text)
        return tf.ensure_shape(tf.cast(ids, tf.int32), (self.tokenizer.sequence_length,))


class LabelColumn:
    """The class of each row, mapped to an int32 index.

    Args:
        column: Manifest column of labels.
        classes: The class names/values in index order. ``None`` takes the
            sorted distinct values of the manifest (pass them explicitly so
            train and test share one mapping).

    Raises:
        ValueError: If an argument is invalid.

    Example:

    >>> from mmzoo.data import from_records
    >>> label = LabelColumn("group", classes=["animals-nature", "flags"])
    >>> label.indices(from_records([{"group": "flags"}, {"group": "animals-nature"}]))
    [1, 0]
    """

    def __init__(self, column, classes=None):
        if not isinstance(column, str) or not column:
            raise ValueError(f"`column` must be a column name. Received: column={column!r}")
        self.column = column
        if classes is not None:
            classes = list(classes)
            if not classes or len(set(classes)) != len(classes):
                raise ValueError(
                    f"`classes` must be a non-empty list of distinct values. Received: classes={classes!r}"
                )
        self.classes = classes

    task = "class"
    dtype = "int32"
    shape = ()

    def targets(self, manifest):
        """The label tensor's rows: class indices (the label-spec protocol of ``make_dataset``)."""
        return self.indices(manifest)

    def indices(self, manifest):
        """Class indices of every row.

        Returns:
            A list of ints.

        Raises:
            ValueError: If the column is missing, or a row's label is not in
                ``classes`` (naming the row and the value).
        """
        manifest.require_columns([self.column], "LabelColumn")
        values = [manifest.value(i, self.column) for i in range(len(manifest))]
        if self.classes is None:
            self.classes = sorted(set(values), key=lambda v: (str(type(v)), v))
        lookup = {c: k for k, c in enumerate(self.classes)}
        out = []
        for i, value in enumerate(values):
            if value not in lookup:
                raise ValueError(
                    f"{manifest.where(i)}: label {value!r} in column {self.column!r} is not one of the "
                    f"{len(self.classes)} classes {self.classes[:20]!r}"
                )
            out.append(lookup[value])
        return out
