import re

import numpy as np
import pytest
import tensorflow as tf

from mmzoo.data import image


def _png(pixels):
    return tf.io.encode_png(tf.constant(pixels, tf.uint8))


def test_known_pixels_are_exact_at_native_size():
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    out = image.decode_image(_png(pixels), (4, 5, 3)).numpy()
    np.testing.assert_allclose(out, pixels / 255.0, atol=1e-6)


def test_rgba_is_composited_on_white_and_grey_conversions():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red
    rgba[0, 1] = (255, 0, 0, 0)  # fully transparent -> white
    out = image.decode_image(_png(rgba), (2, 2, 3)).numpy()
    np.testing.assert_allclose(out[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(out[1, 1], [1, 1, 1], atol=1e-6)  # alpha 0 too
    grey = image.decode_image(_png(np.full((3, 3, 1), 51, np.uint8)), (3, 3, 3)).numpy()
    np.testing.assert_allclose(grey, 0.2, atol=1e-6)
    to_grey = image.decode_image(_png(np.full((3, 3, 3), 255, np.uint8)), (3, 3, 1)).numpy()
    assert to_grey.shape == (3, 3, 1)
    np.testing.assert_allclose(to_grey, 1.0, atol=1e-3)


def test_resize_and_pad_give_static_shape():
    pixels = np.zeros((10, 20, 3), np.uint8)
    resized = image.decode_image(_png(pixels), (8, 8, 3), fit="resize").numpy()
    np.testing.assert_allclose(resized, 0.0)
    padded = image.decode_image(_png(pixels), (8, 8, 3), fit="pad").numpy()
    assert padded.shape == (8, 8, 3)
    np.testing.assert_allclose(padded[0], 1.0)  # white padding above the letterboxed image
    np.testing.assert_allclose(padded[4], 0.0, atol=1e-6)


def _bmp(pixels):
    """A 24-bit BMP (bottom-up rows, BGR, rows padded to 4 bytes)."""
    h, w, _ = pixels.shape
    row = (w * 3 + 3) // 4 * 4
    body = b"".join(pixels[y, :, ::-1].tobytes().ljust(row, b"\0") for y in range(h - 1, -1, -1))
    header = b"BM" + (54 + len(body)).to_bytes(4, "little") + b"\0" * 4 + (54).to_bytes(4, "little")
    info = (40).to_bytes(4, "little") + w.to_bytes(4, "little") + h.to_bytes(4, "little")
    info += (1).to_bytes(2, "little") + (24).to_bytes(2, "little") + b"\0" * 24
    return header + info + body


@pytest.mark.parametrize("fmt", ["jpeg", "png", "bmp"])
def test_jpeg_png_bmp_decode(fmt):
    pixels = np.full((6, 6, 3), 200, np.uint8)
    pixels[0, 0] = (10, 20, 30)
    encoded = {
        "jpeg": lambda: tf.io.encode_jpeg(pixels, quality=100),
        "png": lambda: _png(pixels),
        "bmp": lambda: _bmp(pixels),
    }
    out = image.decode_image(encoded[fmt](), (6, 6, 3)).numpy()
    np.testing.assert_allclose(out[3, 3], 200 / 255.0, atol=0.02)
    if fmt != "jpeg":
        np.testing.assert_allclose(out[0, 0], np.array([10, 20, 30]) / 255.0, atol=1e-6)


def test_real_openmoji_png(data_dir):
    out = image.load_image(str(data_dir / "openmoji" / "images" / "1F600.png"), (72, 72, 3)).numpy()
    assert out.shape == (72, 72, 3) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out[0, 0], 1.0)  # transparent corner -> white
    assert out.min() < 0.2  # the black outline


def test_corrupt_bytes_raise_and_bad_arguments():
    with pytest.raises(tf.errors.InvalidArgumentError):
        image.decode_image(tf.constant(b"\x89PNG\r\n\x1a\nbroken"), (4, 4, 3))
    with pytest.raises(ValueError, match="channels"):
        image.decode_image(_png(np.zeros((2, 2, 3), np.uint8)), (4, 4, 2))
    with pytest.raises(ValueError, match="fit"):
        image.decode_image(_png(np.zeros((2, 2, 3), np.uint8)), (4, 4, 3), fit="stretch")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_header_size_is_read_without_decoding(fmt):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((37, 53, 3), np.uint8)).save(buffer, format=fmt)
    assert image.encoded_image_size(tf.constant(buffer.getvalue())).numpy().tolist() == [37, 53]
    assert image.encoded_image_size(tf.constant(b"GIF8")).numpy().tolist() == [0, 0]  # truncated: no size


def test_decompression_bomb_is_refused_from_its_header(png_bomb):
    bomb = png_bomb(20000, 20000)  # 400 megapixels in about 400 KB
    assert len(bomb) < 1_000_000
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        image.decode_image(tf.constant(bomb), (28, 28, 1), name="column `photo`")
    message = str(error.value)
    assert "column `photo`: image too large: more than max_pixels=16777216 pixels" in message
    assert re.search(r"20000\D+20000", message)
    small = png_bomb(64, 48)
    assert image.decode_image(tf.constant(small), (8, 8, 1)).shape == (8, 8, 1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_pixels=3000"):
        image.decode_image(tf.constant(small), (8, 8, 1), max_pixels=3000)
    with pytest.raises(ValueError, match="max_pixels"):
        image.decode_image(tf.constant(small), (8, 8, 1), max_pixels=0)
