"""The blank policy reaches validation zero-shot: blank cells in non-target classes keep their rows."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from medalign.evaluation.tasks.zero_shot import zero_shot_classify
from medalign.training.datamodule import MedAlignDataModule
from tests.conftest import LABELS


@pytest.fixture()
def blanked(tmp_path, synthetic_dir):
    """The synthetic manifest with every val row's negative cells blanked (not mentioned)."""
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    for column in ("image", "heatmap"):
        frame[column] = [os.path.relpath(synthetic_dir / p, tmp_path) if isinstance(p, str) and p else p for p in frame[column]]
    val = frame["split"] == "val"
    for c in LABELS:
        frame.loc[val & (frame[c] == 0), c] = np.nan
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    return path, frame[val]


def _val_labels(path, synthetic_dir, blank):
    dm = MedAlignDataModule(manifest=str(path), tokenizer=str(synthetic_dir / "tokenizer"), label_columns=LABELS,
                            prompts="prompts/chexpert5.json", image_size=64, batch_size=8, num_workers=0, blank=blank,
                            allow_outside_paths=True)  # the rows point into the shared synthetic folder
    dm.setup("validate")
    return torch.cat([batch["labels"] for batch in dm.val_dataloader()]).numpy()  # (N_val, K), the batch contract


def test_validation_zero_shot_keeps_rows_with_blank_negatives(blanked, synthetic_dir):
    path, val = blanked
    raw = val[LABELS].to_numpy()
    # independent count: rows with exactly one positive cell (blank and 0 both not positive; no -1 in synthetic data)
    single = int(((raw == 1).sum(1) == 1).sum())
    assert np.isnan(raw).any() and single >= 10
    rng = np.random.default_rng(0)
    prompts = [torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(2, 8)).astype(np.float32)), dim=-1) for _ in LABELS]

    labels = _val_labels(path, synthetic_dir, "zeros")
    assert not np.isnan(labels).any()
    image = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(len(labels), 8)).astype(np.float32)), dim=-1)
    assert zero_shot_classify(image, labels, prompts, LABELS)["n"] == single

    ignored = _val_labels(path, synthetic_dir, "ignore")  # the old behaviour: a blank anywhere drops the row
    with pytest.raises(ValueError, match="no row is positive for exactly one"):
        zero_shot_classify(image, ignored, prompts, LABELS)


def test_bad_blank_policy_names_the_key(synthetic_dir):
    with pytest.raises(ValueError, match=r"data.blank must be one of \('zeros', 'ignore'\), got 'drop'"):
        MedAlignDataModule(manifest=str(synthetic_dir / "manifest.csv"), blank="drop")
