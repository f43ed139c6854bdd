"""Linear probe on frozen image embeddings with a training-set-size sweep (eCLIP paper §5, sample efficiency).

Logistic regression (scikit-learn) per label for multi-label data (one-vs-rest, rows with an
unknown label left out of that label's fit and score), or one multinomial model for
single-label data; ROC AUC per class and macro-averaged over classes with both outcomes in
the test set.

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


def fraction_sweep(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    classes: Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    multilabel: bool = True,
    seed: int = 0,
    progress: bool = True,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """`fit_probe` on seeded random subsets of the training rows, one per fraction.

    Args:
        progress: report each fitted fraction (`medalign.progress`: a bar on a terminal, log lines otherwise).

    Returns:
        {"<fraction>": fit_probe result + ``fraction``}.
    """
    from medalign.progress import track

    out = {}
    for fraction in track(list(fractions), desc=f"linear probes ({len(classes)} classes)", enabled=None if progress else False,
                          unit="fraction"):
        rows = subsample(len(train_x), fraction, seed)
        result = fit_probe(train_x[rows], train_y[rows], test_x, test_y, classes, multilabel, seed=seed, **kwargs)
        out[f"{fraction:g}"] = {"fraction": float(fraction), **result}
    return out


def plot_fraction_sweep(sweep: dict[str, dict[str, Any]], path: str | Path, title: str = "linear probe") -> Path:
    """Macro AUC vs training fraction (log x axis) as a PNG (the one plot style: OO matplotlib)."""
    from medalign.evaluation.plots.style import new_figure, save_figure

    fractions = [v["fraction"] for v in sweep.values()]
    aucs = [v["macro_auc"] for v in sweep.values()]
    fig = new_figure((4.5, 3.2))
    ax = fig.subplots()
    ax.plot(fractions, aucs, marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("fraction of training rows")
    ax.set_ylabel("macro AUC")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
