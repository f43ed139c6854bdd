"""Probe protocols: the convergence rule, the class-weighted BCE that kept under-trained probes below
chance, and λ selected on validation AUC rather than test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from medalign.studies.gap.batched_probe import ShiftedFeatures, train_probes
from medalign.studies.gap.probe_config import ProbeConfig
from medalign.studies.gap.sweep import SweepResult, probe_auc
from medalign.studies.gap.plots import markdown_table

pytestmark = pytest.mark.usefixtures("one_thread")


def _centre_biased(n: int, seed: int, d: int = 16):
    """A cone (centre e0) where the 20 % positives sit nearer the centre and differ along e1.

    Scoring a row by −x·μ (rows nearer the cone's centre lower) ranks positives below negatives.
    """
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, generator=g) < 0.2).float()
    centre = torch.zeros(d)
    centre[0] = 3.0
    spread = torch.where(y[:, None] == 1, 0.6, 1.2)
    x = centre + spread * torch.randn(n, d, generator=g)
    x[:, 1] += 0.8 * y
    return F.normalize(x, dim=1), y[:, None]


def test_an_under_trained_class_weighted_probe_is_not_below_chance():
    # The bug behind the 0.28–0.33 demo AUCs: N/(C·count_c) weights rescale a class's whole BCE term and leave its
    # 20/80 positive/negative imbalance, so while the bias is still ≈ 0 the gradient E[(σ(z) − y)·x] ≈ (0.5 − p)·μ
    # turns w towards −μ and rows nearer the cone's centre (here: the positives) score lower.
    x, y = _centre_biased(2000, 0)
    xt, yt = _centre_biased(2000, 1)
    centre_score = roc_auc_score(yt[:, 0].numpy(), -(xt @ x.mean(0)).numpy())
    assert centre_score < 0.3  # the failure mode is present in this data
    short = dict(optimizer="sgd", lr=3e-4, max_epochs=100, patience=100, batch_size=128)  # 1,600 small steps
    aucs = {}
    for weighting in ("paper", "none"):
        cfg = ProbeConfig(class_weight=weighting, **short)
        fit = train_probes(ShiftedFeatures.plain(x), y, None, None, [42, 43, 44], "multilabel", 1, cfg)
        proba = torch.sigmoid(torch.einsum("ni,sic->snc", xt, fit.weight[0]) + fit.bias[0][:, None])  # (S, N, 1)
        aucs[weighting] = np.mean([roc_auc_score(yt[:, 0].numpy(), p[:, 0].numpy()) for p in proba])
        assert not fit.converged.any()  # the rule never fired within the budget: flagged
    assert aucs["none"] < 0.5  # positives and negatives unbalanced: below chance, as on the demo (seen 0.46)
    assert aucs["paper"] > 0.7  # class-weighted BCE (pos_weight n_neg/n_pos) points w along μ_pos − μ_neg


@pytest.mark.parametrize("sequential", [False, True])
def test_converged_iff_the_stopping_rule_fired_within_the_budget(sequential):
    x, y = _centre_biased(600, 2)
    feats = ShiftedFeatures.plain(x)
    # AdamW at lr 0.05 reaches its minimum early; the rule then fires (patience 5): converged, stopped before the budget
    fast = train_probes(feats, y, None, None, [42, 43], "multilabel", 1,
                        ProbeConfig(lr=0.05, max_epochs=300, patience=5, batch_size=64), sequential=sequential)
    assert fast.converged.all() and (fast.epochs < 300).all()
    np.testing.assert_array_equal(fast.epochs, fast.best_epoch + 5)  # stopped exactly `patience` epochs after the best
    # SGD at lr 1e-4 for 5 epochs with patience 5: the rule cannot fire, the whole budget runs, nothing converged
    slow = train_probes(feats, y, None, None, [42, 43], "multilabel", 1,
                        ProbeConfig(optimizer="sgd", lr=1e-4, max_epochs=5, patience=5, batch_size=64), sequential=sequential)
    assert not slow.converged.any()
    np.testing.assert_array_equal(slow.epochs, 5)


def test_a_step_budget_scales_the_epochs_with_the_set_size():
    cfg = ProbeConfig(max_steps=1000, batch_size=100)
    assert cfg.epoch_budget(1000) == 100  # 10 steps per epoch
    assert cfg.epoch_budget(250) == 334  # 3 steps per epoch → ceil(1000 / 3)
    assert ProbeConfig(max_epochs=7).epoch_budget(10**6) == 7
    paper = ProbeConfig.paper()
    assert (paper.optimizer, paper.lr, paper.momentum, paper.protocol) == ("sgd", 3e-4, 0.9, "paper")


def _result(val_auc, test_auc, converged):
    L, S = np.shape(test_auc)
    return SweepResult([0.0, 0.5, 1.0][:L], list(range(S)), "multilabel", ["a"], np.array(test_auc, float),
                       np.array(test_auc, float)[..., None], [{"lambda": 0.0}] * L, np.zeros(2),
                       np.array(val_auc, float), np.array(converged, bool))


def test_the_best_lambda_is_chosen_on_validation_and_the_test_argmax_is_only_an_oracle():
    # validation prefers λ = 0.5, test would prefer λ = 1
    result = _result([[0.70, 0.72], [0.80, 0.78], [0.75, 0.74]], [[0.60, 0.62], [0.66, 0.64], [0.90, 0.88]],
                     [[True, True], [True, True], [True, False]])
    assert result.best_lambda == 0.5 and result.lambdas[result.test_argmax_index] == 1.0
    saved = result.to_dict()
    assert saved["best_lambda"] == 0.5 and saved["best_lambda_test_auc"] == pytest.approx(0.65)
    assert saved["test_argmax_lambda_oracle"] == 1.0 and saved["n_unconverged"] == 1
    table = markdown_table(result).splitlines()
    assert "★" in table[3] and "†" not in table[3]  # λ = 0.5 row: the result
    assert "†" in table[4] and "1/2 ⚠" in table[4]  # λ = 1 row: the oracle, one probe unconverged
    assert "oracle, not a result" in table[-1]


def test_validation_auc_is_measured_on_each_probes_validation_rows():
    from medalign.studies.gap.sweep import run_gap_sweep

    x, y = _centre_biased(400, 3)
    xv, yv = _centre_biased(200, 4)
    xt, yt = _centre_biased(200, 5)
    cfg = ProbeConfig(lr=0.05, max_epochs=50, patience=5, batch_size=64)
    result = run_gap_sweep((x, x, y), (xv, xv, yv), (xt, xt, yt), [0.0], [42], config=cfg, references=False)
    # rebuild the λ = 0 probe from its test AUC's proba and score the val split with sklearn
    fit = train_probes(ShiftedFeatures.plain(x, x), y, ShiftedFeatures.plain(xv, xv), yv, [42], "multilabel", 1, cfg)
    z = torch.cat([xv, xv], 1) @ fit.weight[0, 0] + fit.bias[0, 0]
    assert result.val_auc[0, 0] == pytest.approx(roc_auc_score(yv[:, 0].numpy(), z[:, 0].numpy()), abs=1e-6)
    assert result.val_auc[0, 0] == pytest.approx(probe_auc(yv.numpy(), z.detach().numpy(), "multilabel")[0], abs=1e-6)


def test_the_shipped_configs_name_their_protocols():
    from dataclasses import replace

    from medalign.commands.gap_sweep import _parse

    paper = _parse(["--config", "gap_sweep_paper"]).probe
    assert replace(paper, max_epochs=0) == replace(ProbeConfig.paper(), max_epochs=0)  # max_steps sets the budget
    default = _parse(["--config", "gap_sweep"]).probe
    assert default == ProbeConfig() and default.protocol == "converge" and default.class_weight == "paper"
