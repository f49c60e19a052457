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


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK"])
def test_eight_bit_formats_convert_as_pil_does(mode):
    img = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").convert(mode)
    np.testing.assert_array_equal(np.asarray(as_rgb(img)), np.asarray(img.convert("RGB")))


def test_an_eight_bit_range_in_a_32_bit_image_is_kept():
    values = np.arange(64, dtype=np.int32).reshape(8, 8)
    np.testing.assert_array_equal(np.asarray(as_rgb(Image.fromarray(values, "I")))[..., 0], values)
