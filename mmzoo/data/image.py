"""Image decoding inside ``tf.data``: PNG, JPEG, BMP and GIF bytes -> float32
``(H, W, C)`` in [0, 1] with a static shape.

Transparency is composited on white (the background emoji artwork is drawn
for); grey images are repeated to RGB when the model wants 3 channels and RGB
is converted to grey when it wants 1. Animated GIFs give their first frame.
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo import _validation as check
from mmzoo.data import header_bytes

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FIT_MODES = ("resize", "pad")
# 4096 x 4096: a 12-megapixel phone photo fits; a decompression bomb (a few hundred KB of PNG that
# decodes to gigabytes) is refused from its header before any pixel is decoded.
DEFAULT_MAX_PIXELS = 4096 * 4096


def check_image_shape(image_shape):
    """Validates ``(height, width, channels)`` with channels 1, 3 or 4.

    Raises:
        ValueError: If the shape is invalid.
    """
    image_shape = check.shape("image_shape", image_shape, 3)
    if image_shape[-1] not in (1, 3, 4):
        raise ValueError(f"`image_shape` must have 1, 3 or 4 channels. Received: image_shape={image_shape!r}")
    return image_shape


def _header_size(contents):
    """``(is_jpeg, [height, width])`` from PNG/GIF/BMP headers, element-wise (JPEG and others: zeros)."""
    def _be(offset, n):
        return header_bytes.big_endian(header_bytes.field_bytes(contents, offset, n))

    def _le(offset, n):
        return header_bytes.little_endian(header_bytes.field_bytes(contents, offset, n))

    def has(prefix):
        return tf.equal(tf.strings.substr(contents, 0, len(prefix)), prefix)

    def signed(v):  # BMP's int32: a negative height means a top-down bitmap
        return tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))

    zero = tf.zeros_like(tf.strings.length(contents), tf.int64)
    height = tf.where(has(b"\x89PNG"), _be(zero + 20, 4), tf.where(
        has(b"GIF8"), _le(zero + 8, 2), tf.where(has(b"BM"), signed(_le(zero + 22, 4)), zero)))
    width = tf.where(has(b"\x89PNG"), _be(zero + 16, 4), tf.where(
        has(b"GIF8"), _le(zero + 6, 2), tf.where(has(b"BM"), signed(_le(zero + 18, 4)), zero)))
    return has(b"\xff\xd8\xff"), tf.stack([height, width], axis=-1)


def encoded_image_size(contents):
    """``(height, width)`` of encoded image bytes, read from the header alone (nothing is decoded).

    PNG (IHDR), GIF (logical screen), BMP (info header) and JPEG (the SOF
    marker, ``tf.image.extract_jpeg_shape``). Bytes of another format give
    ``(0, 0)``; the decoder then refuses them.

    Args:
        contents: A ``tf.string`` scalar, or a batch ``(n,)``.

    Returns:
        An int64 tensor ``[height, width]`` (``(n, 2)`` for a batch).

    Example:

    >>> png = tf.io.encode_png(tf.zeros((3, 5, 1), tf.uint8))
    >>> encoded_image_size(png).numpy().tolist()
    [3, 5]
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    is_jpeg, size = _header_size(contents)
    if contents.shape.rank == 0:
        return tf.cond(is_jpeg, lambda: tf.cast(tf.image.extract_jpeg_shape(contents)[:2], tf.int64), lambda: size)

    def with_jpegs():  # the JPEGs of the batch only: their size needs the SOF marker's search
        where = tf.where(is_jpeg)
        shapes = tf.map_fn(lambda b: tf.image.extract_jpeg_shape(b)[:2], tf.gather_nd(contents, where),
                           fn_output_signature=tf.int32)
        return tf.tensor_scatter_nd_update(size, where, tf.cast(shapes, tf.int64))

    return tf.cond(tf.reduce_any(is_jpeg), with_jpegs, lambda: size)


def check_image_size(contents, max_pixels=DEFAULT_MAX_PIXELS, name="image"):
    """Refuses encoded images with more than ``max_pixels`` pixels, from the header, before decoding.

    Args:
        contents: A scalar ``tf.string`` of encoded image bytes.
        max_pixels: The most ``height * width`` allowed.
        name: The input or column named in the error: a string, or
            ``(prefix, index)`` with an int tensor ``index`` (serving's
            ``("serving input `image`, example", i)``).

    Returns:
        ``contents``, behind the check.

    Raises:
        tf.errors.InvalidArgumentError: At run time, for a larger image; the
            message names ``name``, the limit and the header's size.
    """
    with tf.control_dependencies(image_size_checks(contents, max_pixels, name)):
        return tf.identity(contents)


def image_size_checks(contents, max_pixels=DEFAULT_MAX_PIXELS, name="image", skip=None):
    """The assertion of ``check_image_size``, for one file or a whole batch (serving checks a request at once).

    Args:
        contents: A ``tf.string`` scalar, or a batch ``(n,)``.
        max_pixels: The most ``height * width`` allowed.
        name: As for ``check_image_size``; for a batch, the prefix, followed
            by the index of the first bad example.
        skip: For a batch, an optional bool ``(n,)`` of examples not to check.

    Returns:
        A list with the assertion op (use as control dependencies).
    """
    contents = tf.convert_to_tensor(contents, tf.string)
    size = encoded_image_size(contents)
    ok = size[..., 0] * size[..., 1] <= max_pixels
    if contents.shape.rank == 1:
        if skip is not None:
            ok = tf.logical_or(ok, skip)
        index = tf.argmin(tf.cast(ok, tf.int32), output_type=tf.int32)  # the first bad example
        name, size, ok = (name, index), tf.gather(size, index), tf.reduce_all(ok)
    reason = f": image too large: more than max_pixels={max_pixels} pixels; height, width in its header:"
    message = [name[0], name[1], reason] if isinstance(name, tuple) else [f"{name}{reason}"]
    return [tf.debugging.Assert(ok, [*message, size], summarize=2, name="check_image_size")]


