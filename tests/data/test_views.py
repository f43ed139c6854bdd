"""`data.views: 2`: a second augmented view per train sample, deterministic per (seed, epoch, row)."""

from __future__ import annotations

import pytest
import torch

from medalign.data.dataset import Collator
from medalign.training.datamodule import MedAlignDataModule

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def _datamodule(synthetic_dir, **kwargs) -> MedAlignDataModule:
    dm = MedAlignDataModule(manifest=str(synthetic_dir / "manifest.csv"), label_columns=LABELS, image_size=32,
                            batch_size=4, num_workers=0, **kwargs)
    dm.setup("fit")
    return dm


def test_second_view_is_seeded_by_epoch_and_row_and_only_on_train(synthetic_dir, tokenizer):
    dm = _datamodule(synthetic_dir, views=2, view_crop_scale=(0.3, 0.5))
    train = dm.datasets["train"]
    a, b = train[(0, 3)], train[(0, 3)]
    assert a["image_view2"].shape == a["image"].shape == (3, 32, 32)
    torch.testing.assert_close(a["image_view2"], b["image_view2"])  # same key → same view
    assert not torch.equal(a["image_view2"], a["image"])  # a different crop of the same image
    assert not torch.equal(train[(1, 3)]["image_view2"], a["image_view2"])  # a new epoch → a new crop
    assert "image_view2" not in dm.datasets["val"][0]
    plain = _datamodule(synthetic_dir)
    torch.testing.assert_close(plain.datasets["train"][(0, 3)]["image"], a["image"])  # view 1 untouched
    batch = Collator(tokenizer, 16)([train[(0, i)] for i in range(3)])
    assert batch["image_view2"].shape == (3, 3, 32, 32)
    assert "image_view2" not in Collator(tokenizer, 16)([plain.datasets["train"][(0, 0)]])


def test_views_must_be_one_or_two(synthetic_dir):
    with pytest.raises(ValueError, match="data.views must be 1 or 2"):
        MedAlignDataModule(manifest=str(synthetic_dir / "manifest.csv"), views=3)
