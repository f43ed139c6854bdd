"""When is a difference between two methods a result? Paired confidence intervals and their reading.

The one implementation every study table uses (``benchmark --aggregate``, the docs' re-aggregation
scripts):

- `paired_ci`: two methods' per-seed values, paired by position (same seed, same data) →
  mean difference a − b with a t-based confidence interval (df = n − 1) and the two-sided paired
  t-test p-value (Student, 1908; identical to ``scipy.stats.ttest_rel``).
- `mean_ci`: the same t interval for one method's mean over seeds (the tables' cells).
- `paired_bootstrap_ci`: for single runs, a percentile bootstrap over test rows of
  metric(a) − metric(b), both models scored on the same resampled rows (Efron & Tibshirani, 1993,
  §13; paired as in Koehn, 2004).
- `reading`: the plain words for a CI: ``higher`` / ``lower`` (the CI excludes zero),
  ``no detectable difference`` (it contains zero), ``too few seeds (< 3)``.
- `holm_adjust`: a study asks several questions; Holm's (1979) step-down adjustment of their
  p-values keeps the chance of *any* false "higher/lower" among them at the level (family-wise),
  uniformly more powerful than Bonferroni.

Seeds vary the training; the bootstrap varies the test rows. Neither includes the other's
variance, so a seed CI on one small test split still understates how far a result generalises.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["MIN_SEEDS", "format_ci", "holm_adjust", "mean_ci", "paired_bootstrap_ci", "paired_ci", "paired_ci_from_summary", "reading"]

MIN_SEEDS = 3  # fewer paired seeds than this: "too few seeds", whatever the interval says


def _t_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p of mean = 0) of a t interval (df = n − 1); NaN for n < 2."""
    from scipy.stats import t

    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    se = float(values.std(ddof=1)) / math.sqrt(n)
    if se == 0.0:  # every value equal: the interval is that value; p = 1 for zero, else 0
        return mean, mean, mean, 1.0 if mean == 0 else 0.0
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    p_value = float(2 * t.sf(abs(mean) / se, n - 1))
    return mean, mean - half, mean + half, p_value


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def paired_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict[str, float | int]:
    """Mean paired difference a − b with a t-based confidence interval and the paired t-test p-value.

    Args:
        a: per-seed values of one method.
        b: per-seed values of the other, paired with `a` by position (same seed).
        confidence: coverage of the interval.

    Returns:
        ``mean_diff``, ``low``, ``high`` (the interval, df = n − 1), ``p_value`` (two-sided, H0: no
        difference) and ``n`` (pairs used: pairs with a NaN on either side are left out). With
        n < 2 the interval and p-value are NaN.

    Raises:
        ValueError: `a` and `b` differ in length, or `confidence` is not in (0, 1).
    """
    _check_confidence(confidence)
    a_, b_ = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a_.shape != b_.shape:
        raise ValueError(f"paired_ci needs one value per seed on both sides, got {len(a_)} and {len(b_)} values")
    d = (a_ - b_)[~(np.isnan(a_) | np.isnan(b_))]  # (n,)
    mean, low, high, p_value = _t_interval(d, confidence)
    return {"mean_diff": mean, "low": low, "high": high, "p_value": p_value, "n": int(len(d))}


