"""`medalign resize` decides freshness by the source's content, not its timestamp."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from medalign.commands.resize import resize_manifest
from medalign.data.transforms import load_image


def test_a_source_replaced_by_an_older_file_is_resized_again(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(np.full((80, 100), 40, np.uint8)).save(src / "a.png")
    (src / "m.csv").write_text("id,image,text,split\na,a.png,x,train\n")
    out = tmp_path / "out"
    resize_manifest(src / "m.csv", out, 40, progress=False)
    resized = out / "images_40" / "a.png"
    assert abs(float(load_image(resized).mean()) - 40 / 255) < 1e-3
    stamp = resized.stat().st_mtime_ns
    resize_manifest(src / "m.csv", out, 40, progress=False)  # unchanged source: skipped
    assert resized.stat().st_mtime_ns == stamp

    Image.fromarray(np.full((80, 100), 200, np.uint8)).save(src / "a.png")  # replaced ...
    os.utime(src / "a.png", (1_000_000, 1_000_000))  # ... by a file with an older timestamp (1970)
    resize_manifest(src / "m.csv", out, 40, progress=False)
    assert abs(float(load_image(resized).mean()) - 200 / 255) < 1e-3
