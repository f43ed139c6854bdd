"""Transfer (Freeze / LiT), SLIP / MLM self-supervision and FILIP objectives in `ContrastiveModule` (benchmark questions i–iii)."""

from __future__ import annotations

import sys

import pytest
import torch
from safetensors.torch import save_file

from medalign.methods.filip import FILIP
from medalign.methods.freeze import Freeze
from medalign.methods.mlm import MLM
from medalign.methods.slip import SLIP
from medalign.models import ModelSpec, create_dual_encoder
from medalign.optim import build_optimizer
from medalign.training.module import ContrastiveModule
from tests.helpers import fit_tiny

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OBJECTIVES = {  # objective → the loss term it adds
    "slip": (lambda: SLIP(weight=1.0), "slip_loss"),
    "mlm": (lambda: MLM(weight=1.0), "mlm_loss"),
    "filip": (lambda: FILIP(weight=1.0), "local_loss"),
}


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _batch(n: int = 6) -> dict:
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(n, 12, dtype=torch.long)
    mask[0, 8:] = 0
    return {"image": torch.randn(n, 3, 64, 64, generator=g), "image_view2": torch.randn(n, 3, 64, 64, generator=g),
            "input_ids": torch.randint(5, 100, (n, 12), generator=g), "attention_mask": mask, "index": torch.arange(n)}


def _module(vocab_size: int, *objectives) -> ContrastiveModule:
    torch.manual_seed(0)
    return ContrastiveModule(model=ModelSpec(vocab_size=vocab_size, text_config=NO_DROPOUT), objectives=list(objectives))


def _grads(tokenizer, *objectives):
    module = _module(len(tokenizer), *objectives)
    for objective in module.objectives:
        objective.set_tokenizer(tokenizer)
    batch = _batch()
    terms = module.loss_terms(batch, module(batch))
    torch.stack(list(terms.values())).sum().backward()
    return terms, {k: p.grad.clone() for k, p in module.model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_each_objective_adds_its_term_and_changes_the_gradient(name, tokenizer):
    build, term = OBJECTIVES[name]
    base_terms, base = _grads(tokenizer)
    terms, grads = _grads(tokenizer, build())
    assert set(base_terms) == {"clip_loss"} and set(terms) == {"clip_loss", term}
    assert torch.isfinite(terms[term]) and float(terms[term]) > 0
    torch.testing.assert_close(terms["clip_loss"], base_terms["clip_loss"])  # the global term is untouched
    changed = [k for k in base if not torch.allclose(base[k], grads[k], rtol=1e-4, atol=1e-7)]
    assert len(changed) > 10, f"{name} left the gradient unchanged"


def test_slip_reads_its_first_view_from_the_pair_forward(tokenizer):
    """Two image-tower forwards per step (the pair image = SLIP's first view, and the second view), same term."""
    from dataclasses import replace

    module = _module(len(tokenizer), SLIP())
    module.eval()  # no stochastic layers: the reference re-encoding must see the same tower
    calls = []
    module.model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
    batch = _batch()
    out = module(batch)
    terms = module.loss_terms(batch, out)
    assert len(calls) == 2
    assert out.image_features.shape == (6, module.model.image_encoder.num_features)
    reference = module.loss_terms(batch, replace(out, image_features=None))  # encodes the first view again
    assert len(calls) == 4
    torch.testing.assert_close(terms["slip_loss"], reference["slip_loss"])


def test_locked_image_tower(tokenizer):
    module = _module(len(tokenizer), Freeze(image="all", text=1))
    tower, text = module.model.image_encoder.backbone, module.model.text_encoder.model
    trainable = [p for p in module.parameters() if p.requires_grad]
    groups = module.param_groups()
    in_groups = [p for g in groups for p in g["params"]]
    assert len(in_groups) == len(trainable) == len({id(p) for p in in_groups})
    assert not any(p.requires_grad for p in tower.parameters())
    frozen_text = sum(p.numel() for n, p in text.named_parameters() if n.startswith(("embeddings.", "encoder.layer.0.")))
    assert sum(p.numel() for p in trainable) == sum(p.numel() for p in module.parameters()) - sum(
        p.numel() for p in tower.parameters()) - frozen_text
    module.train()
    assert not tower.training and not text.embeddings.training and text.encoder.layer[1].training
    optimizer = build_optimizer(groups, 1e-2, (0.9, 0.98), 1e-6)
    probe = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        before_features = tower(probe).clone()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    batch = _batch()
    for _ in range(3):
        out = module(batch)
        module.compute_losses(batch, out)["clip_loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
    after = module.state_dict()
    unchanged = {k for k in before if torch.equal(before[k], after[k])}
    assert all(k in unchanged for k in before if k.startswith(("model.image_encoder.", "model.text_encoder.model.embeddings.")))
    assert "model.image_projection.weight" not in unchanged and "model.text_encoder.model.encoder.layer.1.output.dense.weight" not in unchanged
    with torch.no_grad():
        torch.testing.assert_close(tower(probe), before_features, rtol=0, atol=0)
    assert all(id(p) not in {id(q) for q in tower.parameters()} for p in optimizer.state)


def test_lit_locks_the_image_tower_and_its_projection(tokenizer):
    """LiT (big_vision's lit config): nothing on the image side trains; the text side does."""
    module = _module(len(tokenizer), Freeze(image="lock"))
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("model.image_encoder.", "model.image_projection.")) for n in trainable)
    assert {"model.text_projection.weight", "model.logit_scale"} <= trainable
    assert any(n.startswith("model.text_encoder.") for n in trainable)
    in_groups = {id(p) for g in module.param_groups() for p in g["params"]}
    assert in_groups == {id(p) for p in module.parameters() if p.requires_grad}
    module.train()
    assert not module.model.image_encoder.backbone.training and not module.model.image_projection.training
    assert module.model.text_encoder.model.training