def paired_ci_from_summary(mean_diff: float, sd_diff: float, n: int, confidence: float = 0.95) -> dict[str, float | int]:
    """`paired_ci` from a reported mean ± sd of n paired differences (when the per-seed values are lost).

    Gives the same interval and p-value as `paired_ci` on any n differences with that mean and
    sample sd (ddof = 1).
    """
    _check_confidence(confidence)
    from scipy.stats import t

    if n < 2 or math.isnan(sd_diff):
        return {"mean_diff": mean_diff, "low": float("nan"), "high": float("nan"), "p_value": float("nan"), "n": int(n)}
    se = sd_diff / math.sqrt(n)
    if se == 0:
        return {"mean_diff": mean_diff, "low": mean_diff, "high": mean_diff, "p_value": 1.0 if mean_diff == 0 else 0.0, "n": int(n)}
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    return {"mean_diff": mean_diff, "low": mean_diff - half, "high": mean_diff + half,
            "p_value": float(2 * t.sf(abs(mean_diff) / se, n - 1)), "n": int(n)}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> dict[str, float | int]:
    """Mean over seeds with its t-based interval (df = n − 1): ``mean``, ``low``, ``high``, ``sd``, ``n``.

    NaN values are left out; with n < 2 the interval and sd are NaN.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    mean, low, high, _ = _t_interval(x, confidence)
    sd = float(x.std(ddof=1)) if len(x) > 1 else float("nan")
    return {"mean": mean, "low": low, "high": high, "sd": sd, "n": int(len(x))}


def paired_bootstrap_ci(
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, float | int]:
    """Percentile bootstrap CI of metric(pred_a) − metric(pred_b) over test rows (one run each).

    Each resample draws N rows with replacement and scores both models on the same rows, so
    the interval reflects the test set's sampling noise of the *difference* (seed noise is not in it).

    Args:
        metric_fn: ``metric_fn(y_true_rows, pred_rows) -> float`` (e.g. a macro-F1 or AUC);
            resamples where it is NaN for either model (a class absent) are dropped.
        y_true: (N, ...) targets.
        pred_a: (N, ...) predictions or scores of model a on the same rows.
        pred_b: (N, ...) of model b.
        n_boot: resamples.
        seed: resampling seed.
        confidence: coverage of the interval.

    Returns:
        ``mean_diff`` (the difference on all rows), ``low``, ``high``, ``p_value`` (two-sided:
        twice the smaller share of resampled differences on either side of zero, at most 1),
        ``n`` (rows) and ``n_boot`` (resamples kept).

    Raises:
        ValueError: the three arrays differ in their number of rows, or fewer than 2 rows.
    """
    _check_confidence(confidence)
    y_true, pred_a, pred_b = np.asarray(y_true), np.asarray(pred_a), np.asarray(pred_b)
    n = len(y_true)
    if not len(pred_a) == len(pred_b) == n:
        raise ValueError(f"paired_bootstrap_ci needs the same rows for both models: y_true {n}, pred_a {len(pred_a)}, pred_b {len(pred_b)} rows")
    if n < 2:
        raise ValueError(f"paired_bootstrap_ci needs at least 2 rows, got {n}")
    observed = float(metric_fn(y_true, pred_a) - metric_fn(y_true, pred_b))
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)  # (N,) row indices with replacement
        diffs.append(float(metric_fn(y_true[rows], pred_a[rows]) - metric_fn(y_true[rows], pred_b[rows])))
    d = np.asarray(diffs)
    d = d[~np.isnan(d)]
    if not len(d):
        nan = float("nan")
        return {"mean_diff": observed, "low": nan, "high": nan, "p_value": nan, "n": n, "n_boot": 0}
    tail = (1 - confidence) / 2
    low, high = np.quantile(d, [tail, 1 - tail])
    p_value = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {"mean_diff": observed, "low": float(low), "high": float(high), "p_value": p_value, "n": n, "n_boot": int(len(d))}


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input's order (NaN stays NaN and is not counted).

    With the m finite p-values sorted ascending, p₍ᵢ₎ becomes max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎);
    rejecting every question whose adjusted p is below α is Holm's step-down test at family-wise
    level α. Ties keep their input order (the adjusted values of tied p-values are equal anyway).
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm_adjust takes a 1-D sequence of p-values, got shape {p.shape}")
    finite = np.flatnonzero(~np.isnan(p))
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[finite][(p[finite] < 0) | (p[finite] > 1)].tolist()}")
    out = np.full(len(p), np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def reading(ci: dict[str, Any], min_n: int = MIN_SEEDS) -> str:
    """The plain reading of a difference's interval (a `paired_ci` / `paired_bootstrap_ci` result).

    Returns:
        ``too few seeds (< 3)`` when ``n`` < `min_n`; else ``higher`` when the interval lies above
        zero, ``lower`` when below, ``no detectable difference`` when it contains zero (or is NaN).
    """
    if ci["n"] < min_n:
        return f"too few seeds (< {min_n})"
    low, high = ci["low"], ci["high"]
    if not (math.isnan(low) or math.isnan(high)):
        if low > 0:
            return "higher"
        if high < 0:
            return "lower"
    return "no detectable difference"


def format_ci(ci: dict[str, Any], digits: int = 3, signed: bool = True) -> str:
    """``+0.051 [−0.010, +0.112]`` (a `paired_ci` result) or ``0.456 [0.41, 0.50]`` (`mean_ci`)."""
    center = ci["mean_diff"] if "mean_diff" in ci else ci["mean"]
    if math.isnan(center):
        return "–"
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    if math.isnan(ci["low"]):
        return fmt.format(center)
    return f"{fmt.format(center)} [{fmt.format(ci['low'])}, {fmt.format(ci['high'])}]"
