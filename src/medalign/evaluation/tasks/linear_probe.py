"""Linear probe on frozen image embeddings with a training-set-size sweep (eCLIP paper §5, sample efficiency).

Logistic regression (scikit-learn) per label for multi-label data (one-vs-rest, rows with an
unknown label left out of that label's fit and score), or one multinomial model for
single-label data; ROC AUC per class and macro-averaged over classes with both outcomes in
the test set.

Sample efficiency (`fraction_sweep`): each fraction below 1 is drawn ``repeats`` times with seeds
``seed, seed + 1, ...``; the result is the mean macro AUC with a 95 % t-interval over the repeats
(one subsample says nothing about the spread: 1 % of RSNA is ~180 images). ``C`` is scikit-learn's
default 1.0 unless a grid and validation rows are given: then each repeat picks the C with the
best validation macro AUC on its own subsample (ties: the smaller C, i.e. stronger L2).

Convergence: a model has converged iff L-BFGS stopped on its tolerance before ``max_iter``
iterations (``n_iter_ < max_iter``). Unconverged fits are reported (``converged`` per class and
overall, ``unconverged`` lists them) and logged with what to change; their AUCs are not results.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from medalign.metrics.classification import binary_auc, macro_average

log = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.01, 0.1, 1.0)


def subsample(n: int, fraction: float, seed: int, minimum: int = 2) -> np.ndarray:
    """Sorted row positions of a seeded random `fraction` of `n` rows (at least `minimum`)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"training fraction must be in (0, 1], got {fraction}")
    size = min(n, max(minimum, int(round(fraction * n))))
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, seed: int) -> tuple[LogisticRegression, bool]:
    """(model, converged): converged iff L-BFGS stopped before `max_iter` iterations."""
    with warnings.catch_warnings():  # reported as `converged` instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(C=C, max_iter=max_iter, random_state=seed).fit(x, y)
    return model, bool(np.max(model.n_iter_) < max_iter)


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: Sequence[str],
    multilabel: bool = True,
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit on (train_x (N, D), train_y) and score ROC AUC on the test rows.

    Args:
        train_y / test_y: (N, K) 1 / 0 / NaN for `multilabel`, else (N,) class ids or one-hot (N, K).
        C: inverse L2 strength of `LogisticRegression`.

    Returns:
        ``per_class_auc`` {class: AUC or NaN}, ``macro_auc`` (mean over defined classes), ``n_train``,
        ``converged`` (every fitted model converged), ``per_class_converged`` {class: bool, None if not fitted}.
    """
    per_class: dict[str, float] = {}
    converged: dict[str, bool | None] = {}
    if multilabel:
        for k, name in enumerate(classes):
            tr, te = ~np.isnan(train_y[:, k]), ~np.isnan(test_y[:, k])
            y_tr = train_y[tr, k].astype(int)
            if len(np.unique(y_tr)) < 2 or not te.any():  # nothing to learn or to score
                per_class[name], converged[name] = float("nan"), None
                continue
            model, converged[name] = _fit(train_x[tr], y_tr, C, max_iter, seed)
            per_class[name] = binary_auc(test_y[te, k].astype(int), model.predict_proba(test_x[te])[:, 1])
    else:
        y_tr = train_y if train_y.ndim == 1 else np.nan_to_num(train_y).argmax(1)
        y_te = test_y if test_y.ndim == 1 else np.nan_to_num(test_y).argmax(1)
        model, ok = _fit(train_x, y_tr, C, max_iter, seed)
        converged = {name: ok for name in classes}
        proba = np.zeros((len(test_x), len(classes)))
        proba[:, model.classes_] = model.predict_proba(test_x)
        per_class = {name: binary_auc((y_te == k).astype(int), proba[:, k]) for k, name in enumerate(classes)}
    unconverged = [name for name, ok in converged.items() if ok is False]
    if unconverged:
        log.warning("linear probe (%d train rows): logistic regression did not converge within max_iter=%d for %s; "
                    "their AUCs are not results: raise max_iter or lower C (stronger L2)", len(train_x), max_iter, unconverged)
    return {
        "per_class_auc": per_class,
        "macro_auc": macro_average(list(per_class.values())),
        "n_train": int(len(train_x)),
        "converged": not unconverged,
        "per_class_converged": converged,
    }


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t interval of the mean over repeats; NaN bounds for fewer than 2."""
    from scipy import stats

    v = np.asarray([x for x in values if not np.isnan(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return mean, mean - half, mean + half


def choose_C(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, classes: Sequence[str],
    C_grid: Sequence[float], multilabel: bool = True, seed: int = 0, **kwargs: Any,
) -> tuple[float, dict[str, float]]:
    """The C of `C_grid` with the best validation macro AUC (ties: the smallest C); also every C's score."""
    scores = {f"{C:g}": fit_probe(train_x, train_y, val_x, val_y, classes, multilabel, C=C, seed=seed, **kwargs)["macro_auc"]
              for C in sorted(C_grid)}  # fmt: skip
    defined = {k: v for k, v in scores.items() if not np.isnan(v)}
    if not defined:
        return float(min(C_grid)), scores
    best = max(defined.values())
    return float(next(k for k, v in defined.items() if v == best)), scores


def fraction_sweep(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    multilabel: bool = True,
    seed: int = 0,
    repeats: int = 1,
    C_grid: Sequence[float] | None = None,
    val_x: np.ndarray | None = None,
    val_y: np.ndarray | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """`fit_probe` on seeded random subsets of the training rows, `repeats` per fraction below 1.

    Args:
        repeats: subsamples per fraction (seeds ``seed + r``); fraction 1 is fitted once.
        C_grid: candidate C values, chosen per repeat on (`val_x`, `val_y`); None: ``C`` from kwargs (1.0).
        val_x / val_y: validation rows for choosing C (needed with `C_grid`).
        progress: report each fitted fraction (`medalign.progress`: a bar on a terminal, log lines otherwise).

    Returns:
        {"<fraction>": the first repeat's `fit_probe` result with ``macro_auc`` and ``per_class_auc``
        replaced by their means over repeats, plus ``fraction``, ``repeats``, ``macro_auc_sd``,
        ``macro_auc_ci95`` [low, high] (None for one repeat) and ``runs`` (per repeat: seed, C, C_scores, macro_auc, n_train, converged)}.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    if C_grid is not None and (val_x is None or val_y is None or len(val_x) == 0):
        raise ValueError("linear probe: C_grid needs validation rows (val_x, val_y): set val_split to a split with rows")
    from medalign.progress import track

    out = {}
    for fraction in track(list(fractions), desc=f"linear probes ({len(classes)} classes)", enabled=None if progress else False,
                          unit="fraction"):
        runs = []
        for r in range(repeats if fraction < 1 else 1):
            rows = subsample(len(train_x), fraction, seed + r)
            x, y = train_x[rows], train_y[rows]
            fit_kwargs = dict(kwargs)
            scores = None
            if C_grid is not None:
                fit_kwargs["C"], scores = choose_C(x, y, val_x, val_y, classes, C_grid, multilabel, seed + r, **kwargs)
            result = fit_probe(x, y, test_x, test_y, classes, multilabel, seed=seed + r, **fit_kwargs)
            runs.append((result, {"seed": seed + r, "C": float(fit_kwargs.get("C", 1.0)), "C_scores": scores,
                                  "macro_auc": result["macro_auc"], "n_train": result["n_train"],
                                  "converged": result["converged"]}))  # fmt: skip
        first = runs[0][0]
        mean, low, high = mean_ci([run["macro_auc"] for _, run in runs])
        aucs = np.array([run["macro_auc"] for _, run in runs], dtype=float)
        per_class = {c: float(np.nanmean([res["per_class_auc"][c] for res, _ in runs]))
                     if any(not np.isnan(res["per_class_auc"][c]) for res, _ in runs) else float("nan") for c in classes}
        out[f"{fraction:g}"] = {
            "fraction": float(fraction), **first, "per_class_auc": per_class, "macro_auc": mean,
            "converged": all(run["converged"] for _, run in runs), "repeats": len(runs),
            "macro_auc_sd": float(np.nanstd(aucs, ddof=1)) if len(runs) > 1 else None,
            "macro_auc_ci95": [low, high] if len(runs) > 1 else None, "runs": [run for _, run in runs],
        }  # fmt: skip
    return out


def plot_fraction_sweep(sweep: dict[str, dict[str, Any]], path: str | Path, title: str = "linear probe") -> Path:
    """Macro AUC vs training fraction (log x axis) as a PNG, y from below chance (0.5, dotted) to 1."""
    from medalign.evaluation.plots.style import chance_line, legend_below, new_figure, save_figure

    fractions = [v["fraction"] for v in sweep.values()]
    aucs = [v["macro_auc"] for v in sweep.values()]
    fig = new_figure((4.5, 3.6))
    ax = fig.subplots()
    ax.plot(fractions, aucs, marker="o", label="linear probe")
    bounds = np.array([v.get("macro_auc_ci95") or [np.nan, np.nan] for v in sweep.values()], dtype=float)  # (F, 2)
    if np.isfinite(bounds).any():
        ax.fill_between(fractions, bounds[:, 0], bounds[:, 1], alpha=0.2, label="95 % CI over repeats")
    ax.set_xscale("log")
    ax.set_xlabel("fraction of training rows")
    ax.set_ylabel("macro AUC")
    finite = [a for a in aucs if a == a]  # drop NaN (a class without both outcomes)
    ax.set_ylim(min([0.45, *finite]) - 0.02, 1.0)
    chance_line(ax, 0.5, "chance AUC")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    legend_below(fig, ax)
    return save_figure(fig, path)
