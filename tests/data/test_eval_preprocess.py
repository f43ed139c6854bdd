"""medalign's evaluation transform is open_clip's eval preprocess on image files, op for op."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

open_clip = pytest.importorskip("open_clip")

from open_clip.transform import PreprocessCfg, image_transform_v2  # noqa: E402

import medalign.data.transforms as transforms  # noqa: E402
from medalign.data.transforms import PairTransform, decode_image  # noqa: E402
from medalign.export.folder import preprocess_config  # noqa: E402

MEAN, STD = (0.5, 0.45, 0.4), (0.25, 0.2, 0.3)


def _picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A radiograph-like 8-bit picture: smooth shading, edges and noise (so resampling differences show)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 120 + 80 * np.sin(6 * x) * np.cos(4 * y) + 40 * ((x * 13).astype(int) % 2) + rng.normal(0, 12, (height, width))
    return np.clip(base, 0, 255).astype(np.uint8)


def _files(tmp_path):
    """8-bit inputs: non-square, larger than the model, smaller than it, JPEG, gray stored as RGB."""
    files = {}
    for name, (h, w) in {"wide": (256, 300), "tall": (301, 256), "large": (1527, 1272), "small": (40, 51)}.items():
        files[f"{name}.png"] = _picture(h, w, seed=h)
    for name, array in list(files.items()):
        path = tmp_path / name
        Image.fromarray(array).save(path)
    Image.fromarray(files["tall.png"]).save(tmp_path / "tall.jpg", quality=90)
    Image.fromarray(files["wide.png"]).convert("RGB").save(tmp_path / "rgb.png")
    Image.fromarray(files["large.png"]).convert("RGB").save(tmp_path / "rgb.jpg", quality=90)
    return sorted(tmp_path.iterdir())


@pytest.mark.parametrize("size", [64, 224])
def test_eval_transform_is_open_clip_preprocess_on_files(tmp_path, size):
    ours = PairTransform(size, mean=MEAN, std=STD)
    theirs = image_transform_v2(PreprocessCfg(**preprocess_config(size, MEAN, STD)), is_train=False)  # what export writes
    for path in _files(tmp_path):
        with Image.open(path) as img:
            want = theirs(img)  # (3, S, S): what a user of the exported folder gets
        got = ours(decode_image(path)[0])[0]
        assert got.shape == want.shape == (3, size, size)
        assert torch.equal(got, want), (path.name, float((got - want).abs().max()))


def test_open_clip_cfg_is_what_open_clip_reads():
    from medalign.data.transforms import EvalPreprocess

    cfg = EvalPreprocess(96, MEAN, STD).open_clip_cfg()
    assert cfg == {"size": 96, "mean": list(MEAN), "std": list(STD), "interpolation": "bilinear", "resize_mode": "shortest"}
    assert set(cfg) <= set(PreprocessCfg.__dataclass_fields__)


def test_heatmap_follows_the_image_geometry():
    """A heatmap equal to the image is cropped where the image is (up to 8-bit rounding)."""
    picture = torch.from_numpy(_picture(90, 130)).float()[None] / 255  # (1, 90, 130)
    image, heat = PairTransform(32, mean=(0.0,), std=(1.0,), channels=1)(picture, picture.clone())
    assert heat.shape == image.shape == (1, 32, 32)
    assert float((image - heat).abs().max()) <= 1.5 / 255  # PIL's 8-bit passes vs torch's float resize
    small = PairTransform(32, mean=(0.0,), std=(1.0,), channels=1)(picture, picture[:, ::2, ::2].clone())[1]
    assert float((small - heat).abs().mean()) < 0.02  # a heatmap at another resolution lands on the same crop


def test_16_bit_png_is_rounded_with_a_warning_and_open_clip_image_reproduces_it(tmp_path, caplog, monkeypatch):
    from medalign.data.transforms import open_clip_image

    rng = np.random.default_rng(0)
    array = (rng.random((80, 70)) * 4095).astype(np.uint16)  # 12-bit data in a 16-bit PNG
    path = tmp_path / "deep.png"
    Image.fromarray(array).save(path)
    monkeypatch.setattr(transforms, "_warned_quantised", False)
    ours = PairTransform(64, mean=MEAN, std=STD)
    with caplog.at_level(logging.WARNING, logger="medalign.data.transforms"):
        got = ours(decode_image(path, bit_depth=12)[0])[0]
    assert "more than 8 bits" in caplog.text and "open_clip_image" in caplog.text
    theirs = image_transform_v2(PreprocessCfg(**ours.eval_preprocess.open_clip_cfg()), is_train=False)
    assert torch.equal(theirs(open_clip_image(path, bit_depth=12)), got)  # the documented way to feed open_clip
    expected = np.round(array / 4095 * 255).astype(np.uint8)  # the rounding by hand
    np.testing.assert_array_equal(np.asarray(open_clip_image(path, bit_depth=12)), expected)
    with Image.open(path) as img:  # the file as is: PIL clips 16-bit values when converting — documented, not supported
        assert not torch.allclose(theirs(img), got, atol=0.1)
