"""The suite's label policies: the run's ``data.blank`` / ``data.uncertain``, overridable per task."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from medalign.evaluation.encoders import MedAlignEncoder
from medalign.evaluation.suite import DataDefaults, LinearProbeTask, SuiteRunner, ZeroShotTask
from medalign.models import create_dual_encoder
from tests.conftest import LABELS


@pytest.fixture()
def runner(tmp_path, synthetic_dir, tokenizer):
    """A suite on a copy of the synthetic manifest whose test rows have blank negatives and one -1 per row."""
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    for column in ("image", "heatmap"):
        frame[column] = [os.path.relpath(synthetic_dir / p, tmp_path) if isinstance(p, str) and p else p for p in frame[column]]
    test = (frame["split"] == "test").to_numpy()
    values = frame[LABELS].to_numpy(dtype=float)
    rows = np.flatnonzero(test)
    values[rows[::3], 0] = -1  # every third test row: Atelectasis uncertain
    values[test[:, None] & (values == 0)] = np.nan  # the rest of the negatives: not mentioned
    frame[LABELS] = values
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    torch.manual_seed(0)
    encoder = MedAlignEncoder(create_dual_encoder("tiny", vocab_size=len(tokenizer)), tokenizer, max_length=32, image_size=64)
    defaults = DataDefaults(manifest=str(path), label_columns=LABELS, prompts="prompts/chexpert5.json", allow_outside_paths=True)
    return SuiteRunner(encoder, defaults, tmp_path / "out", tmp_path / "cache", batch_size=16, progress=False), values[test]


def test_zero_shot_population_follows_the_policies(runner):
    runner, raw = runner
    positives = (raw == 1).sum(1)
    # independent counts on the raw cells
    default_n = int((positives == 1).sum())  # uncertain → 0 and blank → 0: only the 1-cells count
    subset_n = int(((positives == 1) & ~(raw == -1).any(1)).sum())  # uncertain left out, blank → 0
    assert subset_n < default_n

    record = runner.run(ZeroShotTask())
    assert record["label_policy"] == {"uncertain": "zeros", "blank": "zeros"} and record["n"] == default_n
    record = runner.run(ZeroShotTask(name="strict", uncertain="ignore"))
    assert record["label_policy"] == {"uncertain": "ignore", "blank": "zeros"} and record["n"] == subset_n
    with pytest.raises(ValueError, match="no row is positive for exactly one"):  # every test row has a blank
        runner.run(ZeroShotTask(name="blank_ignored", blank="ignore"))

    emb = runner.embeddings(runner.defaults.manifest, "test", LABELS, LinearProbeTask(blank="ignore"))
    np.testing.assert_array_equal(np.isnan(emb.labels), np.isnan(raw))  # the probe sees blanks as unknown on request
    with pytest.raises(ValueError, match=r"evaluation task 'linear_probe': blank must be one of"):
        runner.embeddings(runner.defaults.manifest, "test", LABELS, LinearProbeTask(blank="drop"))
