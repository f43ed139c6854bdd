"""Reproduction hazards: paper presets without pretrained towers or at a global batch other than 512."""

from __future__ import annotations

import logging
import sys
from types import SimpleNamespace
from unittest import mock

import lightning as L
import pytest

from medalign.training.cli import cli_main
from medalign.training.hazards import find_reproduction_hazards, warn_reproduction_hazards
from medalign.training.module import ContrastiveModule

READY = dict(image_weights="/w/swin.safetensors", text_model="/m/Bio_ClinicalBERT", init_from=None)


def test_a_faithful_paper_run_has_no_hazards():
    assert find_reproduction_hazards("swin_t", **READY, batch_size=64, devices=8) == []
    assert find_reproduction_hazards("vit_b", **READY, batch_size=32, devices=4, num_nodes=2, accumulate_grad_batches=2) == []
    assert find_reproduction_hazards("tiny", None, None, None, batch_size=32, devices=1) == []  # not a paper architecture


def test_random_towers_are_named_with_the_flag_that_fixes_them():
    image, text = find_reproduction_hazards("vit_s", None, None, None, batch_size=64, devices=8)
    assert "image tower is randomly initialised" in image and "--model.image_weights" in image
    assert "ClinicalBERT" in text and "--model.text_model" in text
    assert find_reproduction_hazards("swin_t", None, None, "clip.ckpt", batch_size=64, devices=8) == []  # towers from a checkpoint


@pytest.mark.parametrize("batch,devices,nodes,accumulate,global_batch,fix", [
    (64, 1, 1, 1, 64, "--trainer.accumulate_grad_batches 8"),
    (64, 2, 1, 2, 256, "--trainer.accumulate_grad_batches 4"),  # 64 × 2 per step: 4 steps make 512
    (48, 8, 1, 1, 384, "--data.batch_size 64"),
    (64, 3, 1, 1, 192, "choose devices × nodes dividing 512"),
])
def test_global_batch_counts_devices_nodes_and_accumulation(batch, devices, nodes, accumulate, global_batch, fix):
    (hazard,) = find_reproduction_hazards("swin_t", **READY, batch_size=batch, devices=devices, num_nodes=nodes,
                                          accumulate_grad_batches=accumulate)
    assert f"= {global_batch}, the paper's is 512" in hazard and fix in hazard


def test_paper_config_on_one_device_warns_loudly(synthetic_dir, caplog, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    cli = cli_main(["--config", "eclip_swin.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv"),
                    "--trainer.accelerator", "cpu", "--trainer.devices", "1"], run=False)
    trainer = SimpleNamespace(num_devices=1, num_nodes=1, accumulate_grad_batches=1, datamodule=cli.datamodule)
    with caplog.at_level(logging.WARNING, logger="medalign.training.hazards"):
        hazards = warn_reproduction_hazards(cli.model.hparams, trainer)
    assert len(hazards) == 3
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 3 and all(m.startswith("REPRODUCTION HAZARD") for m in messages)
    assert any("= 64, the paper's is 512" in m and "accumulate_grad_batches 8" in m for m in messages)


def test_fit_setup_checks_the_hazards():
    module = ContrastiveModule(preset="tiny", vocab_size=64)
    module.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                               enable_progress_bar=False, enable_model_summary=False)
    with mock.patch("medalign.training.module.warn_reproduction_hazards") as warn:
        module.setup("validate")
        assert warn.call_count == 0
        module.setup("fit")
    warn.assert_called_once_with(module.hparams, module.trainer)


def test_expert_sub_batch_follows_half_the_batch_or_is_named():
    assert find_reproduction_hazards("swin_t", **READY, batch_size=64, devices=8, expert_batch_size=32) == []
    odd = find_reproduction_hazards("swin_t", **READY, batch_size=63, devices=8, expert_batch_size=31)  # N // 2
    assert len(odd) == 1 and "expert" not in odd[0]
    (hazard,) = find_reproduction_hazards("swin_t", **READY, batch_size=64, devices=8, expert_batch_size=16)
    assert "128 expert pairs per expert step against a global batch of 512 (0.25× the batch)" in hazard
    assert "--data.expert_batch_size null (= data.batch_size // 2 = 32)" in hazard
    global_batch, expert = find_reproduction_hazards("swin_t", **READY, batch_size=4, devices=1, expert_batch_size=32)
    assert "= 4, the paper's" in global_batch and "(8× the batch)" in expert  # the old fixed 32 at a CPU batch of 4


def test_paper_eclip_configs_derive_the_expert_sub_batch_from_the_batch(synthetic_dir, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    for extra, expected in (([], 2), (["--data.expert_batch_size", "32"], 32)):
        cli = cli_main(["--config", "eclip_swin.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv"),
                        "--data.batch_size", "4", "--trainer.accelerator", "cpu", "--trainer.devices", "1", *extra], run=False)
        assert cli.datamodule.expert_batch_size == expected
        trainer = SimpleNamespace(num_devices=1, num_nodes=1, accumulate_grad_batches=1, datamodule=cli.datamodule)
        hazards = warn_reproduction_hazards(cli.model.hparams, trainer)
        assert any("expert sub-batch" in h for h in hazards) == (expected != 2)
