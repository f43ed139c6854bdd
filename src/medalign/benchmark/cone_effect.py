"""The cone-effect study (Restrepo et al. 2026) as a `medalign benchmark` study kind: datasets × frozen backbones.

For every dataset × backbone the paper reports the mean resultant length R of each modality
(Table 1) and the early-fusion probe AUC as the modality gap is closed by λ (Fig. 3, 5 seeds).
One cell is one ``medalign gap-sweep`` run (the λ grid and the seeds inside it) on a prepared
manifest with a local model folder; nothing is trained, so a cell runs in this process.

The study YAML (``configs/benchmark/cone_effect.yaml``)::

    kind: cone_effect                  # what makes `medalign benchmark` run this module
    out: runs/cone_effect              # <out>/<dataset>/<backbone>/ per cell; table1.md, fig3* at the top
    sweep: gap_sweep_paper.yaml        # the gap-sweep config every cell starts from
    lambdas: [0.0, 0.1, ..., 1.0]
    seeds: [42, 43, 44, 45, 46]
    args: []                           # extra gap-sweep overrides, e.g. [--batch_size, "128"]
    datasets: {name: {manifest, task, label_columns, group}}   # group: a row heading of Table 1
    backbones: {name: {weights, arch, text_config_dir}}

``label_columns: from_report`` reads them from the ``prepare_report.json`` that ``medalign prepare``
wrote beside the manifest (the natural references' classes are the answers / dishes seen in train);
until that file exists the cell lists it as a missing input.

Resuming works as in the training benchmark (`medalign.benchmark.runner`): a cell's folder holds
``cell.json`` (its hash: the gap-sweep argv and the sweep config's contents) when it starts and
``done.json`` when its ``results.json`` is written; a finished cell with the same hash is
skipped, one whose hash changed (a λ grid, seed or path edited) is moved aside to
``<folder>.stale-<old hash>`` and run again. A cell whose manifest or weights are missing is
reported and left for later; a failing cell is recorded in ``failed.json`` and the grid goes on.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalign.benchmark.grid import args_hash
from medalign.benchmark.runner import CellOutcome, set_aside, start_cell

log = logging.getLogger(__name__)

KIND = "cone_effect"
KEYS = {"kind", "out", "sweep", "lambdas", "seeds", "args", "datasets", "backbones"}
DATASET_KEYS = {"manifest", "task", "label_columns", "group"}
BACKBONE_KEYS = {"weights", "arch", "text_config_dir"}
FROM_REPORT = "from_report"  # label_columns read from the prepare_report.json beside the manifest


@dataclass(frozen=True)
class ConeCell:
    """One dataset × backbone gap-sweep: where it writes, the argv it runs and the inputs it needs."""

    dataset: str
    backbone: str
    folder: Path
    argv: tuple[str, ...]
    needs: dict[str, str]  # what must exist before it can run: "manifest" / "weights" → path
    config_hash: str

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.backbone}"

    @property
    def missing(self) -> dict[str, str]:
        return {name: path for name, path in self.needs.items() if not Path(path).exists()}


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a cone-effect study YAML (bare names resolve in configs/).

    Raises:
        ValueError: naming the file and the key that is missing, unknown or wrong.
    """
    import yaml

    from medalign.paths import resolve_config

    file = resolve_config(path)
    raw = yaml.safe_load(file.read_text()) or {}
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ValueError(f"{file}: unknown keys {unknown}; a cone_effect study knows {sorted(KEYS)}")
    for key in ("datasets", "backbones"):
        if not isinstance(raw.get(key), dict) or not raw[key]:
            raise ValueError(f"{file}: '{key}' must be a non-empty mapping of name → settings")
    for name, d in raw["datasets"].items():
        d = d or {}
        missing = [k for k in ("manifest", "label_columns", "task") if k not in d]
        extra = sorted(set(d) - DATASET_KEYS)
        if missing or extra:
            raise ValueError(f"{file}: datasets.{name} lacks {missing} / has unknown keys {extra}; keys: {sorted(DATASET_KEYS)}")
        labels = d["label_columns"]
        if labels != FROM_REPORT and (not isinstance(labels, list) or not labels):
            raise ValueError(f"{file}: datasets.{name}.label_columns must be a non-empty list of manifest columns or "
                             f"'{FROM_REPORT}' (read from prepare_report.json beside the manifest), got {labels!r}")
    for name, b in raw["backbones"].items():
        b = b or {}
        if not b.get("weights") or set(b) - BACKBONE_KEYS:
            raise ValueError(f"{file}: backbones.{name} needs 'weights' (a local model folder or file) and only "
                             f"{sorted(BACKBONE_KEYS)}; got {sorted(b)}")
    raw["source"] = str(file)
    return raw


