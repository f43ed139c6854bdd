"""Paired CIs against scipy (ttest_rel, t.ppf), the bootstrap against a hand-checked case, readings."""

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score

from medalign.metrics.stats import format_ci, holm_adjust, mean_ci, paired_bootstrap_ci, paired_ci, paired_ci_from_summary, reading


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_paired_ci_matches_scipy(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(0.5, 0.05, n), rng.normal(0.48, 0.05, n)
    ci = paired_ci(a, b)
    assert set(ci) == {"mean_diff", "low", "high", "p_value", "n"}
    d = a - b
    half = sps.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
    assert ci["n"] == n
    assert ci["mean_diff"] == pytest.approx(d.mean())
    assert ci["low"] == pytest.approx(d.mean() - half)
    assert ci["high"] == pytest.approx(d.mean() + half)
    assert ci["p_value"] == pytest.approx(sps.ttest_rel(a, b).pvalue)


def test_paired_ci_confidence_level_matches_scipy_interval():
    a, b = [0.61, 0.58, 0.66, 0.60], [0.55, 0.57, 0.59, 0.58]
    d = np.subtract(a, b)
    low, high = sps.t.interval(0.9, len(d) - 1, loc=d.mean(), scale=sps.sem(d))
    ci = paired_ci(a, b, confidence=0.9)
    assert (ci["low"], ci["high"]) == pytest.approx((low, high))


def test_the_issues_examples_are_not_significant():
    # ΔNSS +0.103 ± 0.065 (sd), n = 3 → p ≈ 0.11: three differences with that mean and sd
    d = np.array([0.103 - 0.065, 0.103, 0.103 + 0.065])
    ci = paired_ci(d, np.zeros(3))
    assert ci["p_value"] == pytest.approx(0.11, abs=0.01)
    assert ci["low"] < 0 < ci["high"]
    assert reading(ci) == "no detectable difference"
    # Δ +0.051 ± 0.012, n = 2 → p ≈ 0.105, and two seeds are too few anyway
    two = paired_ci([0.051 + 0.012 / math.sqrt(2), 0.051 - 0.012 / math.sqrt(2)], [0.0, 0.0])
    assert two["p_value"] == pytest.approx(0.105, abs=0.005)
    assert reading(two) == "too few seeds (< 3)"


def test_paired_ci_pairs_by_position_not_by_sort():
    # a consistent +0.01 per seed on very different seed levels: paired CI excludes zero
    a, b = [0.50, 0.70, 0.90], [0.49, 0.69, 0.89]
    ci = paired_ci(a, b)
    assert ci["low"] == pytest.approx(0.01) and ci["high"] == pytest.approx(0.01)
    assert reading(ci) == "higher"
    assert reading(paired_ci(b, a)) == "lower"


def test_paired_ci_drops_nan_pairs_and_checks_lengths():
    ci = paired_ci([0.5, float("nan"), 0.7, 0.6], [0.4, 0.5, 0.6, 0.55])
    assert ci["n"] == 3
    assert ci["p_value"] == pytest.approx(sps.ttest_rel([0.5, 0.7, 0.6], [0.4, 0.6, 0.55]).pvalue)
    with pytest.raises(ValueError, match="3 and 2"):
        paired_ci([1, 2, 3], [1, 2])
    one = paired_ci([0.5], [0.4])
    assert one["n"] == 1 and math.isnan(one["low"]) and math.isnan(one["p_value"])
    assert reading(one) == "too few seeds (< 3)"


def test_mean_ci_matches_scipy():
    x = [0.45, 0.39, 0.47, 0.41, 0.44]
    ci = mean_ci(x)
    low, high = sps.t.interval(0.95, 4, loc=np.mean(x), scale=sps.sem(x))
    assert (ci["mean"], ci["low"], ci["high"], ci["n"]) == pytest.approx((np.mean(x), low, high, 5))
    assert ci["sd"] == pytest.approx(np.std(x, ddof=1))


def test_paired_bootstrap_ci_covers_a_known_difference():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    good = np.where(rng.random(400) < 0.9, y, 1 - y)  # ≈ 90 % accurate
    poor = np.where(rng.random(400) < 0.7, y, 1 - y)  # ≈ 70 % accurate
    observed = accuracy_score(y, good) - accuracy_score(y, poor)
    ci = paired_bootstrap_ci(accuracy_score, y, good, poor, n_boot=500, seed=1)
    assert ci["mean_diff"] == pytest.approx(observed)
    assert ci["n"] == 400 and ci["n_boot"] == 500
    assert 0 < ci["low"] < observed < ci["high"]
    assert reading(ci) == "higher"
    # Hand bound: the difference's SE is at most sqrt(0.9·0.1/400 + 0.7·0.3/400 + 2·cov) ≤ ≈ 0.05
    assert ci["high"] - ci["low"] < 4 * 0.05
    # the same model against itself: every resampled difference is 0
    same = paired_bootstrap_ci(accuracy_score, y, good, good, n_boot=50)
    assert (same["low"], same["high"], same["p_value"]) == (0.0, 0.0, 1.0)
    assert reading(same) == "no detectable difference"
    with pytest.raises(ValueError, match="same rows"):
        paired_bootstrap_ci(accuracy_score, y, good[:-1], poor)


def test_paired_bootstrap_is_paired():
    # b = a with 5 % of rows flipped to wrong: unpaired intervals would overlap heavily, the paired one excludes 0
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    a = np.where(rng.random(300) < 0.8, y, 1 - y)
    b = a.copy()
    flip = np.flatnonzero(a == y)[:15]
    b[flip] = 1 - b[flip]
    ci = paired_bootstrap_ci(accuracy_score, y, a, b, n_boot=400, seed=0)
    assert ci["mean_diff"] == pytest.approx(15 / 300)
    assert ci["low"] > 0


def test_format_ci():
    assert format_ci({"mean_diff": 0.0514, "low": -0.01, "high": 0.112, "p_value": 0.1, "n": 3}) == "+0.051 [-0.010, +0.112]"
    assert format_ci({"mean": 0.456, "low": 0.41, "high": 0.5, "sd": 0.01, "n": 3}, signed=False) == "0.456 [0.410, 0.500]"


def test_paired_ci_from_summary_equals_paired_ci_on_values_with_that_mean_and_sd():
    d = np.array([0.02, 0.09, 0.04, 0.11])
    direct = paired_ci(d, np.zeros(4))
    summary = paired_ci_from_summary(d.mean(), d.std(ddof=1), 4)
    assert summary == pytest.approx(direct)


def test_holm_adjust_hand_computed():
    # sorted p 0.01, 0.02, 0.03, 0.04 with m = 4: 4·0.01 = 0.04, 3·0.02 = 0.06, 2·0.03 = 0.06, 1·0.04 = 0.04 → monotone 0.06
    assert holm_adjust([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    assert holm_adjust([0.5, 0.4]) == pytest.approx([0.8, 0.8])  # capped at 1 nowhere, monotone step
    assert holm_adjust([0.9, 0.6]) == pytest.approx([1.0, 1.0])
    out = holm_adjust([float("nan"), 0.01, 0.2])  # NaN is not a comparison: m = 2
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.2])
    assert holm_adjust([]) == []


def _holm_rejects(p, alpha):
    """Holm's procedure as he stated it: walk the sorted p-values, reject while p₍ᵢ₎ ≤ α / (m − i + 1)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected = set()
    for rank, i in enumerate(order):
        if p[i] > alpha / (len(p) - rank):
            break
        rejected.add(i)
    return rejected


@pytest.mark.parametrize("seed", range(20))
def test_holm_adjusted_p_below_alpha_is_holms_step_down_decision(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 0.1, size=int(rng.integers(1, 12))).round(4).tolist()  # rounding makes ties
    adjusted = holm_adjust(p)
    for alpha in (0.01, 0.05, 0.1):
        assert {i for i, q in enumerate(adjusted) if q <= alpha} == _holm_rejects(p, alpha)
    # never below the raw p, never below Bonferroni's smallest, never above Bonferroni
    m = len(p)
    assert all(raw <= q <= min(1, m * raw) + 1e-12 for raw, q in zip(p, adjusted))


def test_holm_adjust_rejects_bad_input():
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        holm_adjust([0.2, 1.5])
    with pytest.raises(ValueError, match="1-D"):
        holm_adjust([[0.1, 0.2]])
