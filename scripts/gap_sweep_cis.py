"""The λ-sweep study's table (docs/gap_sweep.md): per run, test AUC at each λ with its t-based 95 % CI
over the probe seeds, the paired λ effect AUC(λ_max) − AUC(λ=0) (same seed, so the same validation
rows and data order), and the translation test: does removing the probe's bias create a λ effect?

    python scripts/gap_sweep_cis.py converge:bias=runs/gs/converge_bias converge:no-bias=... paper:bias=... paper:no-bias=...

Each argument is LABEL=FOLDER with the folder of a `medalign gap-sweep` run (its results.json).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from medalign.metrics.stats import format_ci, mean_ci, paired_ci, reading


def load(folder: str) -> dict:
    return json.loads((Path(folder) / "results.json").read_text())


def main(args: list[str]) -> None:
    runs = {label: load(folder) for label, folder in (a.split("=", 1) for a in args)}
    print("| run | converged | λ selected (val) | " + " | ".join(f"test AUC λ = {l:g}" for l in next(iter(runs.values()))["result"]["lambdas"])
          + " | Δ AUC(λ = 1) − AUC(λ = 0) [95 % CI] | p | reading |")
    print("|---|---|---|" + "---|" * len(next(iter(runs.values()))["result"]["lambdas"]) + "---|---|---|")
    effects = {}
    for label, res in runs.items():
        r = res["result"]
        auc = np.asarray(r["auc"])  # (L, S)
        conv = np.asarray(r["converged"])
        lam = r["lambdas"]
        i0, i1 = lam.index(0.0), int(np.argmax(lam))
        cells = [format_ci(mean_ci(auc[l]), 4, signed=False) for l in range(len(lam))]
        effect = paired_ci(auc[i1], auc[i0])
        effects[label] = auc[i1] - auc[i0]
        print(f"| {label} | {int(conv.sum())}/{conv.size} | {r['best_lambda']:g} | " + " | ".join(cells)
              + f" | {format_ci(effect, 4)} | {effect['p_value']:.2g} | {reading(effect)} |")
    pairs = [(a, b) for a in effects for b in effects if a.split(":")[0] == b.split(":")[0] and a.endswith("no-bias") and b.endswith(":bias")]
    for no_bias, bias in pairs:
        ci = paired_ci(effects[no_bias], effects[bias])
        print(f"\nλ effect without bias − with bias ({no_bias.split(':')[0]}): {format_ci(ci, 4)}, p = {ci['p_value']:.2g}, "
              f"{reading(ci)} (n = {ci['n']} seeds)")


if __name__ == "__main__":
    main(sys.argv[1:])
