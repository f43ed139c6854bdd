"""An objective's draws follow the run's seed unless it names its own (a study's seeds vary every stream)."""

from __future__ import annotations

import sys

import lightning as L
import pytest
import torch

from medalign.methods.dacl import DACL
from medalign.methods.m3mix import M3Mix
from medalign.methods.mlm import MLM
from medalign.models import ModelSpec
from medalign.training.module import ContrastiveModule

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
OBJECTIVES = {"dacl": (DACL, "dacl_loss"), "m3mix": (M3Mix, "m3mix_loss"), "mlm": (MLM, "mlm_loss")}


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _term(tokenizer, objective, run_seed: int, monkeypatch) -> float:
    monkeypatch.setenv("PL_GLOBAL_SEED", str(run_seed))  # what seed_everything sets
    torch.manual_seed(0)
    module = ContrastiveModule(model=ModelSpec(vocab_size=len(tokenizer), text_config=NO_DROPOUT), objectives=[objective])
    objective.set_tokenizer(tokenizer)
    g = torch.Generator().manual_seed(0)
    batch = {"image": torch.randn(8, 3, 64, 64, generator=g), "input_ids": torch.randint(5, 100, (8, 12), generator=g),
             "attention_mask": torch.ones(8, 12, dtype=torch.long), "index": torch.arange(8)}
    with torch.no_grad():
        return float(module.loss_terms(batch, module(batch))[OBJECTIVES[type(objective).__name__.lower()][1]])


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_default_seed_follows_the_run_seed(name, tokenizer, monkeypatch):
    build, _ = OBJECTIVES[name]
    assert build().seed is None
    first, again, other = (_term(tokenizer, build(), s, monkeypatch) for s in (0, 0, 1))
    assert first == again              # resume-safe: the same run seed, the same draws
    assert first != other              # a different cell seed, different draws


@pytest.mark.parametrize("name", list(OBJECTIVES))
def test_an_explicit_seed_is_kept(name, tokenizer, monkeypatch):
    build, _ = OBJECTIVES[name]
    assert _term(tokenizer, build(seed=5), 0, monkeypatch) == _term(tokenizer, build(seed=5), 1, monkeypatch)


def test_run_seed_is_lightnings_seed_everything(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    L.seed_everything(7, verbose=False)
    assert ContrastiveModule(model=ModelSpec(vocab_size=120)).step_context().run_seed == 7
