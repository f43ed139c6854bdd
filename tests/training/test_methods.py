"""DACL, m³-mix, SigLIP and the gap-closing terms in `ContrastiveModule`: each term changes the
gradient, each config trains through the CLI and logs its term, and they compose with eCLIP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from medalign.training.module import ContrastiveModule
from tests.helpers import fit_tiny

TINY_ECLIP = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OPTIONS = {  # option → the loss term it adds
    "dacl": ({"dacl_weight": 1.0}, "dacl_loss"),
    "m3mix": ({"m3mix_weight": 1.0}, "m3mix_loss"),
    "align": ({"align_weight": 1.0}, "align_loss"),
    "centroid": ({"centroid_uniformity_weight": 1.0}, "centroid_uniformity_loss"),
    "siglip": ({"loss": "siglip", "init_temperature": 0.1}, "siglip_loss"),
}


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _batch(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, 64, 64, generator=g), "input_ids": torch.randint(5, 100, (n, 12), generator=g),
            "attention_mask": torch.ones(n, 12, dtype=torch.long), "index": torch.arange(n)}


def _grads(**options) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    module = ContrastiveModule(preset="tiny", vocab_size=100, text_config=NO_DROPOUT, **options)
    batch = _batch()
    out = module(batch)
    terms = {**module.compute_losses(batch, out), **module.objective_terms(batch, out)}
    torch.stack(list(terms.values())).sum().backward()
    return terms, {k: p.grad.clone() for k, p in module.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_adds_its_term_and_changes_the_gradient(name):
    options, term = OPTIONS[name]
    base_terms, base = _grads()
    terms, grads = _grads(**options)
    assert set(base_terms) == {"clip_loss"}
    assert term in terms and torch.isfinite(terms[term]) and float(terms[term]) != 0.0
    changed = [k for k in base if not torch.allclose(base[k], grads[k], rtol=1e-4, atol=1e-7)]
    assert len(changed) > 10, f"{name} left the gradient unchanged"


def test_gap_warmup_ramps_the_weights_linearly(monkeypatch):
    module = ContrastiveModule(preset="tiny", vocab_size=100, align_weight=2.0, gap_warmup_fraction=0.5)
    step = {"now": 0}
    monkeypatch.setattr(module, "_trainer", type("FakeTrainer", (), {"estimated_stepping_batches": 100})())
    monkeypatch.setattr(ContrastiveModule, "global_step", property(lambda self: step["now"]))
    for step["now"], factor in ((0, 0.0), (25, 0.5), (50, 1.0), (90, 1.0)):
        assert module.gap_weight_factor() == pytest.approx(factor)


@pytest.mark.parametrize(
    "bad, key",
    [({"loss": "hinge"}, "model.loss"), ({"align_weight": -1.0}, "model.align_weight"),
     ({"dacl_range": (0.3, 1.0)}, "model.dacl_range"), ({"gap_warmup_fraction": 1.0}, "gap_warmup_fraction")],
)
def test_bad_objective_options_name_the_key(bad, key):
    with pytest.raises(ValueError, match=key):
        ContrastiveModule(preset="tiny", vocab_size=100, **bad)


def test_siglip_bias_is_learned_without_weight_decay():
    module = ContrastiveModule(preset="tiny", vocab_size=100, loss="siglip")
    assert float(module.logit_bias) == -10.0
    groups = module.param_groups()
    assert any(g["params"] == [module.logit_bias] and g["weight_decay"] == 0.0 for g in groups)
    assert ContrastiveModule(preset="tiny", vocab_size=100).logit_bias is None  # CLIP's state dict is unchanged


def _fit(tmp_path, synthetic_dir, *extra, **kw):
    return fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0", *extra, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("config, term", [("dacl", "dacl_loss"), ("siglip", "siglip_loss"), ("gap_closing", "align_loss")])
def test_each_method_config_trains_and_logs_its_term(tmp_path, synthetic_dir, config, term):
    cli = _fit(tmp_path, synthetic_dir, "--config", f"methods/{config}.yaml")
    metrics = cli.trainer.callback_metrics
    assert cli.trainer.global_step == 2 and f"train/{term}" in metrics
    assert torch.isfinite(metrics["train/loss"])
    if config == "gap_closing":  # ramped in over 10% of 2 steps: full weight at step 1
        assert "train/centroid_uniformity_loss" in metrics and float(metrics["train/align_loss"]) > 0
    if config == "siglip":
        assert float(metrics["train/logit_bias"]) != -10.0  # the bias is learned


@pytest.mark.slow
def test_m3mix_fine_tunes_from_a_clip_checkpoint(tmp_path, synthetic_dir):
    clip = fit_tiny(tmp_path / "clip", synthetic_dir, "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0")
    start = {k: v.clone() for k, v in clip.model.model.state_dict().items()}
    cli = _fit(tmp_path / "m3", synthetic_dir, "--config", "methods/m3mix.yaml",
               "--model.init_from", str(tmp_path / "clip" / "ckpt" / "step3.ckpt"), "--trainer.max_steps", "1")
    assert "train/m3mix_loss" in cli.trainer.callback_metrics and cli.model.hparams.lr == 5.0e-5
    moved = cli.model.model.state_dict()
    # initialised from CLIP: one small step away from it, not from a fresh initialisation
    assert max(float((moved[k] - start[k]).abs().max()) for k in start) < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("config, term", [("gap_closing", "centroid_uniformity_loss"), ("siglip", "logit_bias")])
def test_methods_compose_with_eclip_expert_pairs(tmp_path, synthetic_dir, config, term):
    cli = _fit(tmp_path, synthetic_dir, "--config", f"methods/{config}.yaml",
               "--model.curriculum", "{cold_start: 0.0, warmup: 0.0, cooldown: 0.0, floor: 1.0}", config=TINY_ECLIP)
    assert f"train/{term}" in cli.trainer.callback_metrics
    assert int(cli.model.expert_pairs_seen) == 2 * 8  # the expert pairs were appended at both steps
