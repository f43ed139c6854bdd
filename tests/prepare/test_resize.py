"""The resize cache (`medalign resize`, `prepare --resize`): geometry, 16-bit brightness, heatmap alignment, manifests."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image, PngImagePlugin

from medalign.cli import main
from medalign.commands.resize import resize_manifest
from medalign.data.dataset import ImageTextDataset
from medalign.data.manifest import read_manifest
from medalign.data.transforms import PairTransform, load_heatmap, load_image, png_significant_bits
from medalign.prepare.resize import resize_heatmap, resize_image, resized_size
from tests.conftest import LABELS


@pytest.mark.parametrize(
    "size, short, expected",
    [((3000, 2500), 512, (614, 512)), ((2500, 3000), 512, (512, 614)), ((600, 800), 150, (150, 200)),
     ((100, 200), 512, (100, 200)), ((512, 700), 512, (512, 700))],
)  # fmt: skip
def test_short_side_and_aspect(size, short, expected):
    assert resized_size(size, short) == expected  # hand-computed; 3000 · 512 / 2500 = 614.4


def _gaussian(shape, centre, sigma):
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * sigma**2)).astype(np.float32)


def _png16(path, values, sbit=None):
    info = PngImagePlugin.PngInfo()
    if sbit:
        info.add(b"sBIT", bytes([sbit]))
    Image.fromarray(values.astype(np.uint16)).save(path, pnginfo=info)


def _source(tmp_path):
    """A folder with an 8-bit JPEG + heatmap, a 12-bit PNG (sBIT) and a manifest with extra columns."""
    src = tmp_path / "src"
    (src / "img" / "p1").mkdir(parents=True)
    spot = (80 + 170 * _gaussian((600, 800), (420, 200), 12)).round().astype(np.uint8)  # bright spot at (420, 200)
    Image.fromarray(spot).save(src / "img/p1/a.jpg", quality=95)
    np.save(src / "img/p1/a_gaze.npy", _gaussian((600, 800), (420, 200), 30))
    ramp = np.tile(np.linspace(0, 4095, 900), (700, 1)).round()  # 12-bit detector data, 700 x 900
    ramp[:, :300] = 2048
    _png16(src / "img/b.png", ramp, sbit=12)
    (src / "m.csv").write_text(
        "id,image,text,split,heatmap,Edema,note\n"
        "a,img/p1/a.jpg,left effusion,train,img/p1/a_gaze.npy,1.0,kept as is\n"
        'b,img/b.png,no finding,train,,,"comma, inside"\n'
    )
    return src


def test_manifest_geometry_bit_depth_and_columns(tmp_path):
    src = _source(tmp_path)
    path = resize_manifest(src / "m.csv", tmp_path / "out", 150, progress=False)
    out = path.parent
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("id")
    before = pd.read_csv(src / "m.csv", dtype=str, keep_default_na=False).set_index("id")
    assert frame.loc["a", "image"] == "images_150/img/p1/a.png" and frame.loc["b", "image"] == "images_150/img/b.png"
    assert frame.loc["a", "heatmap"] == "heatmaps_150/img/p1/a_gaze.npy" and frame.loc["b", "heatmap"] == ""
    others = [c for c in before.columns if c not in ("image", "heatmap")]
    pd.testing.assert_frame_equal(frame[others], before[others])  # other columns verbatim ("1.0", "", "comma, inside")
    assert Image.open(out / frame.loc["a", "image"]).size == (200, 150)  # (W, H): 600 x 800 → 150 x 200
    sixteen = Image.open(out / frame.loc["b", "image"])
    assert sixteen.mode.startswith("I;16") and sixteen.size == (193, 150)  # 700 x 900 → 150 x 192.9
    assert png_significant_bits(out / frame.loc["b", "image"]) == 12
    # brightness: the flat 2048 band stays 2048 / 4095 through load_image, the ramp keeps its mean
    small, big = load_image(out / frame.loc["b", "image"])[0].numpy(), load_image(src / "img/b.png")[0].numpy()
    np.testing.assert_allclose(small[:, 5:60], 2048 / 4095, atol=1e-6)  # the band ends at 300 / 900 · 193 = 64.3
    assert abs(float(small.mean()) - float(big.mean())) < 2e-3  # a resampling filter keeps the mean
    report = json.loads((out / "resize_report.json").read_text())
    assert report["rows_out"] == 2 and report["bad_files"] == {}


def test_heatmap_stays_on_its_image(tmp_path):
    path = resize_manifest(_source(tmp_path) / "m.csv", tmp_path / "out", 150, progress=False)
    row = pd.read_csv(path).set_index("id").loc["a"]
    heatmap = load_heatmap(path.parent / row["heatmap"])[0].numpy()
    image = load_image(path.parent / row["image"])[0].numpy()
    assert heatmap.shape == image.shape == (150, 200)
    assert heatmap.max() == pytest.approx(1.0)  # the peak-1 invariant
    # the peak moves with the scale 1/4 (pixel centres: (420 + 0.5) / 4 - 0.5 = 104.6, 49.6)
    peak = np.unravel_index(heatmap.argmax(), heatmap.shape)
    assert abs(peak[0] - 104.6) <= 1 and abs(peak[1] - 49.6) <= 1
    assert np.unravel_index(image.argmax(), image.shape) == pytest.approx(peak, abs=1)  # image spot = heatmap peak


def test_resize_heatmap_matches_block_average():
    # independent reference: a 4x downsample of a smooth map is close to its 4 x 4 block means (then peak 1)
    heatmap = _gaussian((400, 600), (150, 420), 25)
    reference = heatmap.reshape(100, 4, 150, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(resize_heatmap(heatmap, (100, 150)), reference / reference.max(), atol=0.02)


def test_rerun_is_idempotent_and_the_source_is_protected(tmp_path):
    src = _source(tmp_path)
    first = resize_manifest(src / "m.csv", tmp_path / "out", 150, progress=False)
    stamp = os.stat(first.parent / "images_150/img/p1/a.png").st_mtime_ns
    text = first.read_text()
    again = resize_manifest(src / "m.csv", tmp_path / "out", 150, progress=False)
    assert again.read_text() == text and os.stat(first.parent / "images_150/img/p1/a.png").st_mtime_ns == stamp
    with pytest.raises(ValueError, match="source is never overwritten"):
        resize_manifest(src / "m.csv", src, 150, progress=False)


def test_bad_files_are_named(tmp_path, capsys):
    src = _source(tmp_path)
    (src / "img/p1/a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(SystemExit, match="a.jpg"):
        main(["resize", str(src / "m.csv"), "--size", "150", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out" / "m.csv").exists()  # nothing half-written
    path = resize_manifest(src / "m.csv", tmp_path / "out", 150, on_error="drop", progress=False)
    assert list(pd.read_csv(path)["id"]) == ["b"]
    assert str(src / "img/p1/a.jpg") in json.loads((path.parent / "resize_report.json").read_text())["bad_files"]


def test_resized_synthetic_manifest_loads_and_trains_from_the_dataset(synthetic_dir, tmp_path):
    path = resize_manifest(synthetic_dir / "manifest.csv", tmp_path / "small", 32, workers=2, progress=False)
    manifest = read_manifest(path, LABELS)  # checks every file exists
    assert (path.parent / "tokenizer").is_dir()
    original = read_manifest(synthetic_dir / "manifest.csv", LABELS)
    assert list(manifest.frame["id"]) == list(original.frame["id"])
    with_heatmap = int(np.flatnonzero(manifest.frame["heatmap"].astype(bool).to_numpy())[0])
    sample = ImageTextDataset(manifest, PairTransform(32, train=True))[with_heatmap]
    assert sample["image"].shape == (3, 32, 32) and sample["has_heatmap"]
    assert load_image(manifest.image_paths()[0]).shape == (1, 32, 32)  # 64 → 32


def test_resize_image_dicom_free_rgb_and_never_upscales(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (40, 60, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert resize_image(tmp_path / "c.png", tmp_path / "o/c.png", 100) == ((40, 60), (40, 60))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o/c.png")), rgb)  # lossless copy, colour kept


def test_resize_help_is_torch_free():
    from tests.test_cli import _help

    result = _help("resize", "--help")
    assert result["code"] == 0 and result["heavy"] == [] and "--size" in result["out"]


def test_prepare_resize_resamples_gaze_heatmaps_onto_resized_images(tmp_path):
    # egd-cxr renders heatmaps in the original 30 x 40 frame; with --resize 15 they follow the 15 x 20 images.
    from medalign.commands.prepare import run
    from medalign.prepare.gaze import fixations_to_heatmap
    from tests.prepare import fixtures

    mimic = run(["mimic-cxr", "--root", str(fixtures.mimic(tmp_path / "mimic")), "--out", str(tmp_path / "m")])
    egd = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1)])
    path = run(["egd-cxr", "--root", str(egd), "--manifest", str(mimic), "--out", str(tmp_path / "o"), "--resize", "15",
                "--sigma-px", "3"])  # fmt: skip
    row = pd.read_csv(path).set_index("id").loc["d1"]
    heatmap = np.load(path.parent / row["heatmap"])
    assert heatmap.shape == load_image(path.parent / row["image"]).shape[-2:] == (15, 20)
    full = fixations_to_heatmap([10], [20], [0.5], (30, 40), sigma=3.0)
    reference = full.reshape(15, 2, 20, 2).mean(axis=(1, 3))  # independent 2 x 2 block mean
    np.testing.assert_allclose(heatmap, reference / reference.max(), atol=0.05)
    assert heatmap.max() == pytest.approx(1.0)
