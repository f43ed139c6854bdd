"""`medalign.methods.m3mix`: the m³-mix loss against a loop over its negatives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medalign.methods.m3mix import m3mix_loss, m3mix_negatives


def _unit(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype), dim=-1)


def test_m3mix_loss_matches_a_loop():
    v, t = _unit(5, 4, 16), _unit(5, 4, 17)
    s, lam = 3.0, 0.3
    m = m3mix_negatives(v, t, lam)
    total = 0.0
    for i in range(5):
        for anchor in (v[i], t[i]):
            pos = s * float(v[i] @ t[i])
            negs = [s * float(anchor @ m[j]) for j in range(5) if j != i]
            total += -pos + math.log(math.exp(pos) + sum(math.exp(x) for x in negs))
    got = m3mix_loss(v, t, m, torch.tensor(s, dtype=torch.float64))
    assert float(got) == pytest.approx(total / 10, rel=1e-10)
    halves = [m3mix_loss(v[r * 2:(r + 1) * 2], t[r * 2:(r + 1) * 2], m[:4], torch.tensor(s, dtype=torch.float64), r * 2) for r in range(2)]
    assert float(sum(halves) / 2) == pytest.approx(float(m3mix_loss(v[:4], t[:4], m[:4], torch.tensor(s, dtype=torch.float64))), rel=1e-10)
