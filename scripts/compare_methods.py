"""CLIP vs eCLIP vs naive vs the random-heatmap control on the synthetic set, several seeds each.

Every run is `train.py fit --config demo_eclip.yaml` plus the method's override file, then
`test` with the checkpoint of best validation zero-shot macro-F1. The table (mean ± sd over
seeds of test zero-shot macro-F1 and accuracy) is printed and written into docs/eclip.md
between the ``compare_methods`` markers.

    python scripts/compare_methods.py                         # 4 methods × 3 seeds, demo_eclip.yaml
    python scripts/compare_methods.py --seeds 0 --methods clip eclip --limit-train-batches 3 \
        --max-epochs 1 --no-write                             # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from medalign.training.cli import cli_main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "eclip.md"
METHODS = {  # name → extra configs / flags on top of the base config
    "clip": ["--config", "ablations/clip.yaml"],
    "eclip": [],
    "naive": ["--config", "ablations/naive.yaml"],
    "random_heatmaps": ["--config", "ablations/random_heatmaps.yaml"],
}
TASKS = "[{type: zero_shot}, {type: retrieval, ks: [1, 5, 10]}]"  # the evaluation suite's tasks we report
METRICS = {"zero_shot_macro_f1": ("zero_shot", "macro_f1"), "zero_shot_accuracy": ("zero_shot", "accuracy"),
           "i2t_R@10": ("retrieval", "i2t_R@10")}  # R@K in %
START, END = "<!-- compare_methods:start -->", "<!-- compare_methods:end -->"


def run_one(method: str, seed: int, args) -> dict[str, float]:
    out = Path(args.out) / method / f"seed{seed}"
    common = ["--config", args.config, *METHODS[method], "--seed_everything", str(seed), "--data.seed", str(seed)]
    if method != "clip":
        common += ["--model.expert_seed", str(seed)]
    common += [f"--trainer.{k}={v}" for k, v in (("max_epochs", args.max_epochs), ("limit_train_batches", args.limit_train_batches)) if v is not None]
    quiet = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    fit = cli_main(["fit", *common, *quiet, "--trainer.default_root_dir", str(out), "--checkpoint.dirpath", str(out / "ckpt")])
    best = fit.trainer.checkpoint_callback.best_model_path or fit.trainer.checkpoint_callback.last_model_path
    test = cli_main(["test", *common, "--trainer.logger", "false", "--evaluation.progress", "false",
                     "--evaluation.tasks", TASKS, "--ckpt_path", best])
    found = {(t["name"], k): v for t in test.evaluation_results.get("tasks", []) for k, v in t["metrics"].items()}
    result = {key: float(found[(task, metric)]) for key, (task, metric) in METRICS.items() if (task, metric) in found}
    result.update(expert_pairs_seen=int(getattr(fit.model, "expert_pairs_seen", 0)), seconds=time.perf_counter() - start)
    print(json.dumps({"method": method, "seed": seed, **result}), flush=True)
    return result


def table(results: dict[str, list[dict[str, float]]], args) -> str:
    def cell(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    lines = [
        f"Synthetic test split, `{args.config}`, seeds {args.seeds}"
        + (f", max_epochs {args.max_epochs}" if args.max_epochs else "")
        + (f", limit_train_batches {args.limit_train_batches}" if args.limit_train_batches else "") + ".",
        "",
        "| method | zero-shot macro-F1 | zero-shot accuracy | image→report R@10 (%) | expert pairs seen | minutes / run |",
        "|---|---|---|---|---|---|",
    ]
    for method, runs in results.items():
        f1 = cell([r["zero_shot_macro_f1"] for r in runs])
        acc = cell([r["zero_shot_accuracy"] for r in runs])
        r10 = cell([r.get("i2t_R@10", float("nan")) for r in runs])
        pairs = int(statistics.mean(r["expert_pairs_seen"] for r in runs))
        minutes = statistics.mean(r["seconds"] for r in runs) / 60
        lines.append(f"| {method} | {f1} | {acc} | {r10} | {pairs} | {minutes:.1f} |")
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        raise ValueError(f"{DOC} lacks the markers {START} … {END}")
    DOC.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{text}\n{END}", doc, flags=re.S))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo_eclip.yaml")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=None, help="override the config's trainer.max_epochs")
    parser.add_argument("--limit-train-batches", type=int, default=None)
    parser.add_argument("--out", default=str(ROOT / "runs" / "compare_methods"))
    parser.add_argument("--no-write", action="store_true", help=f"print the table only, leave {DOC} alone")
    args = parser.parse_args()
    argv = sys.argv
    results = {m: [] for m in args.methods}
    for seed in args.seeds:  # seed-major: an interrupted run still has every method at seed 0
        for method in args.methods:
            results[method].append(run_one(method, seed, args))
            sys.argv = argv
    text = table(results, args)
    print(text)
    if not args.no_write:
        write_doc(text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
