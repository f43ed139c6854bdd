"""Benchmark results: per-cell metrics → mean with a 95 % CI per (method, fraction, metric), paired
comparisons for the study's questions, quality flags, and ``benchmark.md`` / ``benchmark.csv`` /
``results.json``.

Statistics (`medalign.metrics.stats`): a cell of a table is the mean over seeds with its t-based
95 % CI (df = n − 1; sd as well in the CSV). A question's difference is paired: method − baseline
on the same seed and fraction, then the mean difference with its t-based 95 % CI, the paired t-test
p-value and the plain reading — higher / lower (the CI excludes zero) / no detectable difference /
too few seeds (< 3). The questions tabulated are a family: each also gets its Holm-adjusted p over
them, questions × fractions (`holm_adjust`; with ``--methods`` only the questions among those
methods); a reading "survives" the correction when that p is below 0.05.

Quality flags (boolean and string leaves of a task's metrics, e.g. the probe's ``converged@1``)
are counted per (method, fraction). A task with a ``converged*`` flag that is False is
*unconverged* in that cell: its metrics are marked and left out of means and differences unless
``include_unconverged``.

Code versions: every finished cell records the code that produced it (`medalign.provenance`);
aggregating cells from different code versions raises `MixedCodeVersions` unless ``allow_mixed``.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from medalign.benchmark.grid import BenchmarkConfig, Cell
from medalign.benchmark.runner import cell_status, latest_results
from medalign.evaluation.results import flatten_flags, flatten_scalars, format_table
from medalign.metrics.stats import format_ci, holm_adjust, mean_ci, paired_ci, reading


class MixedCodeVersions(ValueError):
    """Finished cells come from more than one code version."""


def cell_metrics(results: dict[str, Any]) -> dict[str, float]:
    """``<task name>.<metric>`` → value for every scalar of a results.json (sweeps left out)."""
    out: dict[str, float] = {}
    for task in results.get("tasks", []):
        scalars = flatten_scalars({k: v for k, v in task["metrics"].items() if k != "sweep"})
        out.update({f"{task['name']}.{k}": float(v) for k, v in scalars.items()})
    return out


def cell_flags(results: dict[str, Any]) -> dict[str, bool | str]:
    """``<task name>.<flag>`` → value for every boolean / string leaf of a results.json (sweeps left out)."""
    out: dict[str, bool | str] = {}
    for task in results.get("tasks", []):
        flags = flatten_flags({k: v for k, v in task["metrics"].items() if k != "sweep"})
        out.update({f"{task['name']}.{k}": v for k, v in flags.items()})
    return out


def unconverged_tasks(flags: dict[str, bool | str]) -> set[str]:
    """Task names with a ``converged*`` flag that is False (``linear_probe.converged@1: false``)."""
    return {name.split(".", 1)[0] for name, value in flags.items()
            if value is False and name.split(".", 1)[1].rsplit(".", 1)[-1].startswith("converged")}


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


def collect_flags(cells: list[Cell], status: dict[str, str]) -> dict[str, dict[str, bool | str]]:
    """Quality flags per finished cell key."""
    out = {}
    for cell in cells:
        results = latest_results(cell) if status.get(cell.key) == "done" else None
        if results is not None:
            out[cell.key] = cell_flags(json.loads(results.read_text()))
    return out


def collect_identity(cells: list[Cell], status: dict[str, str]) -> dict[str, dict[str, Any]]:
    """What each finished cell's ``done.json`` records: config hash, code identity, manifest hash."""
    out = {}
    for cell in cells:
        if status.get(cell.key) == "done":
            done = json.loads((cell.folder / "done.json").read_text())
            out[cell.key] = {k: done.get(k) for k in ("config_hash", "code", "manifest", "manifest_sha256")}
    return out


