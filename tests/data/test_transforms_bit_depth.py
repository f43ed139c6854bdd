"""16-bit PNGs are scaled by their bit depth (sBIT chunk, option, container), never by their own maximum."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from medalign.data.transforms import load_image, png_significant_bits


def _png16(path, values: np.ndarray, sbit: int | None = None):
    info = PngImagePlugin.PngInfo()
    if sbit is not None:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(values.astype(np.uint16)).save(path, pnginfo=info)
    return path


VALUES = np.array([[0, 100], [2048, 4095]], dtype=np.uint16)  # 12-bit detector data


def test_12_bit_data_with_an_sbit_chunk_is_scaled_by_4095(tmp_path):
    path = _png16(tmp_path / "a.png", VALUES, sbit=12)
    assert png_significant_bits(path) == 12
    np.testing.assert_allclose(load_image(path)[0].numpy(), VALUES / 4095.0, rtol=1e-6)


def test_without_sbit_the_16_bit_container_decides_not_the_image_maximum(tmp_path):
    dark = np.array([[0, 50], [100, 200]], dtype=np.uint16)  # max ≤ 255: the old code divided by 255
    path = _png16(tmp_path / "dark.png", dark)
    assert png_significant_bits(path) is None
    np.testing.assert_allclose(load_image(path)[0].numpy(), dark / 65535.0, rtol=1e-6)


def test_bit_depth_option_overrides(tmp_path):
    path = _png16(tmp_path / "b.png", VALUES)
    np.testing.assert_allclose(load_image(path, bit_depth=12)[0].numpy(), VALUES / 4095.0, rtol=1e-6)


def test_8_bit_images_are_unchanged(tmp_path):
    values = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "c.png")
    np.testing.assert_allclose(load_image(tmp_path / "c.png")[0].numpy(), values / 255.0, rtol=1e-6)
    assert png_significant_bits(tmp_path / "c.png") is None
