import math

import pytest
import torch
from torch import nn

from medalign.models import create_dual_encoder
from medalign.optim import param_groups, warmup_cosine


def test_no_weight_decay_on_biases_norms_and_logit_scale():
    model = create_dual_encoder("tiny", vocab_size=100)
    decay, no_decay = param_groups(model.named_parameters(), weight_decay=1e-3)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    exempt = {names[id(p)] for p in no_decay["params"]}
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    assert "logit_scale" in exempt
    assert all(not n.endswith("bias") for n in decayed)
    assert any("norm" in n for n in exempt) and not any("norm" in n and n.endswith("weight") for n in decayed)
    assert "image_projection.weight" in decayed and "text_projection.weight" in decayed
    assert len(decayed) + len(exempt) == len(list(model.parameters()))


def test_warmup_then_cosine():
    f = warmup_cosine(total_steps=100, warmup_fraction=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    values = [f(s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_warmup_fraction_is_validated():
    with pytest.raises(ValueError, match="warmup_fraction"):
        warmup_cosine(10, warmup_fraction=1.5)