def code_versions(identity: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Code version → the cells it produced (cells that recorded none: ``unknown``)."""
    out: dict[str, list[str]] = {}
    for key, ident in identity.items():
        out.setdefault((ident.get("code") or {}).get("code_version") or "unknown", []).append(key)
    return out


def check_code_versions(identity: dict[str, dict[str, Any]], allow_mixed: bool = False) -> None:
    """Raise `MixedCodeVersions` when the finished cells come from more than one code version."""
    versions = code_versions(identity)
    if len(versions) > 1 and not allow_mixed:
        lines = [f"  {v}: {len(keys)} cells, e.g. {sorted(keys)[0]}" for v, keys in sorted(versions.items())]
        raise MixedCodeVersions(
            "benchmark: the finished cells come from different code versions:\n" + "\n".join(lines)
            + "\nre-run the old ones (`medalign benchmark --config ... --rerun-outdated`) or pass --allow-mixed "
            "to aggregate them anyway (the tables then say so)")


def excluded_metrics(cells: list[Cell], flags: dict[str, dict[str, bool | str]], metrics: dict[str, dict[str, float]]) -> dict[str, set[str]]:
    """Cell key → metric names of its unconverged tasks."""
    out = {}
    for cell in cells:
        bad = unconverged_tasks(flags.get(cell.key, {}))
        names = {m for m in metrics.get(cell.key, {}) if m.split(".", 1)[0] in bad}
        if names:
            out[cell.key] = names
    return out


def summarise(
    cells: list[Cell], metrics: dict[str, dict[str, float]], excluded: dict[str, set[str]] | None = None,
    include_unconverged: bool = False,
) -> list[dict[str, Any]]:
    """One row per (method, fraction, metric): the seeds' values, mean, sd, 95 % CI (``low``, ``high``), n.

    Values of unconverged tasks (`excluded`) are left out of the statistics unless
    `include_unconverged`; ``unconverged_seeds`` lists their seeds either way.
    """
    excluded = excluded or {}
    groups: dict[tuple[str, float, str], dict[int, tuple[float, bool]]] = {}
    for cell in cells:
        for name, value in metrics.get(cell.key, {}).items():
            bad = name in excluded.get(cell.key, set())
            groups.setdefault((cell.method, cell.fraction, name), {})[cell.seed] = (value, bad)
    rows = []
    for (method, fraction, name), by_seed in groups.items():
        seeds = sorted(by_seed)
        values = [by_seed[s][0] for s in seeds]
        unconverged = [s for s in seeds if by_seed[s][1]]
        used = [by_seed[s][0] for s in seeds if include_unconverged or not by_seed[s][1]]
        ci = mean_ci(used)
        rows.append({"method": method, "fraction": fraction, "metric": name, "mean": ci["mean"], "sd": ci["sd"],
                     "low": ci["low"], "high": ci["high"], "n": ci["n"], "seeds": seeds, "values": values,
                     "unconverged_seeds": unconverged})
    return rows


def compare(
    cfg: BenchmarkConfig, cells: list[Cell], metrics: dict[str, dict[str, float]],
    excluded: dict[str, set[str]] | None = None, include_unconverged: bool = False,
) -> list[dict[str, Any]]:
    """Each question at each fraction: paired differences method − baseline over the common seeds,
    with the t-based 95 % CI, p-value, reading (`medalign.metrics.stats`) and the Holm-adjusted
    p-value over all the questions × fractions compared here (``p_holm``)."""
    excluded = excluded or {}
    value = {}
    for c in cells:
        drop = set() if include_unconverged else excluded.get(c.key, set())
        value[(c.method, c.fraction, c.seed)] = {k: v for k, v in metrics.get(c.key, {}).items() if k not in drop}
    out = []
    for q in cfg.questions:
        for fraction in cfg.fractions:
            a, b, seeds = [], [], []
            for seed in cfg.seeds:
                x, y = value.get((q.method, fraction, seed), {}), value.get((q.baseline, fraction, seed), {})
                if q.metric in x and q.metric in y:
                    a.append(x[q.metric])
                    b.append(y[q.metric])
                    seeds.append(seed)
            ci = paired_ci(a, b)
            diffs = [x - y for x, y in zip(a, b)]
            sd = mean_ci(diffs)["sd"]
            out.append({"question": q.question, "method": q.method, "baseline": q.baseline, "metric": q.metric,
                        "fraction": fraction, "difference_mean": ci["mean_diff"], "difference_sd": sd,
                        "low": ci["low"], "high": ci["high"], "p_value": ci["p_value"], "n": ci["n"],
                        "seeds": seeds, "differences": diffs, "reading": reading(ci)})
    for row, p_holm in zip(out, holm_adjust([row["p_value"] for row in out])):
        row["p_holm"] = p_holm
    return out


def _p(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3g}"


def _cell(row: dict[str, Any] | None) -> str:
    """``0.456 [0.41, 0.50] (n=3)`` with ⚠ and the count of unconverged seeds when there are any."""
    if row is None or math.isnan(row["mean"]):
        return "–"
    text = f"{format_ci(row, signed=False)} (n={row['n']})"
    return text + (f" ⚠ {len(row['unconverged_seeds'])} unconverged" if row["unconverged_seeds"] else "")


def _flag_rows(cfg: BenchmarkConfig, cells: list[Cell], flags: dict[str, dict[str, bool | str]]) -> list[list[str]]:
    """(method, fraction, flag, summary) rows: booleans as ``k/n true``, strings as value counts."""
    groups: dict[tuple[str, float, str], list[bool | str]] = {}
    for cell in cells:
        for name, value in flags.get(cell.key, {}).items():
            groups.setdefault((cell.method, cell.fraction, name), []).append(value)
    body = []
    for (method, fraction, name), values in sorted(groups.items()):
        if all(isinstance(v, bool) for v in values):
            k = sum(values)
            text = f"{k}/{len(values)} true" + (" ⚠" if k < len(values) and "converged" in name else "")
        else:
            text = ", ".join(f"{v} ×{n}" for v, n in Counter(map(str, values)).most_common())
        body.append([method, f"{fraction:g}", name, text])
    return body


def markdown(
    cfg: BenchmarkConfig, summary: list[dict[str, Any]], questions: list[dict[str, Any]], status: dict[str, str],
    flag_rows: list[list[str]] | None = None, versions: dict[str, list[str]] | None = None, include_unconverged: bool = False,
) -> str:
    """benchmark.md: per-fraction tables (methods × metrics), the questions, quality flags, cell status."""
    metric_names = cfg.metrics or sorted({r["metric"] for r in summary})
    index = {(r["method"], r["fraction"], r["metric"]): r for r in summary}
    unconverged_rule = ("unconverged cells are included (⚠ marks them)" if include_unconverged
                        else "cells whose task did not converge are left out of its metrics (⚠ counts them)")
    parts = [f"# Benchmark `{cfg.name}`", "",
             f"Base config `{cfg.base}`, seeds {cfg.seeds}, training fractions {cfg.fractions}. "
             f"Each cell: mean over seeds [t-based 95 % CI] (n = seeds used); {unconverged_rule}."]
    if cfg.primary:
        parts += ["", f"**Primary metric (pre-declared in the study file): `{cfg.primary}`**; the others are secondary."]
    if versions and len(versions) > 1:
        parts += ["", f"**Mixed code versions** (aggregated with --allow-mixed): "
                  + "; ".join(f"`{v}` {len(k)} cells" for v, k in sorted(versions.items()))]
    for fraction in cfg.fractions:
        body = []
        for method in cfg.methods:
            body.append([method.name, *(_cell(index.get((method.name, fraction, m))) for m in metric_names)])
        parts += ["", f"## Training fraction {fraction:g}", "", format_table(["method", *metric_names], body, numeric=set())]
    if questions:
        body = [[q["question"], f"{q['method']} − {q['baseline']}", q["metric"], f"{q['fraction']:g}",
                 format_ci({"mean_diff": q["difference_mean"], "low": q["low"], "high": q["high"]}),
                 _p(q["p_value"]), _p(q["p_holm"]), str(q["n"]), q["reading"]] for q in questions]
        finite = [q for q in questions if not math.isnan(q["p_holm"])]
        survivors = sum(q["p_holm"] < 0.05 and q["reading"] in ("higher", "lower") for q in finite)
        parts += ["", "## Questions (paired by seed: method − baseline, t-based 95 % CI, paired t-test)", "",
                  f"Holm p: the p-value adjusted for the {len(finite)} comparisons below (Holm's step-down, "
                  f"family-wise 5 %); {survivors} reading(s) of higher/lower survive it.", "",
                  format_table(["question", "difference", "metric", "fraction", "Δ [95 % CI]", "p", "Holm p", "n", "reading"], body, numeric=set())]
    if flag_rows:
        parts += ["", "## Quality flags (finished cells)", "", format_table(["method", "fraction", "flag", "cells"], flag_rows, numeric=set())]
    bad = {k: v for k, v in status.items() if v != "done"}
    parts += ["", f"## Cells: {sum(v == 'done' for v in status.values())} of {len(status)} finished"]
    if bad:
        parts += [""] + [f"- `{k}`: {v}" for k, v in sorted(bad.items())]
    return "\n".join(parts) + "\n"


def aggregate(
    cfg: BenchmarkConfig, cells: list[Cell], out_dir: str | Path | None = None, plots: bool = True,
    include_unconverged: bool = False, allow_mixed: bool = False,
) -> dict[str, Any]:
    """Write benchmark.md, benchmark.csv, results.json (and plots) for whatever cells finished.

    Raises:
        MixedCodeVersions: the finished cells come from different code versions and not `allow_mixed`.
    """
    out = Path(out_dir or cfg.out)
    metrics, status = collect_results(cells)
    identity = collect_identity(cells, status)
    check_code_versions(identity, allow_mixed)
    out.mkdir(parents=True, exist_ok=True)
    flags = collect_flags(cells, status)
    excluded = excluded_metrics(cells, flags, metrics)
    summary = summarise(cells, metrics, excluded, include_unconverged)
    questions = compare(cfg, cells, metrics, excluded, include_unconverged)
    flag_rows = _flag_rows(cfg, cells, flags)
    versions = code_versions(identity)
    (out / "benchmark.md").write_text(markdown(cfg, summary, questions, status, flag_rows, versions, include_unconverged))
    with (out / "benchmark.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "fraction", "metric", "mean", "low", "high", "sd", "n", "values", "unconverged_seeds"])
        for r in summary:
            writer.writerow([r["method"], r["fraction"], r["metric"], r["mean"], r["low"], r["high"], r["sd"], r["n"],
                             json.dumps(r["values"]), json.dumps(r["unconverged_seeds"])])
    result = {"config": {**asdict(cfg)}, "cells": status, "identity": identity, "code_versions": versions,
              "include_unconverged": include_unconverged, "per_cell": metrics, "flags": flags,
              "excluded": {k: sorted(v) for k, v in excluded.items()}, "summary": summary, "questions": questions}
    (out / "results.json").write_text(json.dumps(result, indent=2, default=str, allow_nan=True))
    if plots and summary:
        from medalign.benchmark.plots import plot_bars, plot_fraction_lines, plot_questions, plot_steps_lines

        names = cfg.metrics or sorted({r["metric"] for r in summary})
        result["plots"] = [str(plot_bars(summary, cfg, names, out / "benchmark_bars.png"))]
        if len(cfg.fractions) > 1:
            result["plots"].append(str(plot_fraction_lines(summary, cfg, names, out / "benchmark_fractions.png")))
        if cfg.steps:
            result["plots"].append(str(plot_steps_lines(summary, cfg, names, out / "benchmark_steps.png")))
        if any(q["n"] for q in questions):
            result["plots"].append(str(plot_questions(questions, cfg, out / "benchmark_questions.png")))
    return result
