"""DACL, m³-mix, SigLIP and the gap-closing objectives in `ContrastiveModule`: each term changes the
gradient, each config trains through the CLI and logs its term, and they compose with eCLIP."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from medalign.methods.dacl import DACL
from medalign.methods.gap_closing import GapClosing
from medalign.methods.m3mix import M3Mix
from medalign.methods.siglip import SigLIP
from medalign.models import ModelSpec
from medalign.training.module import ContrastiveModule
from tests.helpers import fit_tiny

TINY_ECLIP = str(Path(__file__).parents[1] / "conf" / "tiny_eclip.yaml")
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OBJECTIVES = {  # objective → the loss term it adds
    "dacl": (lambda: DACL(weight=1.0), "dacl_loss"),
    "m3mix": (lambda: M3Mix(weight=1.0), "m3mix_loss"),
    "align": (lambda: GapClosing(align_weight=1.0, uniformity_weight=0.0), "align_loss"),
    "centroid": (lambda: GapClosing(align_weight=0.0, uniformity_weight=1.0), "centroid_uniformity_loss"),
    "siglip": (lambda: SigLIP(), "siglip_loss"),
}


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _batch(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"image": torch.randn(n, 3, 64, 64, generator=g), "input_ids": torch.randint(5, 100, (n, 12), generator=g),
            "attention_mask": torch.ones(n, 12, dtype=torch.long), "index": torch.arange(n)}


def _module(*objectives, **spec) -> ContrastiveModule:
    torch.manual_seed(0)
    return ContrastiveModule(model=ModelSpec(vocab_size=100, text_config=NO_DROPOUT, **spec), objectives=list(objectives))


def _grads(*objectives) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    module = _module(*objectives)
    batch = _batch()
    terms = module.loss_terms(batch, module(batch))
    torch.stack(list(terms.values())).sum().backward()
    return terms, {k: p.grad.clone() for k, p in module.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_adds_its_term_and_changes_the_gradient(name):
    build, term = OBJECTIVES[name]
    base_terms, base = _grads()
    terms, grads = _grads(build())
    assert set(base_terms) == {"clip_loss"}
    assert term in terms and torch.isfinite(terms[term]) and float(terms[term]) != 0.0
    changed = [k for k in base if not torch.allclose(base[k], grads[k], rtol=1e-4, atol=1e-7)]
    assert len(changed) > 10, f"{name} left the gradient unchanged"


def test_dacl_term_is_the_pair_loss_of_the_mixed_images():
    module = _module(DACL(weight=0.5, weight_range=(0.9, 1.0), seed=3))
    batch = _batch()
    out = module(batch)
    ctx = module.step_context()
    from medalign.losses import contrastive_loss
    from medalign.methods.dacl import dacl_mix

    mixed, _, _ = dacl_mix(batch["image"], ctx.generator(3, 0), (0.9, 1.0))  # the draw is a function of (seed, step, rank)
    mixed_emb = module.model.encode_image(mixed)
    expected = 0.5 * contrastive_loss(mixed_emb, out.text_emb, mixed_emb, out.text_emb, out.logit_scale)
    torch.testing.assert_close(module.loss_terms(batch, out)["dacl_loss"], expected)


def test_gap_warmup_ramps_the_weights_linearly():
    gap = GapClosing(align_weight=2.0, warmup_fraction=0.5)
    for progress, factor in ((0.0, 0.0), (0.25, 0.5), (0.5, 1.0), (0.9, 1.0)):
        assert gap.ramp(progress) == pytest.approx(factor)
    module = _module(gap)
    module.total_steps = 100
    assert module.progress(25) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "build, key",
    [(lambda: GapClosing(align_weight=-1.0), "GapClosing.align_weight"),
     (lambda: DACL(weight_range=(0.3, 1.0)), "DACL.weight_range"),
     (lambda: GapClosing(warmup_fraction=1.0), "GapClosing.warmup_fraction"),
     (lambda: M3Mix(beta=0.0), "M3Mix.beta"),
     (lambda: SigLIP(bias_lr_scale=0.0), "bias_lr_scale")],
)
def test_bad_objective_options_name_the_key(build, key):
    with pytest.raises(ValueError, match=key):
        build()


def test_one_pair_loss_and_each_objective_once():
    assert type(_module().pair_objective).__name__ == "CLIP"
    with pytest.raises(ValueError, match="each objective at most once"):
        _module(DACL(), DACL(weight=2.0))
    from medalign.methods.clip import CLIP

    with pytest.raises(ValueError, match="one pair loss"):
        _module(CLIP(), SigLIP())


def test_siglip_bias_init_and_parameter_group_are_options():
    module = _module(SigLIP(bias_init=-3.5, bias_weight_decay=0.01, bias_lr_scale=10.0))
    bias = module.pair_objective.logit_bias
    assert float(bias) == -3.5 and module.hparams.objectives[0]["init_args"]["bias_init"] == -3.5
    module.hparams.lr = 2e-4
    (group,) = [g for g in module.param_groups() if any(p is bias for p in g["params"])]
    assert group == {"params": [bias], "weight_decay": 0.01, "lr": pytest.approx(2e-3)}
    assert not any("logit_bias" in k for k in _module().state_dict())  # CLIP's state dict is unchanged


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
        assert cli.model.hparams.model["init_temperature"] == 0.1 and cli.model.hparams.model["preset"] == "tiny"


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
