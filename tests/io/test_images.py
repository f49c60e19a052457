"""Image decoding: every pixel format ends as 8-bit RGB with its values kept."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from freqlens.io.images import as_rgb

GRADIENT = np.linspace(0, 65535, 64).round().reshape(8, 8)


@pytest.mark.parametrize("mode", ["I;16", "I"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(mode):
    if mode == "I;16":
        img = Image.fromarray(GRADIENT.astype(np.uint16))
    else:
        img = Image.fromarray(GRADIENT.astype(np.int32), mode)
    assert img.mode == mode
    rgb = np.asarray(as_rgb(img))
    assert rgb.shape == (8, 8, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    np.testing.assert_array_equal(rgb[..., 0], np.round(GRADIENT * 255 / 65535))  # PIL's convert: mean 251


GREY8 = (np.arange(64, dtype=np.uint8) * 4 + 1).reshape(8, 8)  # 1 … 253: spans the 8-bit range
RGB8 = np.stack([GREY8, 254 - GREY8, (GREY8.astype(int) * 7) % 256], axis=-1).astype(np.uint8)  # distinct channels


def _eight_bit(mode: str) -> tuple[Image.Image, np.ndarray]:
    """An 8-bit image of ``mode`` built from known values, and the RGB values it holds (worked out by
    hand, not by PIL's conversion, which ``as_rgb`` itself calls)."""
    if mode == "L":
        return Image.fromarray(GREY8, "L"), np.repeat(GREY8[..., None], 3, axis=-1)
    if mode == "RGB":
        return Image.fromarray(RGB8, "RGB"), RGB8
    if mode == "RGBA":  # alpha is dropped, not composited
        alpha = np.full((8, 8, 1), 17, dtype=np.uint8)
        return Image.fromarray(np.concatenate([RGB8, alpha], axis=-1), "RGBA"), RGB8
    if mode == "P":  # palette entry i is (i, 255 - i, 3i mod 256); the pixels index it
        img = Image.fromarray(GREY8, "P")
        i = np.arange(256)
        palette = np.stack([i, 255 - i, (3 * i) % 256], axis=-1).astype(np.uint8)
        img.putpalette(palette.ravel().tolist())
        return img, palette[GREY8]
    if mode == "CMYK":  # no black ink: R, G, B = 255 - C, M, Y
        cmyk = np.concatenate([255 - RGB8, np.zeros((8, 8, 1), dtype=np.uint8)], axis=-1)
        return Image.fromarray(cmyk, "CMYK"), RGB8
    raise AssertionError(mode)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK"])
def test_eight_bit_formats_keep_their_values(mode):
    img, expected = _eight_bit(mode)
    assert img.mode == mode
    rgb = np.asarray(as_rgb(img))
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    np.testing.assert_array_equal(rgb, expected)  # exact: an 8-bit image is never rescaled


def test_the_same_values_are_scaled_in_a_sixteen_bit_image():
    # the 8-bit values that the 'L' case keeps, scaled by 255/65535 when the mode says 16 bits
    sixteen = np.asarray(as_rgb(Image.fromarray(GREY8.astype(np.uint16))))[..., 0]
    np.testing.assert_array_equal(sixteen, np.round(GREY8 * (255 / 65535)))


def test_an_eight_bit_range_in_a_32_bit_image_is_kept():
    values = np.arange(64, dtype=np.int32).reshape(8, 8)
    np.testing.assert_array_equal(np.asarray(as_rgb(Image.fromarray(values, "I")))[..., 0], values)
