"""Image decoding inside ``tf.data``: PNG, JPEG, BMP and GIF bytes -> float32
``(H, W, C)`` in [0, 1] with a static shape.

Transparency is composited on white (the background emoji artwork is drawn
for); grey images are repeated to RGB when the model wants 3 channels and RGB
is converted to grey when it wants 1. Animated GIFs give their first frame.
"""

from __future__ import annotations

import tensorflow as tf

from mmzoo import _validation as check

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
FIT_MODES = ("resize", "pad")


def check_image_shape(image_shape):
    """Validates ``(height, width, channels)`` with channels 1, 3 or 4.

    Raises:
        ValueError: If the shape is invalid.
    """
    image_shape = check.shape("image_shape", image_shape, 3)
    if image_shape[-1] not in (1, 3, 4):
        raise ValueError(f"`image_shape` must have 1, 3 or 4 channels. Received: image_shape={image_shape!r}")
    return image_shape


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


def decode_image(contents, image_shape, fit="resize", pad_value=1.0):
    """Decodes encoded image bytes to a model-ready float32 image.

    Runs in graph mode (inside ``Dataset.map``) or eagerly.

    Args:
        contents: A scalar ``tf.string`` of PNG, JPEG, BMP or GIF bytes.
        image_shape: ``(height, width, channels)`` of the output; channels 1
            (grey), 3 (RGB) or 4 (RGBA). For 1 and 3, transparency is
            composited on white.
        fit: ``"resize"`` (stretch) or ``"pad"`` (keep aspect ratio, pad).
        pad_value: Value of the padding for ``fit="pad"``.

    Returns:
        float32 tensor of shape ``image_shape`` with values in [0, 1].

    Raises:
        ValueError: If ``image_shape`` or ``fit`` is invalid.
        tf.errors.InvalidArgumentError: At run time, if the bytes are not a
            decodable image (the pipeline turns this into a row-level error).

    Example:

    >>> png = tf.io.encode_png(tf.zeros((4, 4, 3), tf.uint8))
    >>> decode_image(png, (8, 8, 3)).shape
    TensorShape([8, 8, 3])
    """
    height, width, channels = check_image_shape(image_shape)
    check.choice("fit", fit, set(FIT_MODES))
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
