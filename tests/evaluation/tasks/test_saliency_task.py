"""Saliency–gaze agreement end to end on the synthetic test rows with gaze."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medalign.evaluation.tasks.saliency import randomised, saliency_agreement, score_maps
from medalign.metrics.saliency import nss


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, synthetic_dir):
    from tests.helpers import fit_tiny

    tmp = tmp_path_factory.mktemp("saliency")
    fit_tiny(tmp, synthetic_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "1")
    return tmp / "ckpt" / "step3.ckpt"


@pytest.mark.parametrize("variant", ["mit", "medalign"])
def test_score_maps_rewards_the_expert_map_itself(variant):
    from medalign.metrics.saliency import binarize, nss_fixations

    g = torch.Generator().manual_seed(0)
    heat = torch.rand(4, 16, 16, generator=g) ** 4
    perfect = score_maps(heat, heat, variant=variant)
    noise = score_maps(torch.rand(4, 16, 16, generator=g), heat, variant=variant)
    assert (perfect["cc"] > 0.99).all() and (perfect["sim"] > 0.99).all() and (perfect["kld"] < 1e-4).all()
    assert (perfect["nss"] > noise["nss"]).all() and (perfect["auc"] > noise["auc"]).all()
    expected = [nss_fixations(heat[i], binarize(heat[i])) if variant == "mit" else nss(heat[i], heat[i]) for i in range(4)]
    assert np.allclose(perfect["nss"], expected, rtol=1e-5)  # MIT: z-scored saliency at the fixations


def test_randomised_changes_every_weight_but_not_the_original():
    from medalign.models import create_dual_encoder

    model = create_dual_encoder("tiny", vocab_size=40, embed_dim=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    clone = randomised(model, seed=1)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    changed = [k for k, v in clone.state_dict().items() if v.is_floating_point() and v.numel() > 1 and not torch.equal(v, before[k])]
    assert "image_projection.weight" in changed and "image_encoder.backbone.pos_embed" in changed


def test_agreement_on_synthetic_gaze_rows(tiny_ckpt, synthetic_dir, tmp_path):
    from medalign.evaluation.encoders import load_checkpoint_encoder
    from medalign.data.manifest import read_manifest

    encoder = load_checkpoint_encoder(tiny_ckpt)
    manifest = synthetic_dir / "manifest.csv"
    result = saliency_agreement(encoder, manifest, "test", "gradcam", batch_size=8, panels=3, out_dir=tmp_path, progress=False)
    frame = read_manifest(manifest, check_files=False).split("test").frame
    assert result["n"] == int((frame["heatmap"].astype(str) != "").sum()) > 0
    for source in ("model", "centre_prior", "random_model"):
        assert 0.0 <= result[source]["auc_mean"] <= 1.0 and result[source]["kld_mean"] >= 0
    assert (tmp_path / result["panels"]).is_file()
    rollout = saliency_agreement(encoder, manifest, "test", "rollout", limit=2, baselines=False, progress=False)
    assert rollout["n"] == 2 < result["n"] and "centre_prior" not in rollout


def test_split_without_gaze_names_the_fix(tiny_ckpt, synthetic_dir):
    from medalign.evaluation.encoders import load_checkpoint_encoder

    encoder = load_checkpoint_encoder(tiny_ckpt)
    with pytest.raises(ValueError, match="test-heatmap-fraction"):
        saliency_agreement(encoder, synthetic_dir / "manifest.csv", "val", progress=False)


def test_saliency_command_writes_json_table_and_panels(tiny_ckpt, synthetic_dir, tmp_path, capsys):
    from medalign.cli import main

    main(["saliency", "--ckpt", str(tiny_ckpt), "--manifest", str(synthetic_dir / "manifest.csv"),
          "--limit", "6", "--panels", "2", "--out", str(tmp_path), "--text", "prompt"])
    saved = json.loads((tmp_path / "saliency.json").read_text())
    import pandas as pd

    from medalign.synthetic.findings import LABELS

    frame = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)
    gaze = frame[(frame["split"] == "test") & (frame["heatmap"] != "")]
    single = int((gaze[list(LABELS)].sum(axis=1) == 1).sum())  # rows with exactly one positive class
    assert saved["text"] == "prompt" and saved["n"] == min(6, single) and saved["skipped"] == len(gaze) - single
    assert "| model |" in (tmp_path / "saliency.md").read_text()
    assert (tmp_path / "saliency_gradcam.png").is_file()
