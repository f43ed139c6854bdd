"""Benchmark pictures: grouped bars with error bars (method × fraction), metric vs fraction and metric vs steps,
and the questions as a forest plot (paired differences with their confidence intervals)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from medalign.evaluation.plots.style import chance_line, legend_below, new_figure, save_figure


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def chance_level(metric: str) -> float | None:
    """The chance value of a metric, drawn as a dotted line: 0.5 for an AUC, 0 for NSS; None when unknown."""
    name = metric.lower().split("@")[0].replace("/", ".").split(".")[-1]  # linear_probe.macro_auc@0.1 → macro_auc
    if "auc" in name:
        return 0.5
    if name.startswith("nss"):
        return 0.0
    return None


def _mark_chance(ax, metric: str) -> None:
    level = chance_level(metric)
    if level is not None:
        chance_line(ax, level, "chance")


def plot_bars(summary: list[dict[str, Any]], cfg: Any, metrics: list[str], path: str | Path) -> Path:
    """One panel per metric: bars per method (grouped by fraction), error bars = sd over seeds."""
    index = {(r["method"], r["fraction"], r["metric"]): r for r in summary}
    rows, cols = _grid(len(metrics))
    fig = new_figure((4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    methods = [m.name for m in cfg.methods]
    width = 0.8 / max(len(cfg.fractions), 1)
    for ax, metric in zip(axes, metrics):
        for j, fraction in enumerate(cfg.fractions):
            cells = [index.get((m, fraction, metric)) for m in methods]
            means = [c["mean"] if c else np.nan for c in cells]
            sds = [0.0 if not c or math.isnan(c["sd"]) else c["sd"] for c in cells]
            x = np.arange(len(methods)) + (j - (len(cfg.fractions) - 1) / 2) * width
            ax.bar(x, means, width, yerr=sds, capsize=3, label=f"fraction {fraction:g}")
        ax.set_xticks(np.arange(len(methods)), methods, rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        _mark_chance(ax, metric)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    legend_below(fig, ncol=len(cfg.fractions) + 1)  # fractions (when several) and the chance line
    fig.suptitle(f"benchmark {cfg.name}: mean ± sd over seeds {cfg.seeds}", fontsize=10)
    return save_figure(fig, path)


def _finish_log_x_panels(fig: Any, axes: np.ndarray, metrics: list[str], xlabel: str, n_lines: int, cfg: Any,
                         path: str | Path) -> Path:
    """Log x axis, labels, chance lines, a legend below and the title of a lines-per-method figure."""
    for ax, metric in zip(axes, metrics):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(metric, fontsize=9)
        ax.grid(alpha=0.3)
        _mark_chance(ax, metric)
    for ax in axes[len(metrics):]:
        ax.set_visible(False)
    legend_below(fig, ncol=min(n_lines + 1, 6))
    fig.suptitle(f"benchmark {cfg.name}: mean ± sd over seeds {cfg.seeds}", fontsize=10)
    return save_figure(fig, path)


def plot_fraction_lines(summary: list[dict[str, Any]], cfg: Any, metrics: list[str], path: str | Path) -> Path:
    """One panel per metric: mean ± sd vs training fraction (log x), one line per method."""
    index = {(r["method"], r["fraction"], r["metric"]): r for r in summary}
    rows, cols = _grid(len(metrics))
    fig = new_figure((4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    fractions = sorted(cfg.fractions)
    for ax, metric in zip(axes, metrics):
        for method in cfg.methods:
            cells = [index.get((method.name, f, metric)) for f in fractions]
            means = np.array([c["mean"] if c else np.nan for c in cells])
            sds = np.array([0.0 if not c or math.isnan(c["sd"]) else c["sd"] for c in cells])
            ax.errorbar(fractions, means, yerr=sds, marker="o", capsize=3, label=method.name)
    return _finish_log_x_panels(fig, axes, metrics, "training fraction", len(cfg.methods), cfg, path)


def plot_steps_lines(summary: list[dict[str, Any]], cfg: Any, metrics: list[str], path: str | Path) -> Path:
    """One panel per metric: mean ± sd vs training steps (log x), one line per method of the study (eCLIP Fig. 4 top)."""
    index = {(r["method"], r["fraction"], r["metric"]): r for r in summary}
    rows, cols = _grid(len(metrics))
    fig = new_figure((4.2 * cols, 3.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    series = list(dict.fromkeys(m.series for m in cfg.methods if m.series))
    for ax, metric in zip(axes, metrics):
        for name in series:
            for fraction in cfg.fractions:
                points = sorted((m.steps, index.get((m.name, fraction, metric))) for m in cfg.methods if m.series == name)
                means = np.array([c["mean"] if c else np.nan for _, c in points])
                sds = np.array([0.0 if not c or math.isnan(c["sd"]) else c["sd"] for _, c in points])
                label = name if len(cfg.fractions) == 1 else f"{name}, fraction {fraction:g}"
                ax.errorbar([n for n, _ in points], means, yerr=sds, marker="o", capsize=3, label=label)
    return _finish_log_x_panels(fig, axes, metrics, "training steps (batches)", len(series) * len(cfg.fractions), cfg, path)


READING_COLOURS = {"higher": "tab:green", "lower": "tab:red", "no detectable difference": "0.3",
                   "too few seeds (< 3)": "0.7"}


def _question_label(q: dict[str, Any], several_fractions: bool) -> str:
    label = q["question"] or f"{q['method']} − {q['baseline']}"
    return f"{label}, fraction {q['fraction']:g}" if several_fractions else label


def _ran(q: dict[str, Any]) -> bool:
    """Whether a question has paired seeds to show."""
    return q["n"] > 0 and not math.isnan(q["difference_mean"])


def _p_label(q: dict[str, Any]) -> str:
    if not _ran(q):
        return "not run"
    p, holm = q["p_value"], q.get("p_holm", float("nan"))
    if math.isnan(p):
        return f"n = {q['n']}"
    return f"p {p:.2g} · Holm {holm:.2g} · n = {q['n']}"


def plot_questions(questions: list[dict[str, Any]], cfg: Any, path: str | Path) -> Path:
    """The study's questions as a forest plot: one panel per metric, one row per question (× fraction).

    Each row is the mean paired difference method − baseline (a dot) with its t-based 95 % CI (a
    horizontal line), coloured by its reading (higher / lower / no detectable difference / too few
    seeds); a vertical line marks zero, and the right axis gives p, Holm p and the number of paired
    seeds. Questions without pairs are listed as "not run".

    Args:
        questions: rows of `medalign.benchmark.aggregate.compare` (question, method, baseline, metric,
            fraction, difference_mean, low, high, p_value, p_holm, n, reading).
        cfg: the study (its name and fractions label the figure).
        path: the PNG to write.
    """
    metrics = list(dict.fromkeys(q["metric"] for q in questions))
    several = len({q["fraction"] for q in questions}) > 1
    groups = [[q for q in questions if q["metric"] == m] for m in metrics]
    fig = new_figure((10.0, 1.2 + 0.32 * len(questions) + 0.5 * len(metrics)))  # the pip hint if matplotlib is missing
    from matplotlib.ticker import MaxNLocator  # after `new_figure`, as in every medalign figure

    axes = np.atleast_1d(fig.subplots(len(metrics), 1, gridspec_kw={"height_ratios": [len(g) + 1 for g in groups]}))
    for ax, metric, group in zip(axes, metrics, groups):
        y = np.arange(len(group))[::-1].astype(float)  # first question at the top
        for yi, q in zip(y, group):
            if not _ran(q):
                continue
            colour = READING_COLOURS.get(q["reading"], "0.3")
            if not (math.isnan(q["low"]) or math.isnan(q["high"])):
                ax.hlines(yi, q["low"], q["high"], color=colour, linewidth=2)
            ax.scatter([q["difference_mean"]], [yi], color=colour, zorder=3, s=25, label=q["reading"])
        ax.axvline(0.0, color="0.2", linewidth=1, linestyle="--", zorder=0)
        ax.set_yticks(y, [_question_label(q, several) for q in group], fontsize=7)
        ax.set_ylim(-0.7, len(group) - 0.3)
        right = ax.secondary_yaxis("right")
        right.set_yticks(y, [_p_label(q) for q in group], fontsize=7)
        right.tick_params(length=0)
        ax.set_title(f"{metric}: method − baseline, paired by seed, 95 % CI", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    legend_below(fig, ncol=4)
    fig.suptitle(f"benchmark {cfg.name}: questions (t-based CI, df = n − 1; Holm over the {len(questions)} shown)", fontsize=10)
    return save_figure(fig, path)