def _to_rgba(image):
    """float (H, W, c) with c in 1..4 -> float (H, W, 4)."""
    channels = tf.shape(image)[-1]
    ones = tf.ones_like(image[..., :1])

    def grey():
        return tf.concat([image[..., :1]] * 3 + [ones], axis=-1)

    def grey_alpha():
        return tf.concat([image[..., :1]] * 3 + [image[..., 1:2]], axis=-1)

    def rgb():
        return tf.concat([image[..., :3], ones], axis=-1)

    def rgba():
        return image[..., :4]

    rgba_image = tf.switch_case(channels - 1, [grey, grey_alpha, rgb, rgba])
    return tf.ensure_shape(rgba_image, [None, None, 4])


def to_channels(rgba, channels):
    """Converts float RGBA to ``channels`` (1 grey, 3 RGB: both on white; 4 RGBA)."""
    if channels == 4:
        return rgba
    alpha = rgba[..., 3:]
    rgb = rgba[..., :3] * alpha + (1.0 - alpha)
    return tf.image.rgb_to_grayscale(rgb) if channels == 1 else rgb


def fit_image(image, height, width, fit="resize", pad_value=1.0):
    """Resizes a float ``(h, w, c)`` image to ``(height, width, c)``.

    Args:
        image: float32 image tensor.
        height: Output height.
        width: Output width.
        fit: ``"resize"`` stretches (bilinear, antialiased); ``"pad"`` keeps
            the aspect ratio and pads with ``pad_value``.
        pad_value: Padding value for ``fit="pad"`` (1.0 = white).

    Returns:
        float32 ``(height, width, c)``. An image already of that size is
        returned unchanged (exact pixel values).
    """
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))

    def resized():
        if fit == "pad":
            return tf.image.resize_with_pad(image - pad_value, height, width, antialias=True) + pad_value
        return tf.image.resize(image, (height, width), antialias=True)

    out = tf.cond(same, lambda: tf.identity(image), resized)
    return tf.clip_by_value(out, 0.0, 1.0)


def decode_image(contents, image_shape, fit="resize", pad_value=1.0, max_pixels=DEFAULT_MAX_PIXELS, name="image"):
    """Decodes encoded image bytes to a model-ready float32 image.

    Runs in graph mode (inside ``Dataset.map``) or eagerly.

    Args:
        contents: A scalar ``tf.string`` of PNG, JPEG, BMP or GIF bytes.
        image_shape: ``(height, width, channels)`` of the output; channels 1
            (grey), 3 (RGB) or 4 (RGBA). For 1 and 3, transparency is
            composited on white.
        fit: ``"resize"`` (stretch) or ``"pad"`` (keep aspect ratio, pad).
        pad_value: Value of the padding for ``fit="pad"``.
        max_pixels: The most ``height * width`` the header may announce
            (``check_image_size``); larger images are refused before decoding.
        name: The column or input named in errors.

    Returns:
        float32 tensor of shape ``image_shape`` with values in [0, 1].

    Raises:
        ValueError: If ``image_shape``, ``fit`` or ``max_pixels`` is invalid.
        tf.errors.InvalidArgumentError: At run time, if the bytes are not a
            decodable image or announce more than ``max_pixels`` pixels (the
            pipeline turns this into a row-level error).

    Example:

    >>> png = tf.io.encode_png(tf.zeros((4, 4, 3), tf.uint8))
    >>> decode_image(png, (8, 8, 3)).shape
    TensorShape([8, 8, 3])
    """
    image_shape = check_image_shape(image_shape)
    check.choice("fit", fit, set(FIT_MODES))
    check.positive_int("max_pixels", max_pixels)
    return decode_checked_image(check_image_size(contents, max_pixels, name), image_shape, fit, pad_value)


def decode_checked_image(contents, image_shape, fit="resize", pad_value=1.0):
    """``decode_image`` after the size check (``check_image_size`` has run on ``contents``, e.g. as a batch)."""
    height, width, channels = image_shape
    image = tf.io.decode_image(contents, channels=0, dtype=tf.uint8, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    image = to_channels(_to_rgba(image), channels)
    image = fit_image(image, height, width, fit=fit, pad_value=pad_value)
    return tf.ensure_shape(image, (height, width, channels))


def load_image(path, image_shape, fit="resize", pad_value=1.0):
    """Reads and decodes one image file (see ``decode_image``).

    Args:
        path: File path (``str`` or scalar ``tf.string``).
        image_shape: ``(height, width, channels)``.
        fit: ``"resize"`` or ``"pad"``.
        pad_value: Padding value for ``fit="pad"``.

    Returns:
        float32 tensor of shape ``image_shape`` in [0, 1].

    Raises:
        tf.errors.NotFoundError: If the file does not exist.

    Example:

    >>> import os
    >>> from mmzoo.data import resolve_data_dir
    >>> load_image(os.path.join(resolve_data_dir(), "openmoji", "images", "1F600.png"), (72, 72, 3)).dtype
    tf.float32
    """
    return decode_image(tf.io.read_file(path), image_shape, fit=fit, pad_value=pad_value)
