from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medalign.data.dataset import Collator, ImageTextDataset, clean_report
from medalign.data.manifest import read_manifest
from medalign.data.skips import TooManyBadRows
from medalign.training.sampler import EpochSampler
from medalign.data.transforms import PairTransform, random_crop_box
from tests.conftest import LABELS


def _manifest(tmp_path, heatmap=None, image=None, n=2):
    img = image if image is not None else (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8)
    rows = []
    for i in range(n):
        Image.fromarray(img).save(tmp_path / f"i{i}.png")
        hm = ""
        if heatmap is not None:
            np.save(tmp_path / f"h{i}.npy", heatmap)
            hm = f"h{i}.npy"
        rows.append(f"i{i}.png,  Small   left effusion. ,train,{hm},1")
    (tmp_path / "m.csv").write_text("image,text,split,heatmap,Edema\n" + "\n".join(rows) + "\n")
    return read_manifest(tmp_path / "m.csv", ["Edema"])


def test_heatmap_follows_the_image_crop_exactly(tmp_path):
    # the heatmap equals the (normalised) image, so after the joint crop they must still agree
    raw = np.random.default_rng(0).integers(1, 255, size=(48, 64)).astype(np.uint8)
    ds = ImageTextDataset(
        _manifest(tmp_path, heatmap=raw.astype(np.float32) / 255.0, image=raw),
        PairTransform(32, train=True, crop_scale=(0.3, 0.6), mean=(0, 0, 0), std=(1, 1, 1)),
    )
    crops = set()
    for epoch in range(3):
        item = ds[(epoch, 0)]
        scaled = item["heatmap"][0] * raw.max() / 255.0  # heatmaps are normalised to max 1
        torch.testing.assert_close(item["image"][0], scaled, atol=2e-3, rtol=0)
        crops.add(round(float(item["image"].mean()), 5))
    assert len(crops) == 3  # a different random crop each epoch
    # same (epoch, row) → same crop, whatever process asks
    torch.testing.assert_close(ds[(1, 0)]["image"], ds[(1, 0)]["image"])


def test_item_contract_and_collation(synthetic_dir, tokenizer):
    manifest = read_manifest(synthetic_dir / "manifest.csv", LABELS).split("train")
    ds = ImageTextDataset(manifest, PairTransform(64, train=True))
    batch = Collator(tokenizer, max_length=16)([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 64, 64) and batch["heatmap"].shape == (4, 1, 64, 64)
    assert batch["input_ids"].shape[1] <= 16 and batch["input_ids"].shape == batch["attention_mask"].shape
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert batch["labels"].shape == (4, 5) and batch["has_heatmap"].dtype == torch.bool
    assert batch["index"].tolist() == manifest.frame.index[:4].tolist()
    heat_rows = np.flatnonzero(manifest.frame["heatmap"].to_numpy() != "")
    item = ds[int(heat_rows[0])]
    assert item["has_heatmap"] and float(item["heatmap"].max()) <= 1.0 and float(item["heatmap"].max()) > 0.5


def test_text_is_cleaned():
    assert clean_report("  Small \n left\teffusion. ") == "Small left effusion."


@pytest.mark.parametrize(
    "heatmap,match",
    [
        (np.ones((10, 10), np.float32), r"row 0: heatmap .*h0.npy has shape \(10, 10\) but its image is \(48, 64\)"),
        (np.full((48, 64), np.nan, np.float32), "contains NaN or Inf"),
        (np.zeros((48, 64), np.float32), "all zeros"),
    ],
)
def test_bad_heatmaps_name_the_row(tmp_path, heatmap, match):
    ds = ImageTextDataset(_manifest(tmp_path, heatmap=heatmap), PairTransform(32))
    with pytest.raises(ValueError, match=match):
        ds[0]


def test_corrupt_image_raises_or_is_skipped_and_reported(tmp_path):
    manifest = _manifest(tmp_path, n=3)
    (tmp_path / "i1.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match=r"row 1: cannot read image .*i1.png"):
        ImageTextDataset(manifest, PairTransform(32))[1]
    ds = ImageTextDataset(manifest, PairTransform(32), on_error="skip", max_skip_share=0.5)
    sample = ds[1]
    assert sample["index"] == 2  # replaced by the next readable row
    assert [(r.row, Path(r.path).name) for r in sample["bad_rows"]] == [(1, "i1.png")]
    assert "bad_rows" not in ds[0]
    # a worker that knows more than the share of rows to be bad stops, naming the share
    (tmp_path / "i2.png").write_bytes(b"")
    with pytest.raises(TooManyBadRows, match=r"2 unreadable rows .*max_skip_share = 0.5 of 3 rows"):
        ds[2]


def test_skip_never_serves_a_row_twice_in_one_batch(tmp_path, tokenizer):
    manifest = _manifest(tmp_path, n=6)
    for i in (1, 2):
        (tmp_path / f"i{i}.png").write_bytes(b"broken")
    ds = ImageTextDataset(manifest, PairTransform(32), on_error="skip", max_skip_share=0.5)
    # rows 1 and 2 are bad; the naive "next readable row" would give 3 three times
    samples = ds.__getitems__([(0, 1), (0, 2), (0, 3)])
    rows = [s["index"] for s in samples]
    assert rows == [4, 5, 3]  # stand-ins skip the rows the batch asked for and each other
    batch = Collator(tokenizer, max_length=16)(samples)
    assert [r.row for r in batch["bad_rows"]] == [1, 2]
    assert batch["index"].tolist() == [4, 5, 3]


def test_sampler_shards_are_disjoint_equal_and_deterministic():
    shards = [list(EpochSampler(103, seed=5, num_replicas=3, rank=r)) for r in range(3)]
    assert all(len(s) == 34 for s in shards)
    flat = [i for s in shards for _, i in s]
    assert len(set(flat)) == len(flat) == 102
    assert shards[0] == list(EpochSampler(103, seed=5, num_replicas=3, rank=0))
    other = EpochSampler(103, seed=5, num_replicas=3, rank=0)
    other.set_epoch(1)
    assert [i for _, i in other] != [i for _, i in shards[0]] and all(e == 1 for e, _ in other)


def test_sampler_skip_resumes_mid_epoch_once():
    sampler = EpochSampler(20, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.skip(2, 8)
    assert list(sampler) == full[8:]
    assert list(sampler) == full  # the skip applies to one iteration only
    sampler.skip(1, 8)  # a stale epoch is ignored
    assert list(sampler) == full


def test_random_crop_box_within_bounds_and_seeded():
    g = torch.Generator().manual_seed(0)
    boxes = [random_crop_box(48, 64, (0.08, 1.0), (0.75, 1.33), g) for _ in range(50)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 48 and 0 <= left and left + w <= 64
    g = torch.Generator().manual_seed(0)
    assert boxes[0] == random_crop_box(48, 64, (0.08, 1.0), (0.75, 1.33), g)
