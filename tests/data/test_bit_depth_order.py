"""`data.bit_depth` is the fallback for 16-bit PNGs without ``sBIT``: a file's own ``sBIT`` comes first (as documented)."""

from __future__ import annotations

import numpy as np
from PIL import Image, PngImagePlugin

from medalign.data.transforms import load_image


def test_sbit_chunk_wins_over_the_bit_depth_option(tmp_path):
    values = np.array([[0, 1000], [2048, 4095]], dtype=np.uint16)
    info = PngImagePlugin.PngInfo()
    info.add(b"sBIT", bytes([12]))
    Image.fromarray(values).save(tmp_path / "a.png", pnginfo=info)
    Image.fromarray(values).save(tmp_path / "b.png")  # no sBIT
    np.testing.assert_allclose(load_image(tmp_path / "a.png", bit_depth=16)[0].numpy(), values / 4095.0, rtol=1e-6)
    np.testing.assert_allclose(load_image(tmp_path / "b.png", bit_depth=10)[0].numpy(), np.clip(values / 1023.0, 0, 1), rtol=1e-6)
