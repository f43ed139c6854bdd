"""Reduced-size JPEG decoding: the DCT-scaled path gives the full-decode pixels (within a tolerance) at a fraction of the size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medalign.data.dataset import ImageTextDataset
from medalign.data.decode import decode_jpeg_gray, jpeg_scale
from medalign.data.manifest import read_manifest
from medalign.data.transforms import PairTransform, decode_image, load_image


def _smooth_radiograph(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth radiograph-like uint8 picture: body blob, lung fields, rib-like waves, faint noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    body = 0.35 + 0.3 * np.exp(-((x - 0.45) ** 2 + (y - 0.55) ** 2) / 0.12)
    lungs = -0.15 * np.exp(-((np.abs(x - 0.42) - 0.18) ** 2 / 0.01 + (y - 0.45) ** 2 / 0.05))
    ribs = 0.05 * np.sin(40 * y + 6 * x**2)
    image = body + lungs + ribs + rng.normal(0, 0.01, (height, width))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A 2,600 x 2,200 grayscale JPEG (quality 95, as MIMIC-CXR-JPG)."""
    path = tmp_path_factory.mktemp("jpeg") / "cxr.jpg"
    Image.fromarray(_smooth_radiograph(2600, 2200)).save(path, quality=95)
    return path


@pytest.mark.parametrize(
    "size, min_size, scale",
    [((2600, 2200), 224, 8), ((2600, 2200), 275, 8), ((2600, 2200), 276, 4), ((2600, 2200), 550, 4),
     ((2600, 2200), 551, 2), ((2600, 2200), 1101, 1), ((300, 500), 224, 1), ((100, 100), 512, 1), ((2600, 2200), None, 1)],
)  # fmt: skip
def test_scale_is_the_largest_power_of_two_keeping_the_short_side(size, min_size, scale):
    # hand-computed: short side 2200; 2200 // 8 = 275, 2200 // 4 = 550, 2200 // 2 = 1100
    assert jpeg_scale(size, min_size) == scale


@pytest.mark.parametrize("min_size, shape", [(224, (325, 275)), (512, (650, 550)), (None, (2600, 2200))])
def test_decoded_shape_is_reduced(big_jpeg, min_size, shape):
    decoded = decode_jpeg_gray(big_jpeg, min_size, backend="pil")
    assert decoded.pixels.shape == shape and decoded.source_size == (2600, 2200)
    image, source = decode_image(big_jpeg, min_size=min_size)
    assert tuple(image.shape) == (1, *shape) and source == (2600, 2200)
    assert min(image.shape[-2:]) >= (min_size or 0)


def test_one_eighth_decode_is_the_block_mean_of_the_full_decode(big_jpeg):
    # libjpeg's 1/8 decode keeps only each 8x8 block's DC coefficient = the block's mean: an independent check
    # that DCT scaling (not some other resampler) produced the reduced image.
    full = np.asarray(Image.open(big_jpeg).convert("L"), dtype=np.float64)
    block_mean = full.reshape(325, 8, 275, 8).mean(axis=(1, 3))
    reduced = decode_jpeg_gray(big_jpeg, 224).pixels.astype(np.float64)
    assert np.abs(reduced - block_mean).max() <= 1.0  # rounding of the 8-bit outputs only


@pytest.mark.parametrize("image_size", [224, 384])
@pytest.mark.parametrize("train", [False, True])
def test_reduced_pipeline_matches_full_decode_pipeline(big_jpeg, image_size, train):
    # Tolerance stated in docs/data_loading.md: mean |Δ| < 0.002 and max |Δ| < 0.015 on [0, 1] for smooth images
    # (measured ≤ 0.0012 and ≤ 0.0071); the max comes from rounding the crop box to reduced pixels.
    transform = PairTransform(image_size, train=train, mean=(0.0,), std=(1.0,), channels=1)
    full = transform(load_image(big_jpeg), None, torch.Generator().manual_seed(3))[0]
    reduced, source = decode_image(big_jpeg, min_size=image_size)
    assert reduced.shape[-1] < 2200
    fast = transform(reduced, None, torch.Generator().manual_seed(3), source_size=source)[0]
    diff = (full - fast).abs()
    assert float(diff.mean()) < 0.002 and float(diff.max()) < 0.015


def test_rendered_radiograph_within_tolerance(tmp_path):
    # the synthetic renderer's 2,500 px image has sharp rib edges and pixel noise: looser max, same mean bound
    from medalign.synthetic.images import render_image

    path = tmp_path / "r.jpg"
    Image.fromarray(render_image([], 2500, np.random.default_rng(0)).image).save(path, quality=95)
    transform = PairTransform(224, mean=(0.0,), std=(1.0,), channels=1)
    full = transform(load_image(path))[0]
    reduced, source = decode_image(path, min_size=224)
    diff = (full - transform(reduced, source_size=source)[0]).abs()
    assert reduced.shape[-2:] == (313, 313)
    assert float(diff.mean()) < 0.003 and float(diff.max()) < 0.05  # measured 0.0016 and 0.026


def test_png_and_small_jpeg_unchanged(tmp_path):
    array = _smooth_radiograph(300, 400)
    Image.fromarray(array).save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_image(tmp_path / "a.png", min_size=64)[0].numpy(), array / np.float32(255))
    Image.fromarray(array).save(tmp_path / "a.jpg", quality=95)  # 300 // 2 < 224: no reduction
    np.testing.assert_array_equal(load_image(tmp_path / "a.jpg", min_size=224).numpy(), load_image(tmp_path / "a.jpg").numpy())


def test_simplejpeg_backend_gives_the_pil_pixels(big_jpeg):
    pytest.importorskip("simplejpeg")
    for min_size in (224, 512, None):
        a, b = decode_jpeg_gray(big_jpeg, min_size, "pil"), decode_jpeg_gray(big_jpeg, min_size, "simplejpeg")
        assert a.scale == b.scale
        np.testing.assert_array_equal(a.pixels, b.pixels)


def test_dataset_fast_decode_keeps_crop_and_heatmap(tmp_path):
    # A 1,200 x 1,000 JPEG with a source-size heatmap: fast decode reads it at 1/4 (1000 // 8 = 125 < 128 ≤ 250);
    # the crop box is drawn in the source frame, so the heatmap is bit-identical and the image within tolerance.
    Image.fromarray(_smooth_radiograph(1200, 1000, seed=1)).save(tmp_path / "i.jpg", quality=95)
    heatmap = np.zeros((1200, 1000), np.float32)
    heatmap[600:700, 300:420] = 1.0
    np.save(tmp_path / "h.npy", heatmap)
    (tmp_path / "m.csv").write_text("image,text,split,heatmap,Edema\ni.jpg,effusion,train,h.npy,1\n")
    manifest = read_manifest(tmp_path / "m.csv", ["Edema"])
    transform = PairTransform(128, train=True)
    fast = ImageTextDataset(manifest, transform, seed=5)[(2, 0)]
    slow = ImageTextDataset(manifest, transform, seed=5, fast_decode=False)[(2, 0)]
    assert ImageTextDataset(manifest, transform).min_size == 128
    assert decode_image(tmp_path / "i.jpg", min_size=128)[0].shape[-2:] == (300, 250)
    torch.testing.assert_close(fast["heatmap"], slow["heatmap"], rtol=0, atol=0)
    std = torch.tensor(transform.std).view(3, 1, 1)
    diff = (fast["image"] - slow["image"]).abs() * std  # undo the normalisation: [0, 1] units
    assert float(diff.mean()) < 0.002 and float(diff.max()) < 0.015