def _labels(d: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """A dataset's label columns and the extra input they need (its prepare_report.json, for ``from_report``)."""
    if d["label_columns"] != FROM_REPORT:
        return list(d["label_columns"]), {}
    from medalign.data.manifest import PREPARE_REPORT

    report = Path(d["manifest"]).parent / PREPARE_REPORT
    labels = json.loads(report.read_text()).get("label_columns", []) if report.is_file() else []
    return list(labels), {"prepare_report": str(report)}


def expand_cells(study: dict[str, Any], out: str | Path | None = None) -> list[ConeCell]:
    """Every dataset × backbone cell, datasets outermost, with its gap-sweep argv (`out` overrides the study's)."""
    root = Path(out or study.get("out", "runs/cone_effect"))
    cells = []
    for dname, d in study["datasets"].items():
        labels, report = _labels(d)
        for bname, b in study["backbones"].items():
            folder = root / dname / bname
            argv = ["--config", str(study.get("sweep", "gap_sweep_paper.yaml")), "--manifest", str(d["manifest"]),
                    "--label_columns", json.dumps(labels), "--task", str(d["task"]),
                    "--encoder", "open_clip", "--weights", str(b["weights"]), "--output_dir", str(folder)]  # fmt: skip
            for key in ("arch", "text_config_dir"):
                if b.get(key):
                    argv += [f"--{key}", str(b[key])]
            for key in ("lambdas", "seeds"):
                if key in study:
                    argv += [f"--{key}", json.dumps(study[key])]
            argv += [str(a) for a in study.get("args") or []]
            needs = {"manifest": str(d["manifest"]), **report, "weights": str(b["weights"])}
            cells.append(ConeCell(dname, bname, folder, tuple(argv), needs, args_hash(tuple(argv))))
    return cells


def cell_status(cell: ConeCell) -> str:
    """``done`` (finished with this hash), ``stale`` (another hash), ``partial`` (started, not finished) or ``new``."""
    for name, state in (("done.json", "done"), ("cell.json", "partial")):
        record = cell.folder / name
        if record.is_file():
            return state if json.loads(record.read_text()).get("config_hash") == cell.config_hash else "stale"
    return "new"


def dry_run(cells: list[ConeCell]) -> str:
    """Per cell: its state, each input it needs with ok / MISSING, and its command line; then a summary."""
    lines = [f"{len(cells)} cells"]
    states = [cell_status(c) for c in cells]
    for c, state in zip(cells, states):
        lines.append(f"\n# {c.dataset} × {c.backbone}: {state} (hash {c.config_hash}) → {c.folder}")
        lines += [f"#   {k}: {v} [{'MISSING' if k in c.missing else 'ok'}]" for k, v in c.needs.items()]
        lines.append(shlex.join(["medalign", "gap-sweep", *c.argv]))
    blocked = [c for c in cells if c.missing]
    lines.append(f"\n{states.count('done')} done, {states.count('stale')} stale, {states.count('partial')} partial, "
                 f"{states.count('new')} new; {len(blocked)} cells cannot run yet (missing inputs)")
    for path in sorted({p for c in blocked for p in c.missing.values()}):
        lines.append(f"  MISSING {path}")
    return "\n".join(lines)


def run_cells(cells: list[ConeCell]) -> list[CellOutcome]:
    """Run every cell that is not done; returns one outcome per cell (``done``, ``skipped``, ``missing``, ``failed``)."""
    from medalign.commands import gap_sweep
    from medalign.provenance import code_identity

    outcomes = []
    for c in cells:
        state = cell_status(c)
        if state == "done":
            log.info("cone_effect: %s done before (%s): skipped", c.key, c.folder / "done.json")
            outcomes.append(CellOutcome(c.key, "skipped"))
            continue
        if c.missing:
            log.warning("cone_effect: %s cannot run: missing %s", c.key, c.missing)
            outcomes.append(CellOutcome(c.key, "missing", error=f"missing {c.missing}"))
            continue
        if state == "stale":
            log.info("cone_effect: %s changed; the old run moved to %s", c.key, set_aside(c.folder, _recorded_hash(c)))
        record = {"key": c.key, "config_hash": c.config_hash, "argv": list(c.argv), "code": code_identity()}
        start_cell(c.folder, record)
        start = time.perf_counter()
        try:
            gap_sweep.run(list(c.argv))
            if not (c.folder / "results.json").is_file():
                raise RuntimeError(f"gap-sweep wrote no {c.folder / 'results.json'}")
        except Exception as err:  # one failing cell never stops the grid
            error = f"{type(err).__name__}: {err}"
            (c.folder / "failed.json").write_text(json.dumps({"key": c.key, "error": error}, indent=2))
            log.error("cone_effect: %s failed (%s); see %s", c.key, error, c.folder / "failed.json")
            outcomes.append(CellOutcome(c.key, "failed", time.perf_counter() - start, error))
            continue
        seconds = time.perf_counter() - start
        (c.folder / "done.json").write_text(json.dumps({**record, "results": "results.json", "seconds": seconds}, indent=2))
        outcomes.append(CellOutcome(c.key, "done", seconds))
    return outcomes


def _recorded_hash(cell: ConeCell) -> str:
    for name in ("done.json", "cell.json"):
        if (cell.folder / name).is_file():
            return str(json.loads((cell.folder / name).read_text()).get("config_hash", "unknown"))
    return "unknown"


def table1(study: dict[str, Any], results: dict[tuple[str, str], dict[str, Any]]) -> str:
    """Table 1 in the paper's layout: text R then image R per backbone, datasets grouped (medical / natural)."""
    backbones = list(study["backbones"])

    def r_at_zero(res: dict[str, Any], key: str) -> float:
        first = min(res["geometry"], key=lambda g: abs(g["lambda"]))
        return float(first[f"{key}_test"])

    def cell(d: str, b: str, key: str) -> str:
        return f"{r_at_zero(results[d, b], key):.3f}" if (d, b) in results else "—"

    header = ("| Dataset | " + " | ".join(f"Text R {b}" for b in backbones) + " | "
              + " | ".join(f"Image R {b}" for b in backbones) + " |")  # fmt: skip
    rows = [header, "|---|" + "---:|" * (2 * len(backbones))]
    group = None
    for d, settings in study["datasets"].items():
        if settings.get("group") and settings["group"] != group:
            group = settings["group"]
            rows.append(f"| **{group}** |" + " |" * (2 * len(backbones)))
        rows.append("| " + " | ".join([d, *(cell(d, b, "R_text") for b in backbones), *(cell(d, b, "R_image") for b in backbones)]) + " |")
    return ("## Table 1: mean resultant length R per modality (λ = 0, test split; — = cell not run)\n\n"
            + "\n".join(rows) + "\n")


def aggregate(study: dict[str, Any], cells: list[ConeCell], out: str | Path | None = None, plots: bool = True) -> dict[str, Any]:
    """Table 1 (``table1.md``) and Fig. 3 (``fig3.json``, ``fig3_auc_vs_lambda.png``) from the finished cells."""
    root = Path(out or study.get("out", "runs/cone_effect"))
    datasets, backbones = list(study["datasets"]), list(study["backbones"])
    results = {(c.dataset, c.backbone): json.loads((c.folder / "results.json").read_text())["result"]
               for c in cells if cell_status(c) == "done"}  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    table = table1(study, results)
    (root / "table1.md").write_text(table)
    curves = {f"{d}/{b}": {"lambdas": r["lambdas"], "auc_mean": r["auc_mean"], "auc_std": r["auc_std"],
                           "n_unconverged": r.get("n_unconverged", 0)}
              for (d, b), r in results.items()}  # fmt: skip
    unconverged = {k: c["n_unconverged"] for k, c in curves.items() if c["n_unconverged"]}
    if unconverged:  # their AUCs are not results (gap-sweep's own warning, repeated where the figure is read)
        table += (f"\n**Probes that did not converge** (early stopping never fired; those AUCs are not results): "
                  f"{', '.join(f'{k}: {n}' for k, n in unconverged.items())}\n")
        (root / "table1.md").write_text(table)
    (root / "fig3.json").write_text(json.dumps(curves, indent=2))
    written = ["table1.md", "fig3.json"]
    if plots and results:
        from medalign.evaluation.plots.style import new_figure, save_figure

        fig = new_figure((3.2 * len(backbones), 2.4 * len(datasets)))
        axes = fig.subplots(len(datasets), len(backbones), squeeze=False)
        for i, d in enumerate(datasets):
            for j, b in enumerate(backbones):
                ax = axes[i][j]
                if (d, b) in results:
                    r = results[d, b]
                    ax.errorbar(r["lambdas"], r["auc_mean"], yerr=r["auc_std"], marker="o", ms=3, capsize=2)
                ax.set_title(f"{d} · {b}", fontsize=8)
                ax.set_xlabel("λ") if i == len(datasets) - 1 else None
                ax.set_ylabel("AUC (mean ± sd over seeds)") if j == 0 else None
        save_figure(fig, root / "fig3_auc_vs_lambda.png")
        written.append("fig3_auc_vs_lambda.png")
    return {"table1": table, "fig3": curves, "cells_done": len(results), "cells": len(cells), "written": written}


def run_study(config: str | Path, out: str | None = None, dry: bool = False, aggregate_only: bool = False,
              only: list[str] | None = None, plots: bool = True) -> dict[str, Any]:
    """What `medalign benchmark --config <cone_effect study>` does: dry-run, run the missing cells, aggregate.

    Args:
        config: the study YAML.
        out: overrides the study's ``out``.
        dry: print every cell, what it needs and its command line; run nothing.
        aggregate_only: write Table 1 and Fig. 3 from the finished cells; run nothing.
        only: run only the cells of these datasets or backbones (aggregation covers every finished cell).
        plots: draw Fig. 3.
    """
    study = load_study(config)
    cells = expand_cells(study, out)
    if only:
        names = set(study["datasets"]) | set(study["backbones"])
        unknown = sorted(set(only) - names)
        if unknown:
            raise SystemExit(f"medalign benchmark: --only names {unknown}, not datasets or backbones of {study['source']}: {sorted(names)}")
    chosen = [c for c in cells if not only or c.dataset in only or c.backbone in only]
    if dry:
        print(dry_run(chosen))
        return {"cells": [c.key for c in chosen], "missing": {c.key: c.missing for c in chosen if c.missing}}
    outcomes = [] if aggregate_only else run_cells(chosen)
    if outcomes:
        count = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "missing", "failed")}
        print(f"benchmark cone_effect: {count['done']} run, {count['skipped']} skipped (finished before), "
              f"{count['missing']} waiting for inputs, {count['failed']} failed")
        for o in outcomes:
            if o.status in ("missing", "failed"):
                print(f"  {o.status.upper()} {o.key}: {o.error}")
    result = aggregate(study, cells, out, plots=plots)
    root = Path(out or study.get("out", "runs/cone_effect"))
    print(result["table1"])
    print(f"written: {', '.join(str(root / name) for name in result['written'])}")
    return {**result, "outcomes": [o.__dict__ for o in outcomes]}
