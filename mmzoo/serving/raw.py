"""Raw-input decoding inside a serving function.

A serving signature receives a batch of raw values per input: encoded image
bytes, WAV bytes or UTF-8 text (all ``tf.string``, shape ``(batch,)``). Each
input is decoded with the ``mmzoo.data`` column spec that feeds training
(``ImageColumn.decode_bytes``, ``AudioColumn.decode_bytes``, the
``TextColumn`` tokenizer), so serving and training share one code path.

Checks run first, in the graph, and fail with a
``tf.errors.InvalidArgumentError`` whose message names the input: an empty
batch, inputs of different batch sizes, and bytes whose header is not the
expected format (e.g. a PNG where WAV is expected).

Absent inputs. For a model trained to handle a missing modality (one with a
``mmzoo.balance.ModalityDropout`` layer: ``compose(modality_dropout=...)``),
the inputs it gates are *optional*: an empty string for an example decodes to
the all-zeros input that the model reads as "this modality is absent"
(a black image, a silent waveform, all-padding token ids, zeros for tabular
columns). For other inputs an empty string is an error as before.
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo.data import AudioColumn, CategoricalColumn, ImageColumn, NumericColumn, TextColumn

# Leading bytes of the formats mmzoo.data decodes.
IMAGE_MAGIC = {"PNG": b"\x89PNG", "JPEG": b"\xff\xd8\xff", "GIF": b"GIF8", "BMP": b"BM"}
WAV_MAGIC = (b"RIFF", b"WAVE")


def raw_kind(column):
    """``"image"``, ``"audio"`` or ``"text"`` for a column spec.

    Raises:
        ValueError: If ``column`` is not an ``ImageColumn``, ``AudioColumn`` or ``TextColumn``.
    """
    for kind, cls in (("image", ImageColumn), ("audio", AudioColumn), ("text", TextColumn),
                      ("numeric", NumericColumn), ("categorical", CategoricalColumn)):
        if isinstance(column, cls):
            return kind
    raise ValueError(
        "Preprocessing entries must be mmzoo.data ImageColumn, AudioColumn, TextColumn, NumericColumn or "
        f"CategoricalColumn specs. Received: {column!r}"
    )


def decoded_shape(column):
    """The per-example shape a column decodes to."""
    kind = raw_kind(column)
    if kind == "image":
        return tuple(column.image_shape)
    if kind == "audio":
        return (column.num_samples,)
    if kind in ("numeric", "categorical"):
        return (column.width,)
    return (column.tokenizer.sequence_length,)


def check_columns(columns, input_specs):
    """Checks that ``columns`` decodes to exactly the model's inputs.

    Args:
        columns: Dict of column specs keyed by input name.
        input_specs: Dict of ``tf.TensorSpec`` (batch dim ``None``) keyed by input name.

    Raises:
        ValueError: If an input has no column, a column names no input, or a
            column's decoded shape/dtype differs from the input's (naming it).
    """
    if not isinstance(columns, dict):
        raise ValueError(f"`preprocessing` must be a dict of mmzoo.data column specs. Received: {columns!r}")
    missing = sorted(set(input_specs) - set(columns))
    extra = sorted(set(columns) - set(input_specs))
    if missing or extra:
        raise ValueError(
            f"`preprocessing` must have one entry per model input {sorted(input_specs)}. "
            f"Missing: {missing}; not model inputs: {extra}"
        )
    for name, column in columns.items():
        kind = raw_kind(column)
        spec = input_specs[name]
        want_dtype = tf.int32 if kind in ("text", "categorical") else tf.float32
        if tuple(spec.shape[1:]) != decoded_shape(column) or not spec.dtype.is_compatible_with(want_dtype):
            raise ValueError(
                f"`preprocessing[{name!r}]` decodes to {want_dtype.name} {decoded_shape(column)} but the model "
                f"input {name!r} is {spec.dtype.name} {tuple(spec.shape[1:])}."
            )


def column_config(column):
    """A JSON-able description of a column spec (for the export's metadata)."""
    kind = raw_kind(column)
    if kind == "image":
        return {"kind": "image", "encoding": "PNG, JPEG, BMP or GIF bytes", "image_shape": list(column.image_shape),
                "fit": column.fit, "pad_value": column.pad_value, "max_pixels": column.max_pixels}
    if kind == "audio":
        config = {"kind": "audio", "encoding": "WAV bytes (16-bit PCM, any rate, mono or multi-channel)",
                  "sampling_rate": column.sampling_rate, "num_samples": column.num_samples, "crop": column.crop}
        return {**config, **column.serving_config()} if hasattr(column, "serving_config") else config
    if kind == "numeric":
        return {"kind": "numeric", "encoding": "the numbers of columns " + ", ".join(column.columns)
                + " as one string joined with ','", "columns": list(column.columns)}
    if kind == "categorical":
        return {"kind": "categorical", "encoding": "the categories of columns " + ", ".join(column.columns)
                + " as one string joined with '\\x1f'", "columns": list(column.columns),
                "vocabularies": column.vocabularies}
    return {"kind": "text", "encoding": "UTF-8 string", "tokenizer": column.tokenizer.get_config(),
            "vocabulary_size": column.tokenizer.vocabulary_size, "max_bytes": column.max_bytes,
            "allow_empty": bool(getattr(column, "allow_empty", False))}


def _has_prefix(strings, prefix, offset=0):
    # Padded first: substr fails on strings shorter than ``offset`` (an empty or truncated request).
    padded = tf.strings.join([strings, b"\0" * (offset + len(prefix))])
    return tf.equal(tf.strings.substr(padded, offset, len(prefix)), prefix)


def _check_text(name, column, strings, optional):
    """Serving refuses what training refuses: empty, invalid UTF-8 or over-long text (``TextColumn.max_bytes``)."""
    valid = tf.equal(tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace"), strings)
    present = tf.greater(tf.strings.length(tf.strings.strip(strings)), 0)
    if getattr(column, "allow_empty", False):  # an empty field is a value (trained so), not a bad request
        present = tf.ones_like(present)
    elif optional:
        present = tf.logical_or(present, tf.equal(strings, ""))
    short = tf.strings.length(strings) <= column.max_bytes
    absent = " (an empty string is absent)" if optional else ""
    return [
        tf.debugging.Assert(tf.reduce_all(ok), [f"serving input `{name}`: {reason}; bad example indices:",
                                                tf.cast(tf.where(tf.logical_not(ok))[:, 0], tf.int32)],
                            name=f"check_text_{label}")
        for ok, reason, label in ((valid, "text is not valid UTF-8", "utf8"),
                                  (present, f"empty or whitespace-only text{absent}", "empty"),
                                  (short, f"text longer than max_bytes={column.max_bytes} bytes", "length"))
    ]


def _check_header(name, kind, strings, optional=False, column=None):
    if kind == "image":
        ok = tf.zeros_like(strings, dtype=tf.bool)
        for magic in IMAGE_MAGIC.values():
            ok = tf.logical_or(ok, _has_prefix(strings, magic))
        expected = "encoded image bytes (PNG, JPEG, GIF or BMP)"
    elif kind == "audio":
        ok = tf.logical_and(_has_prefix(strings, WAV_MAGIC[0]), _has_prefix(strings, WAV_MAGIC[1], 8))
        expected = "WAV bytes (RIFF/WAVE header)"
    elif kind == "text":
        return _check_text(name, column, strings, optional) if column is not None else []
    else:
        return []
    if optional:
        ok = tf.logical_or(ok, tf.equal(strings, ""))
        expected += " or an empty string (absent)"
    bad = tf.cast(tf.where(tf.logical_not(ok)), tf.int32)
    return [
        tf.debugging.Assert(
            tf.reduce_all(ok),
            [f"serving input `{name}`: expected {expected}; bad example indices:", bad[:, 0]],
            name="check_header",
        )
    ]


def _checked_strings(name, kind, strings, optional=False, column=None):
    """``strings`` behind the empty-batch and header checks of input ``name``."""
    checks = [
        tf.debugging.assert_positive(
            tf.size(strings), message=f"serving input `{name}`: empty batch (expected at least one example)"
        )
    ]
    checks += _check_header(name, kind, strings, optional, column)
    with tf.control_dependencies(checks):
        return tf.identity(strings)


def decode(name, column, strings):
    """Decodes one raw input batch with its column spec.

    Args:
        name: The input name (used in error messages and op names).
        column: An ``ImageColumn``, ``AudioColumn`` or ``TextColumn``.
        strings: ``tf.string`` ``(batch,)``.

    Returns:
        The decoded batch: float32 images/waveforms or int32 token ids.

    Raises:
        tf.errors.InvalidArgumentError: At run time, for an empty batch or
            bytes of the wrong format; the message names ``name``.

    Example:

    >>> import os
    >>> import tensorflow as tf
    >>> from mmzoo.data import ImageColumn, resolve_data_dir
    >>> png_bytes = tf.io.read_file(os.path.join(resolve_data_dir(), "openmoji", "images", "1F600.png"))
    >>> decode("image", ImageColumn("image", (28, 28, 1)), tf.stack([png_bytes])).shape
    TensorShape([1, 28, 28, 1])
    """
    return decode_all({name: column}, {name: strings})[name]


def _zero_where_absent(decoded, strings):
    """Sets the examples whose raw string is empty to all zeros."""
    absent = tf.equal(strings, "")
    shape = tf.concat([tf.shape(absent), tf.ones([tf.rank(decoded) - 1], tf.int32)], axis=0)
    return tf.where(tf.reshape(absent, shape), tf.zeros_like(decoded), decoded)


def decode_all(columns, inputs, parallel_iterations=32, optional=()):
    """Decodes a call's raw inputs, each with its column spec.

    Text is tokenized as a batch; encoded images and WAVs are decoded example
    by example in a single ``tf.map_fn`` over all of them (one loop per call
    rather than one per input: the loop's per-iteration cost dominates for
    small inputs).

    Args:
        columns: Dict of ``ImageColumn``/``AudioColumn``/``TextColumn`` keyed by input name.
        inputs: Dict of ``tf.string`` ``(batch,)`` keyed by the same names.
        parallel_iterations: Examples decoded concurrently.
        optional: Names of inputs that may be absent: an empty string
            decodes to all zeros (see the module docstring).

    Returns:
        Dict of decoded batches (float32 images/waveforms, int32 token ids).

    Raises:
        tf.errors.InvalidArgumentError: At run time, for an empty batch or
            bytes of the wrong format; the message names the input.

    Example:

    >>> import os
    >>> import tensorflow as tf
    >>> from mmzoo.data import AudioColumn, ImageColumn, resolve_data_dir
    >>> root = resolve_data_dir()
    >>> columns = {"image": ImageColumn("image", (28, 28, 1)), "audio": AudioColumn("audio", 8000, 4000)}
    >>> png_batch = tf.stack([tf.io.read_file(os.path.join(root, "openmoji", "images", f"{h}.png"))
    ...                       for h in ("1F600", "1F601")])
    >>> wav_batch = tf.stack([tf.io.read_file(os.path.join(root, "fsdd", "recordings", f"{d}_jackson_0.wav"))
    ...                       for d in (0, 1)])
    >>> decoded = decode_all(columns, {"image": png_batch, "audio": wav_batch})
    >>> decoded["image"].shape, decoded["audio"].shape
    (TensorShape([2, 28, 28, 1]), TensorShape([2, 4000]))
    """
    out, files = {}, []
    for name in sorted(inputs):
        column = columns[name]
        kind = raw_kind(column)
        with tf.name_scope(f"decode_{name}"):
            strings = _checked_strings(name, kind, inputs[name], name in optional, column)
            if kind in ("numeric", "categorical"):
                if name in optional:  # decode "" as a valid placeholder row, then zero it
                    placeholder = ",".join(["0"] * column.width) if kind == "numeric" else "\x1f".join(
                        [""] * column.width)
                    decoded = column.decode(tf.where(tf.equal(strings, ""), placeholder, strings))
                    out[name] = _zero_where_absent(decoded, strings)
                else:
                    out[name] = column.decode(strings)
            elif kind == "text":
                ids = tf.ensure_shape(tf.cast(column.tokenizer(strings), tf.int32),
                                      (None, column.tokenizer.sequence_length))
                out[name] = _zero_where_absent(ids, strings) if name in optional else ids
            else:
                files.append((name, strings))
    if files:
        if len(files) > 1:
            with tf.control_dependencies(check_same_batch(dict(files))):
                files = [(n, tf.identity(s)) for n, s in files]
        out.update(_decode_files(columns, files, optional, parallel_iterations))
    return out


def _decode_files(columns, files, optional, parallel_iterations):
    """Encoded files: a column with ``decode_batch`` (WAV) decodes its whole batch; the others share one loop.

    Sizes a column can check for the whole batch (``check_batch``: image
    headers) are checked before the loop, which then only decodes.
    """
    out, looped, checks = {}, [], []
    for n, strings in files:
        column, prefix = columns[n], f"serving input `{n}`, example"
        skip = tf.equal(strings, "") if n in optional else None
        # The scope names the input in errors raised by TensorFlow's own decoders ("Invalid PNG data"),
        # whose messages we cannot extend: "Detected at node map/while/serving_input_image/...".
        with tf.name_scope(f"serving_input_{n}"):
            whole = column.decode_batch(strings, prefix, skip) if hasattr(column, "decode_batch") else None
            if whole is not None:
                out[n] = whole if skip is None else _zero_where_absent(whole, strings)
                continue
            batch = column.check_batch(strings, prefix, skip) if hasattr(column, "check_batch") else None
        if batch is not None:
            checks += batch[0]
        looped.append((n, strings, batch is not None))
    if not looped:
        return out

    def decode_one(n, b, checked, index):
        where = (f"serving input `{n}`, example", index)  # the index is an assertion item: no string op per example
        with tf.name_scope(f"serving_input_{n}"):
            def decoded():
                decode = columns[n].decode_checked if checked else columns[n].decode_bytes
                return tf.cast(decode(b, where=where), tf.float32)

            if n not in optional:
                return decoded()
            return tf.cond(tf.equal(b, ""), lambda: tf.zeros(decoded_shape(columns[n]), tf.float32), decoded)

    def decode_example(example):
        index, example = example[0], example[1:]
        return tuple(decode_one(n, b, checked, index) for (n, _, checked), b in zip(looped, example))

    specs = tuple(tf.TensorSpec(decoded_shape(columns[n]), tf.float32) for n, _, _ in looped)
    with tf.control_dependencies(checks):
        indices = tf.range(tf.size(looped[0][1]))
    decoded = tf.map_fn(decode_example, (indices, *(s for _, s, _ in looped)), fn_output_signature=specs,
                        parallel_iterations=parallel_iterations)
    out.update(zip((n for n, _, _ in looped), decoded))
    return out


def check_same_batch(batches):
    """Asserts that every input of a call has the same batch size.

    Args:
        batches: Dict of tensors keyed by input name.

    Returns:
        A list of assertion ops (use as control dependencies).
    """
    names = sorted(batches)
    first = names[0]
    return [
        tf.debugging.assert_equal(
            tf.shape(batches[n])[0],
            tf.shape(batches[first])[0],
            message=f"serving inputs `{n}` and `{first}` must have the same batch size",
        )
        for n in names[1:]
    ]
