"""`medalign cone-effect --config benchmark/cone_effect.yaml`: the cone-effect paper's grid, resumable.

Restrepo et al. (2026) measure, for every dataset × frozen backbone, the mean resultant length R
of each modality (Table 1) and the early-fusion probe AUC as the modality gap is closed by λ
(Fig. 3, 5 seeds). One cell is one ``medalign gap-sweep`` run (λ grid and seeds inside it) on a
prepared manifest with a local model folder; a cell whose ``results.json`` exists is skipped.

    medalign cone-effect --config benchmark/cone_effect.yaml --dry-run     # what each cell needs
    medalign cone-effect --config benchmark/cone_effect.yaml               # run the missing cells
    medalign cone-effect --config benchmark/cone_effect.yaml --aggregate   # Table 1 + Fig. 3 only

The study YAML: ``out``, ``sweep`` (a gap-sweep config, e.g. ``gap_sweep_paper.yaml``), ``lambdas``,
``seeds``, ``args`` (extra gap-sweep overrides), ``datasets`` {name: {manifest, label_columns, task}}
and ``backbones`` {name: {weights, arch, text_config_dir}}.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ConeCell:
    """One dataset × backbone gap-sweep: where it writes and the argv it runs."""

    dataset: str
    backbone: str
    folder: Path
    argv: tuple[str, ...]
    needs: dict[str, str]  # what must exist before it can run: name → path

    @property
    def done(self) -> bool:
        return (self.folder / "results.json").is_file()


def load_study(path: str | Path) -> dict[str, Any]:
    """Read and check a cone-effect study YAML (bare names resolve in configs/)."""
    import yaml

    from medalign.paths import resolve_config

    file = resolve_config(path)
    raw = yaml.safe_load(file.read_text()) or {}
    for key in ("datasets", "backbones"):
        if not isinstance(raw.get(key), dict) or not raw[key]:
            raise ValueError(f"{file}: '{key}' must be a non-empty mapping of name → settings")
    for name, d in raw["datasets"].items():
        missing = [k for k in ("manifest", "label_columns", "task") if k not in (d or {})]
        if missing:
            raise ValueError(f"{file}: datasets.{name} lacks {missing}")
    for name, b in raw["backbones"].items():
        if not (b or {}).get("weights"):
            raise ValueError(f"{file}: backbones.{name} needs 'weights' (a local model folder or file)")
    return raw


def expand_cells(study: dict[str, Any]) -> list[ConeCell]:
    """Every dataset × backbone cell, datasets outermost, with its gap-sweep argv."""
    out = Path(study.get("out", "runs/cone_effect"))
    cells = []
    for dname, d in study["datasets"].items():
        for bname, b in study["backbones"].items():
            folder = out / dname / bname
            argv = ["--config", str(study.get("sweep", "gap_sweep_paper.yaml")), "--manifest", str(d["manifest"]),
                    "--label_columns", json.dumps(list(d["label_columns"])), "--task", str(d["task"]),
                    "--encoder", "open_clip", "--weights", str(b["weights"]), "--output_dir", str(folder)]  # fmt: skip
            for key in ("arch", "text_config_dir"):
                if b.get(key):
                    argv += [f"--{key}", str(b[key])]
            for key in ("lambdas", "seeds"):
                if key in study:
                    argv += [f"--{key}", json.dumps(study[key])]
            argv += [str(a) for a in study.get("args", [])]
            needs = {"manifest": str(d["manifest"]), "weights": str(b["weights"])}
            cells.append(ConeCell(dname, bname, folder, tuple(argv), needs))
    return cells


def dry_run(cells: list[ConeCell]) -> str:
    """Per cell: state, what it needs (and whether it is there), and its command line."""
    import shlex

    lines = [f"{len(cells)} cells ({sum(c.done for c in cells)} done)"]
    for c in cells:
        lines.append(f"\n# {c.dataset} × {c.backbone}: {'done' if c.done else 'to run'} → {c.folder}")
        lines += [f"#   {k}: {v} [{'ok' if Path(v).exists() else 'MISSING'}]" for k, v in c.needs.items()]
        lines.append(shlex.join(["medalign", "gap-sweep", *c.argv]))
    return "\n".join(lines)


def aggregate(study: dict[str, Any], cells: list[ConeCell], plots: bool = True) -> dict[str, Any]:
    """Table 1 (R of text and image at λ = 0, test split) and Fig. 3 (AUC vs λ) from finished cells."""
    out = Path(study.get("out", "runs/cone_effect"))
    datasets, backbones = list(study["datasets"]), list(study["backbones"])
    results = {(c.dataset, c.backbone): json.loads((c.folder / "results.json").read_text())["result"]
               for c in cells if c.done}  # fmt: skip

    def r_at_zero(res: dict[str, Any], key: str) -> float:
        first = min(res["geometry"], key=lambda g: abs(g["lambda"]))
        return float(first[f"{key}_test"])

    def cell(d: str, b: str, key: str) -> str:
        return f"{r_at_zero(results[d, b], key):.3f}" if (d, b) in results else "—"

    header = "| Dataset | " + " | ".join(f"text {b}" for b in backbones) + " | " + " | ".join(f"image {b}" for b in backbones) + " |"
    rows = [header, "|---|" + "---:|" * (2 * len(backbones))]
    rows += ["| " + " | ".join([d, *(cell(d, b, "R_text") for b in backbones), *(cell(d, b, "R_image") for b in backbones)]) + " |"
             for d in datasets]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    table = "## Table 1: mean resultant length R (λ = 0, test split)\n\n" + "\n".join(rows) + "\n"
    (out / "table1.md").write_text(table)
    curves = {f"{d}/{b}": {"lambdas": r["lambdas"], "auc_mean": r["auc_mean"], "auc_std": r["auc_std"]}
              for (d, b), r in results.items()}  # fmt: skip
    (out / "fig3.json").write_text(json.dumps(curves, indent=2))
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
                ax.set_ylabel("AUC") if j == 0 else None
        save_figure(fig, out / "fig3_auc_vs_lambda.png")
    print(table)
    return {"table1": table, "fig3": curves, "cells_done": len(results), "cells": len(cells)}


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="medalign cone-effect", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="study YAML (e.g. benchmark/cone_effect.yaml)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list every cell, what it needs and its command; run nothing")
    mode.add_argument("--aggregate", action="store_true", help="only write Table 1 and Fig. 3 from finished cells")
    parser.add_argument("--only", nargs="+", default=None, help="run only these datasets or backbones")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    study = load_study(args.config)
    cells = expand_cells(study)
    chosen = [c for c in cells if not args.only or c.dataset in args.only or c.backbone in args.only]
    if args.dry_run:
        print(dry_run(chosen))
        return {"cells": [f"{c.dataset}/{c.backbone}" for c in chosen]}
    if not args.aggregate:
        from medalign.commands import gap_sweep

        for c in chosen:
            if c.done:
                print(f"skip {c.dataset} × {c.backbone}: {c.folder / 'results.json'} exists")
                continue
            missing = {k: v for k, v in c.needs.items() if not Path(v).exists()}
            if missing:
                print(f"SKIP {c.dataset} × {c.backbone}: missing {missing}")
                continue
            gap_sweep.run(list(c.argv))
    return aggregate(study, cells, plots=not args.no_plots)
