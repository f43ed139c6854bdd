"""eCLIP end to end through the CLI: exact resume mid warm-up, and every method / ablation config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from medalign.training.cli import cli_main
from medalign.training.eclip import ECLIPModule
from medalign.paths import CONFIG_DIR
from tests.helpers import fit_tiny

TINY = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")
TABLE4_ROWS = sorted(p.stem for p in (CONFIG_DIR / "table4").glob("*.yaml"))


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _fit(tmp_path, synthetic_dir, *extra, config=TINY):
    return fit_tiny(tmp_path, synthetic_dir, *extra, config=config)


@pytest.mark.slow
def test_resume_mid_warmup_restores_p_curr_expert_count_and_weights(tmp_path, synthetic_dir, monkeypatch):
    plans: dict[str, dict[int, tuple[float, bool]]] = {"a": {}, "b": {}}
    run = "a"
    original = ECLIPModule.compute_losses

    def recording(self, batch, out):
        terms = original(self, batch, out)
        logs = self.step_logs(terms)  # what this step logs
        plans[run][self.global_step] = (logs["p_curr"], logs["expert_used"], int(self.expert_pairs_seen))
        return terms

    monkeypatch.setattr(ECLIPModule, "compute_losses", recording)
    full = _fit(tmp_path / "a", synthetic_dir, "--trainer.limit_val_batches", "0")
    assert full.trainer.global_step == 10 and full.model.total_steps == 10
    assert [round(plans["a"][s][0], 6) for s in range(5)] == [0.0, 0.05, 0.2, 0.35, 0.5]  # cold start, warm-up
    assert any(plans["a"][s][1] for s in range(10)), "no expert step drawn: the test would prove nothing"
    run = "b"
    mid_warmup = tmp_path / "a" / "ckpt" / "step3.ckpt"  # progress 0.3
    resumed = _fit(tmp_path / "b", synthetic_dir, "--trainer.limit_val_batches", "0", "--ckpt_path", str(mid_warmup))
    assert min(plans["b"]) == 3 and plans["b"] == {s: plans["a"][s] for s in range(3, 10)}
    assert int(resumed.model.expert_pairs_seen) == int(full.model.expert_pairs_seen) > 0
    a, b = full.model.state_dict(), resumed.model.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{key} differs after resume")


@pytest.mark.slow
@pytest.mark.parametrize("row", TABLE4_ROWS)
def test_every_table4_row_trains_through_the_cli(tmp_path, synthetic_dir, row):
    """Two fitted steps at p = 1: the expert pairs counted, and the processor moved iff it has weights and ran."""
    cli = _fit(tmp_path, synthetic_dir, "--config", str(CONFIG_DIR / "table4" / f"{row}.yaml"),
               "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
               "--model.curriculum", "{cold_start: 0.0, warmup: 0.0, cooldown: 0.0, floor: 1.0}")  # p = 1 from step 0
    assert cli.trainer.global_step == 2
    assert int(cli.model.expert_pairs_seen) == (0 if row == "base" else 2 * 8)  # every step appends M = 8 pairs
    processor = cli.model.processor
    assert (processor is None) == (row == "base")
    if processor is not None:  # AdamW keeps state only for parameters that received a gradient
        state = cli.trainer.optimizers[0].state
        assert all(len(state[p]) > 0 for p in processor.parameters())  # mask: no parameters, vacuous


@pytest.mark.slow
def test_demo_config_trains_a_few_steps(tmp_path, synthetic_dir):
    cli = _fit(tmp_path, synthetic_dir, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
               "--data.num_workers", "0", "--data.expert_num_workers", "0", "--data.synthetic", "null",
               config=str(CONFIG_DIR / "demo_eclip.yaml"))
    assert cli.trainer.global_step == 2 and isinstance(cli.model, ECLIPModule)


def test_paper_configs_carry_the_papers_values(synthetic_dir):
    cli = cli_main(["--config", "eclip_swin.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    hp = cli.model.hparams
    assert (hp.model["preset"], hp.lr, hp.method, hp.processor, hp.mixup_alpha, hp.priming_weight) == ("swin_t", 2e-4, "eclip", "mha", 0.3, 0.1)
    assert cli.model.schedule == {"cold_start": 0.1, "warmup": 0.3, "cooldown": 0.4, "start": 0.05, "peak": 0.5, "floor": 0.1}
    assert cli.model.processor.patch_embed.out_channels == 256 and cli.model.processor.attention.num_heads == 8
    assert cli.datamodule.hparams.expert_stream and cli.datamodule.expert_batch_size == 32
    assert cli.trainer.max_steps == 10_000
    swin = yaml.safe_load((CONFIG_DIR / "eclip_swin.yaml").read_text())
    for name, preset in (("eclip_vit_s", "vit_s"), ("eclip_vit_b", "vit_b")):
        other = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
        assert other["model"]["init_args"]["model"]["preset"] == preset
        other["model"]["init_args"]["model"]["preset"] = "swin_t"
        assert other["model"]["init_args"] == swin["model"]["init_args"] and other["data"] == swin["data"]
    assert cli.model.priming_end == 0.1  # priming over the curriculum's cold start
    for path in CONFIG_DIR.rglob("*.yaml"):  # plain DDP works for every method (tests/training/test_ddp.py)
        assert "ddp_find_unused_parameters" not in path.read_text(), path
    p = yaml.safe_load((CONFIG_DIR / "eclip_p_swin.yaml").read_text())
    assert p["trainer"]["max_steps"] == 1000 and p["model"]["init_args"]["lr"] == 1e-5
    assert "init_from" in p["model"]["init_args"]
