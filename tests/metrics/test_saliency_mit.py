"""The MIT saliency benchmark's metric definitions (Bylinskii et al. 2019) against cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medalign.metrics import saliency as m

S = torch.tensor([[0.9, 0.4], [0.35, 0.8]], dtype=torch.float64)
FIX = torch.tensor([[0, 1], [0, 1]], dtype=torch.float64)  # fixations on the pixels of saliency 0.4 and 0.8


def test_auc_judd_by_hand():
    # thresholds 0.8, 0.4 (fixation values, descending):
    #   0.8: pixels ≥ 0.8 = {0.9, 0.8} → TP 1/2, FP (2 − 1)/2 = 1/2
    #   0.4: pixels ≥ 0.4 = {0.9, 0.8, 0.4} → TP 1, FP (3 − 2)/2 = 1/2
    # curve (0,0) (1/2,1/2) (1/2,1) (1,1): area 1/2·1/4 + 0 + 1/2·1 = 0.625
    assert m.auc_judd(S, FIX) == pytest.approx(0.625, abs=1e-12)
    # the Mann–Whitney variant on the same maps: pairs (fixated > other) 0.4>0.35, 0.8>0.35 of 4 → 0.5
    assert m.auc(S, FIX) == pytest.approx(0.5, abs=1e-12)


def test_nss_at_fixations_by_hand():
    s = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    fix = torch.tensor([[0, 0], [1, 1]])
    # mean 1.5, MATLAB std (N − 1) = sqrt(5/3); z at 2 and 3 = 0.5/√(5/3), 1.5/√(5/3); mean = 1/√(5/3)
    assert m.nss_fixations(s, fix) == pytest.approx(1 / math.sqrt(5 / 3), abs=1e-12)
    assert m.nss_fixations(torch.ones(2, 2), fix) == 0.0  # a constant map carries no information


def test_sim_minmax_and_sum_by_hand():
    s = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    h = torch.tensor([[1.0, 1.0], [2.0, 4.0]])
    # minmax: s → [0, 1/3, 2/3, 1] / 2 = [0, 1/6, 1/3, 1/2]; h → [0, 0, 1/3, 1] / (4/3) = [0, 0, 1/4, 3/4]
    assert m.sim(s, h, normalize="minmax") == pytest.approx(0 + 0 + 1 / 4 + 1 / 2, abs=1e-12)
    # sum: s/6 = [0, 1/6, 1/3, 1/2]; h/8 = [1/8, 1/8, 1/4, 1/2] → 0 + 1/8 + 1/4 + 1/2
    assert m.sim(s, h, normalize="sum") == pytest.approx(0.875, abs=1e-12)
    # a constant map → all ones → 1/4 each: min with [0, 0, 1/4, 3/4] = 1/4 + 1/4
    assert m.sim(torch.ones(2, 2), h, normalize="minmax") == pytest.approx(0.5, abs=1e-12)


def test_kld_with_the_mit_epsilon_by_hand():
    s = torch.tensor([[0.0, 1.0], [1.0, 2.0]])  # Q = [0, 1/4, 1/4, 1/2]
    h = torch.ones(2, 2)  # P = 1/4 everywhere
    eps = 2.220446049250313e-16  # MATLAB eps
    by_hand = 0.25 * math.log(eps + 0.25 / eps) + 2 * 0.25 * math.log(eps + 0.25 / (0.25 + eps)) + 0.25 * math.log(eps + 0.25 / (0.5 + eps))
    assert m.MIT_EPS == eps
    assert m.kld(s, h, eps=m.MIT_EPS) == pytest.approx(by_hand, rel=1e-12)
    medalign = 0.25 * math.log(1e-7 + 0.25 / 1e-7) + 2 * 0.25 * math.log(1e-7 + 0.25 / (0.25 + 1e-7)) + 0.25 * math.log(1e-7 + 0.25 / (0.5 + 1e-7))
    assert m.kld(s, h) == pytest.approx(medalign, rel=1e-9)  # medalign's first variant: ε = 1e-7


def test_batches_and_task_variants():
    from medalign.evaluation.tasks.saliency import score_maps

    g = torch.Generator().manual_seed(0)
    sal, heat = torch.rand(3, 8, 8, generator=g), torch.rand(3, 8, 8, generator=g) ** 3
    mit, old = score_maps(sal, heat), score_maps(sal, heat, variant="medalign")
    fixations = m.binarize(heat, 0.9)
    for b in range(3):
        assert mit["auc"][b] == pytest.approx(m.auc_judd(sal[b], fixations[b]), abs=1e-6)
        assert mit["nss"][b] == pytest.approx(m.nss_fixations(sal[b], fixations[b]), abs=1e-6)
        assert mit["sim"][b] == pytest.approx(m.sim(sal[b], heat[b], normalize="minmax"), abs=1e-6)
        assert old["nss"][b] == pytest.approx(m.nss(sal[b], heat[b]), abs=1e-6)
    assert np.allclose(mit["cc"], old["cc"])  # CC is the same in both
    with pytest.raises(ValueError, match="variant"):
        score_maps(sal, heat, variant="judd")