def test_objective_errors_name_the_key(tokenizer):
    with pytest.raises(ValueError, match="SLIP.temperature must be > 0"):
        SLIP(temperature=0)
    with pytest.raises(ValueError, match="Freeze.image must be 'none', 'all', 'lock'"):
        Freeze(image="half")
    module = _module(100, SLIP())
    batch = _batch()
    del batch["image_view2"]
    with pytest.raises(ValueError, match="data.views: 2"):
        module.loss_terms(batch, module(batch))


@pytest.mark.parametrize("config,term", [("methods/slip_mlm.yaml", "slip_loss"), ("methods/filip.yaml", "local_loss")])
def test_method_configs_train_and_log_their_term(tmp_path, synthetic_dir, config, term):
    cli = fit_tiny(tmp_path, synthetic_dir, "--config", config, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                   "--trainer.limit_val_batches", "1")
    metrics = cli.trainer.callback_metrics
    assert f"train/{term}" in metrics and float(metrics[f"train/{term}"]) > 0
    if term == "slip_loss":
        assert float(metrics["train/mlm_loss"]) > 0


def test_lit_config_from_a_weights_file_keeps_the_tower_at_those_weights(tmp_path, synthetic_dir):
    torch.manual_seed(3)
    source = create_dual_encoder(ModelSpec(vocab_size=100)).image_encoder.backbone  # stand-in general-domain tower
    weights = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(weights, tmp_path / "general.safetensors")
    cli = fit_tiny(tmp_path, synthetic_dir, "--config", "methods/lit.yaml", "--model.model.image_weights", str(tmp_path / "general.safetensors"),
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1")
    trained = cli.model.model.image_encoder.backbone.state_dict()
    assert all(torch.equal(trained[k], v) for k, v in weights.items())
    assert not cli.model.model.image_projection.weight.requires_grad  # LiT: the image projection is locked too
    assert cli.trainer.global_step == 2
