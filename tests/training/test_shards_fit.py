"""`data.format: shards`: same epoch as the manifest, DDP split, exact resume, expert stream, `fit`."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from medalign.training.datamodule import MedAlignDataModule
from tests.data.test_shards import shards_dir  # noqa: F401 - the session fixture
from tests.helpers import fit_tiny

TINY_ECLIP = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _datamodule(synthetic_dir, shards=None, world=1, rank=0, batch_size=16, **kwargs) -> MedAlignDataModule:
    source = dict(format="shards", shards=str(shards), tokenizer=str(synthetic_dir / "tokenizer")) if shards else dict(
        manifest=str(synthetic_dir / "manifest.csv")
    )
    dm = MedAlignDataModule(**source, image_size=32, batch_size=batch_size, max_length=32, num_workers=0, **kwargs)
    dm.trainer = SimpleNamespace(world_size=world, global_rank=rank) if world > 1 else None  # stands in for DDP
    dm.setup("fit")
    return dm


def _epoch(dm, state=None) -> list[list[int]]:
    if state is not None:
        dm.load_state_dict(state)
    return [b["index"].tolist() for b in dm.train_dataloader()]


def _train_ids(synthetic_dir) -> set[int]:
    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    return set(frame.index[frame["split"] == "train"])  # the row number is the id the batches carry


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_an_epoch_from_shards_serves_the_manifest_pairs(synthetic_dir, shards_dir, fraction):
    manifest = _epoch(_datamodule(synthetic_dir, train_fraction=fraction))
    shards = _epoch(_datamodule(synthetic_dir, shards_dir, train_fraction=fraction))
    if fraction == 1.0:
        assert {i for batch in shards for i in batch} == _train_ids(synthetic_dir)  # 160 rows = 10 full batches
    assert shards == manifest  # the same pairs, in the same order


def test_two_ranks_split_the_epoch_without_overlap(synthetic_dir, shards_dir):
    ranks = [{i for batch in _epoch(_datamodule(synthetic_dir, shards_dir, world=2, rank=r)) for i in batch} for r in (0, 1)]
    assert not ranks[0] & ranks[1]
    assert ranks[0] | ranks[1] == _train_ids(synthetic_dir)  # 160 = 2 ranks × 5 batches × 16: nothing dropped
    assert len(ranks[0]) == len(ranks[1]) == 80


def test_two_ranks_drop_the_same_tail_as_the_manifest(synthetic_dir, shards_dir):
    """batch 48: each rank keeps ⌊80 / 48⌋ = 1 batch; the dropped rows are those the manifest path drops."""
    for rank in (0, 1):
        kwargs = dict(world=2, rank=rank, batch_size=48)
        got = _epoch(_datamodule(synthetic_dir, shards_dir, **kwargs))
        assert got == _epoch(_datamodule(synthetic_dir, None, **kwargs)) and len(got) == 1 and len(got[0]) == 48


def test_resume_mid_epoch_continues_the_stream_exactly(synthetic_dir, shards_dir):
    def pairs(dm, state=None):
        if state is not None:
            dm.load_state_dict(state)
        return [(b["main"]["index"].tolist(), b["expert"]["index"].tolist()) for b, *_ in dm.train_dataloader()]

    full = pairs(_datamodule(synthetic_dir, shards_dir, expert_stream=True))
    resumed = pairs(_datamodule(synthetic_dir, shards_dir, expert_stream=True), {"epoch": 0, "batches": 4, "batch_size": 16})
    assert resumed == full[4:] and len(full) == 10


def test_expert_stream_from_shards_serves_annotated_pairs_with_heatmaps(synthetic_dir, shards_dir):
    dm = _datamodule(synthetic_dir, shards_dir, expert_stream=True)
    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    annotated = set(frame.index[(frame["split"] == "train") & (frame["heatmap"] != "")])
    batch, *_ = next(iter(dm.train_dataloader()))
    assert batch["expert"]["has_heatmap"].all() and set(batch["expert"]["index"].tolist()) <= annotated
    assert (batch["expert"]["heatmap"].amax(dim=(1, 2, 3)) > 0).all()


def test_shards_without_a_manifest_train_but_test_asks_for_it(synthetic_dir, shards_dir):
    dm = _datamodule(synthetic_dir, shards_dir)
    assert "val" in dm.datasets and dm.manifest is None
    with pytest.raises(ValueError, match="pass --data.manifest as well"):
        dm.manifest_path
    with pytest.raises(ValueError, match="data.shards is unset"):
        MedAlignDataModule(format="shards", manifest=str(synthetic_dir / "manifest.csv"))


@pytest.mark.slow
def test_fit_one_epoch_from_shards_and_resume_from_a_mid_epoch_checkpoint(tmp_path, synthetic_dir, shards_dir, monkeypatch):
    """eCLIP from shards with p = 1 from step 0: every step adds its 8 expert pairs; resume finishes the same epoch."""
    seen: dict[str, list[list[int]]] = {"a": [], "b": []}
    run = "a"
    from medalign.training.eclip import ECLIPModule

    original = ECLIPModule.compute_losses

    def recording(self, batch, out):
        seen[run].append(batch["main"]["index"].tolist() if "main" in batch else batch["index"].tolist())
        return original(self, batch, out)

    monkeypatch.setattr(ECLIPModule, "compute_losses", recording)
    args = ("--data.format", "shards", "--data.shards", str(shards_dir), "--trainer.max_epochs", "1",
            "--trainer.limit_val_batches", "0", "--model.curriculum", "{cold_start: 0.0, warmup: 0.0, cooldown: 0.0, floor: 1.0}")
    full = fit_tiny(tmp_path / "a", synthetic_dir, *args, config=TINY_ECLIP)
    assert full.trainer.global_step == 5  # 160 train rows / batch 32
    assert int(full.model.expert_pairs_seen) == 5 * 8
    assert sorted(i for batch in seen["a"] for i in batch) == sorted(_train_ids(synthetic_dir))
    run = "b"
    resumed = fit_tiny(tmp_path / "b", synthetic_dir, *args, "--ckpt_path", str(tmp_path / "a" / "ckpt" / "step3.ckpt"),
                       config=TINY_ECLIP)
    assert resumed.trainer.global_step == 5 and seen["b"] == seen["a"][3:]
    torch.testing.assert_close(resumed.model.state_dict(), full.model.state_dict(), rtol=0, atol=0)
