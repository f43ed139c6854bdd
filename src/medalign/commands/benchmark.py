"""`medalign benchmark --config benchmark/<study>.yaml`: a grid of methods × seeds × training
fractions through the normal `fit` and `test` paths, then one table, plots and results.json.

    medalign benchmark --config benchmark/demo.yaml              # run (resumes; skips finished cells)
    medalign benchmark --config benchmark/demo.yaml --dry-run    # print the grid and each cell's commands
    medalign benchmark --config benchmark/demo.yaml --aggregate  # tables and plots from finished cells only

Tables: mean over seeds with a t-based 95 % CI; questions: paired differences by seed with the CI,
p-value, Holm-adjusted p over the questions tabulated, and reading (higher / lower / no detectable
difference / too few seeds). Cells whose probe did not converge are marked and left out
(--include-unconverged counts them); cells from another code version are refused (--allow-mixed,
--rerun-outdated).

On a cluster, submit each printed cell (two command lines) as its own job, then run
``--aggregate`` once they are done.

A study with ``kind: cone_effect`` (``benchmark/cone_effect.yaml``) is the cone-effect paper's
grid of datasets × frozen backbones instead (`medalign.benchmark.cone_effect`): each cell is one
``gap-sweep``; ``--dry-run`` lists each cell's manifest and weights folder (ok / MISSING), a run
skips finished cells, and the aggregate is Table 1 (``table1.md``) and Fig. 3.
"""

from __future__ import annotations

import argparse
import sys

from medalign.commands.flags import HelpFormatter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medalign benchmark", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--config", required=True, help="study YAML (bare names resolve in configs/, e.g. benchmark/demo)")
    parser.add_argument("--out", default=None, help="override the study's output folder")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the grid and every cell's command lines; run nothing")
    mode.add_argument("--aggregate", action="store_true", help="only aggregate the cells that finished")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="run (or, with --aggregate, tabulate) only these methods, in the study file's order "
                             "(a method may build on an earlier one's cells); one call per method sets another order")
    parser.add_argument("--only", nargs="+", default=None, help="cone_effect study: run only these datasets or backbones")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    parser.add_argument("--include-unconverged", action="store_true",
                        help="count cells whose probe did not converge in means and differences (they are marked ⚠ either way)")
    parser.add_argument("--allow-mixed", action="store_true", help="aggregate cells finished by different code versions (refused by default)")
    parser.add_argument("--rerun-outdated", action="store_true",
                        help="re-run cells finished by another code version (default: keep them; --aggregate then refuses to mix)")
    parser.add_argument("--quiet", action="store_true", help="no per-cell start/end lines (elapsed time, grid ETA)")
    return parser


def _study_kind(config: str) -> str:
    """The study's ``kind``: ``training`` (methods × seeds × fractions; the default) or ``cone_effect``."""
    import yaml

    from medalign.paths import resolve_config

    file = resolve_config(config)
    raw = yaml.safe_load(file.read_text())
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind is None:
        return "training"
    if kind != "cone_effect":
        raise SystemExit(f"medalign benchmark: {file}: kind {kind!r} is unknown; use cone_effect or leave it out (a training study)")
    return kind


def run(argv: list[str]) -> dict:
    args = _parser().parse_args(argv)
    if _study_kind(args.config) == "cone_effect":
        from medalign.benchmark.cone_effect import run_study

        if args.methods:
            raise SystemExit("medalign benchmark: a cone_effect study has datasets and backbones, not methods: "
                             "use --only NAME ...")
        return run_study(args.config, args.out, args.dry_run, args.aggregate, args.only, plots=not args.no_plots)
    if args.only:
        raise SystemExit(f"medalign benchmark: --only is for cone_effect studies; {args.config} has methods: use --methods")
    from dataclasses import replace

    from medalign.benchmark import aggregate, expand_grid, load_benchmark_config, run_grid
    from medalign.benchmark.grid import print_grid
    from medalign.benchmark.runner import cell_status

    cfg = load_benchmark_config(args.config)
    if args.out:
        cfg = replace(cfg, out=args.out)
    cells = expand_grid(cfg)
    if args.methods:
        unknown = sorted(set(args.methods) - {m.name for m in cfg.methods})
        if unknown:
            raise SystemExit(f"medalign benchmark: unknown methods {unknown}; the study has {[m.name for m in cfg.methods]}")
        cells = [c for c in cells if c.method in args.methods]
    if args.dry_run:
        print(print_grid(cells))
        from medalign.provenance import code_identity

        states = [cell_status(c, code_identity()["code_version"]) for c in cells]
        print(f"\n{states.count('done')} done, {states.count('outdated')} done by another code version, "
              f"{states.count('partial')} partial, {states.count('stale')} stale, {states.count('new')} new")
        return {"cells": [c.key for c in cells]}
    if not args.aggregate:
        outcomes = run_grid(cells, progress=not args.quiet, rerun_outdated=args.rerun_outdated)
        failed = [o for o in outcomes if o.status == "failed"]
        outdated = sum(o.status == "outdated" for o in outcomes)
        print(f"benchmark {cfg.name}: {sum(o.status == 'done' for o in outcomes)} run, "
              f"{sum(o.status == 'skipped' for o in outcomes)} skipped (finished before), {len(failed)} failed"
              + (f", {outdated} kept from another code version (--rerun-outdated re-runs them)" if outdated else ""))
        for o in failed:
            print(f"  FAILED {o.key}: {o.error}", file=sys.stderr)
    from medalign.benchmark.aggregate import MixedCodeVersions

    if args.methods:  # the tables and questions of those methods only
        names = set(args.methods)
        cfg = replace(cfg, methods=[m for m in cfg.methods if m.name in names],
                      questions=[q for q in cfg.questions if {q.baseline, q.method} <= names])
    try:
        result = aggregate(cfg, expand_grid(cfg), plots=not args.no_plots, include_unconverged=args.include_unconverged,
                           allow_mixed=args.allow_mixed)
    except MixedCodeVersions as err:
        raise SystemExit(str(err)) from None
    print((__import__("pathlib").Path(cfg.out) / "benchmark.md").read_text())
    print(f"written: {cfg.out}/benchmark.md, benchmark.csv, results.json" + (", plots" if result.get("plots") else ""))
    return result
