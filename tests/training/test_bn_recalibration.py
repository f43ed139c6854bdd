"""scripts/bn_recalibration_check.py: BatchNorm running statistics re-estimated as numpy computes them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import load_script


@pytest.fixture(scope="module")
def check():
    return load_script("bn_recalibration_check")


def test_recalibration_is_the_mean_of_the_batches_statistics_and_restores_the_layer(check):
    torch.manual_seed(0)
    tower = nn.Sequential(nn.BatchNorm2d(3, momentum=0.3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    tower.eval()
    layer = tower[0]
    layer.running_mean.fill_(5.0)  # stale statistics, as after foreign batches
    images = torch.randn(128, 3, 4, 4) * torch.tensor([1.0, 2.0, 0.5]).view(1, 3, 1, 1) + torch.tensor([0.3, -1.0, 2.0]).view(1, 3, 1, 1)
    check.recalibrate(tower, images, batch_size=64)
    x = images.numpy().transpose(1, 0, 2, 3).reshape(3, 2, -1)  # (C, batches, values)
    torch.testing.assert_close(layer.running_mean, torch.from_numpy(x.mean(axis=(1, 2))), rtol=1e-5, atol=1e-6)
    per_batch_var = x.var(axis=2, ddof=1)  # unbiased, as BatchNorm's running variance
    torch.testing.assert_close(layer.running_var, torch.from_numpy(per_batch_var.mean(axis=1)), rtol=1e-5, atol=1e-6)
    assert layer.momentum == 0.3 and not layer.training and not tower.training
    assert check.batchnorm_layers(nn.Sequential(nn.LayerNorm(3))) == []


def test_written_checkpoint_scores_what_recalibration_scored_and_keeps_the_weights(check, tmp_path, synthetic_dir):
    from medalign.models.checkpoint import load_checkpoint_file
    from tests.helpers import fit_tiny

    fit_tiny(tmp_path, synthetic_dir, "--model.init_args.model.preset", "tiny_cnn", "--trainer.max_steps", "3",
             "--trainer.limit_val_batches", "0")
    checkpoint = str(tmp_path / "ckpt" / "step3.ckpt")
    manifest = str(synthetic_dir / "manifest.csv")
    before = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    first = check.score(checkpoint, manifest, rows=64, seed=0, write=True)
    assert first["batchnorm_layers"] > 0 and first["written"].endswith("step3.bn_recalibrated.ckpt")
    original, written = load_checkpoint_file(checkpoint)["state_dict"], load_checkpoint_file(first["written"])["state_dict"]
    bn = {k for k in original if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert bn and set(written) == set(original)
    assert all(torch.equal(original[k], written[k]) for k in original if k not in bn)  # the weights as trained
    assert any(not torch.equal(original[k], written[k]) for k in bn if k.endswith("running_mean"))
    # through the normal checkpoint loader, the written file scores what the recalibrated model scored
    again = check.score(first["written"], manifest, rows=64, seed=0)
    assert again["f1_saved"] == pytest.approx(first["f1_recalibrated"], abs=1e-6)
    assert hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest() == before  # the original is untouched
