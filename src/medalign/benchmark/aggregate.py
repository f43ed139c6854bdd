"""Benchmark results: per-cell metrics → mean ± sd per (method, fraction, metric), paired
comparisons for the study's questions, and ``benchmark.md`` / ``benchmark.csv`` / ``results.json``.

Standard deviations are sample standard deviations over seeds (ddof = 1; undefined for one
seed, shown as "–"). A question's difference is paired: method − baseline on the same seed and
fraction, then mean ± sd of those differences.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medalign.benchmark.grid import BenchmarkConfig, Cell
from medalign.benchmark.runner import cell_status, latest_results
from medalign.evaluation.results import flatten_scalars, format_table


def cell_metrics(results: dict[str, Any]) -> dict[str, float]:
    """``<task name>.<metric>`` → value for every scalar of a results.json (sweeps left out)."""
    out: dict[str, float] = {}
    for task in results.get("tasks", []):
        scalars = flatten_scalars({k: v for k, v in task["metrics"].items() if k != "sweep"})
        out.update({f"{task['name']}.{k}": float(v) for k, v in scalars.items()})
    return out


def collect_results(cells: list[Cell]) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """(metrics per finished cell key, status per cell key: done / failed / missing / stale)."""
    metrics, status = {}, {}
    for cell in cells:
        state = cell_status(cell)
        results = latest_results(cell) if state == "done" else None
        if results is not None:
            metrics[cell.key] = cell_metrics(json.loads(results.read_text()))
            status[cell.key] = "done"
        elif (cell.folder / "failed.json").is_file():
            status[cell.key] = "failed"
        else:
            status[cell.key] = "stale" if state == "stale" else "missing"
    return metrics, status


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN sd for fewer than two values)."""
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else float("nan"))


def summarise(cells: list[Cell], metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per (method, fraction, metric) with the seeds' values, mean, sd and n."""
    groups: dict[tuple[str, float, str], dict[int, float]] = {}
    for cell in cells:
        for name, value in metrics.get(cell.key, {}).items():
            groups.setdefault((cell.method, cell.fraction, name), {})[cell.seed] = value
    rows = []
    for (method, fraction, name), by_seed in groups.items():
        values = [by_seed[s] for s in sorted(by_seed)]
        finite = [v for v in values if not math.isnan(v)]
        mean, sd = mean_sd(finite) if finite else (float("nan"), float("nan"))
        rows.append({"method": method, "fraction": fraction, "metric": name, "mean": mean, "sd": sd,
                     "n": len(finite), "seeds": sorted(by_seed), "values": values})
    return rows


def compare(cfg: BenchmarkConfig, cells: list[Cell], metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Each question at each fraction: paired differences method − baseline over the common seeds."""
    value = {(c.method, c.fraction, c.seed): metrics.get(c.key, {}) for c in cells}
    out = []
    for q in cfg.questions:
        for fraction in cfg.fractions:
            diffs = []
            for seed in cfg.seeds:
                a, b = value.get((q.method, fraction, seed), {}), value.get((q.baseline, fraction, seed), {})
                if q.metric in a and q.metric in b:
                    diffs.append(a[q.metric] - b[q.metric])
            mean, sd = mean_sd(diffs) if diffs else (float("nan"), float("nan"))
            out.append({"question": q.question, "method": q.method, "baseline": q.baseline, "metric": q.metric,
                        "fraction": fraction, "difference_mean": mean, "difference_sd": sd, "n": len(diffs),
                        "differences": diffs})
    return out


def _pm(mean: float, sd: float, n: int) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.4g} ± {sd:.2g} (n={n})" if not math.isnan(sd) else f"{mean:.4g} (n={n})"


def _reading(row: dict[str, Any]) -> str:
    """A plain-words reading of a paired difference: within ±2 standard errors or not."""
    n, mean, sd = row["n"], row["difference_mean"], row["difference_sd"]
    if n < 2 or math.isnan(sd):
        return "too few seeds to tell"
    se = sd / math.sqrt(n)
    if abs(mean) <= 2 * se:
        return "no clear difference (|Δ| ≤ 2 SE)"
    return f"{row['method']} {'higher' if mean > 0 else 'lower'} (|Δ| > 2 SE)"


def markdown(cfg: BenchmarkConfig, summary: list[dict[str, Any]], questions: list[dict[str, Any]], status: dict[str, str]) -> str:
    """benchmark.md: per-fraction tables (methods × metrics), the questions, cell status."""
    metric_names = cfg.metrics or sorted({r["metric"] for r in summary})
    index = {(r["method"], r["fraction"], r["metric"]): r for r in summary}
    parts = [f"# Benchmark `{cfg.name}`", "",
             f"Base config `{cfg.base}`, seeds {cfg.seeds}, training fractions {cfg.fractions}; "
             "mean ± sample sd over seeds (n = seeds that finished)."]
    for fraction in cfg.fractions:
        body = []
        for method in cfg.methods:
            cells = [index.get((method.name, fraction, m)) for m in metric_names]
            body.append([method.name, *(_pm(c["mean"], c["sd"], c["n"]) if c else "–" for c in cells)])
        parts += ["", f"## Training fraction {fraction:g}", "", format_table(["method", *metric_names], body, numeric=set())]
    if questions:
        body = [[q["question"], f"{q['method']} − {q['baseline']}", q["metric"], f"{q['fraction']:g}",
                 _pm(q["difference_mean"], q["difference_sd"], q["n"]), _reading(q)] for q in questions]
        parts += ["", "## Questions (paired by seed)", "",
                  format_table(["question", "difference", "metric", "fraction", "Δ mean ± sd", "reading"], body, numeric=set())]
    bad = {k: v for k, v in status.items() if v != "done"}
    parts += ["", f"## Cells: {sum(v == 'done' for v in status.values())} of {len(status)} finished"]
    if bad:
        parts += [""] + [f"- `{k}`: {v}" for k, v in sorted(bad.items())]
    return "\n".join(parts) + "\n"


def aggregate(cfg: BenchmarkConfig, cells: list[Cell], out_dir: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Write benchmark.md, benchmark.csv, results.json (and plots) for whatever cells finished."""
    out = Path(out_dir or cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics, status = collect_results(cells)
    summary = summarise(cells, metrics)
    questions = compare(cfg, cells, metrics)
    (out / "benchmark.md").write_text(markdown(cfg, summary, questions, status))
    with (out / "benchmark.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "fraction", "metric", "mean", "sd", "n", "values"])
        for r in summary:
            writer.writerow([r["method"], r["fraction"], r["metric"], r["mean"], r["sd"], r["n"], json.dumps(r["values"])])
    result = {"config": {**asdict(cfg)}, "cells": status, "per_cell": metrics, "summary": summary, "questions": questions}
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str, allow_nan=True))
    if plots and summary:
        from medalign.benchmark.plots import plot_bars, plot_fraction_lines

        names = cfg.metrics or sorted({r["metric"] for r in summary})
        result["plots"] = [str(plot_bars(summary, cfg, names, out / "benchmark_bars.png"))]
        if len(cfg.fractions) > 1:
            result["plots"].append(str(plot_fraction_lines(summary, cfg, names, out / "benchmark_fractions.png")))
    return result
