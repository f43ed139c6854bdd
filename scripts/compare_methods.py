"""CLIP vs eCLIP vs its baselines and the gap-closing objectives on the synthetic set, several seeds.

Every run is `train.py fit --config demo_eclip.yaml` plus the method's override files, then
`test` with the checkpoint of best validation zero-shot macro-F1. m³-mix fine-tunes the same
seed's final CLIP weights (so ``clip`` must run first), as the eCLIP paper does. The table
(mean ± sd over seeds of test zero-shot macro-F1, accuracy and image→report R@10, and the
geometry of the final model on the validation split: modality gap, R, alignment, uniformity)
is printed and written into the doc between the ``compare_methods`` markers, with a plot.

    python scripts/compare_methods.py                         # eCLIP methods × 3 seeds → docs/eclip.md
    python scripts/bench_methods.py --out runs/bench_methods.json
    python scripts/compare_methods.py --methods clip dacl m3mix siglip gap_closing eclip \
        --doc docs/methods.md --overhead runs/bench_methods.json            # → docs/methods.md
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
CLIP = ["--config", "ablations/clip.yaml"]
METHODS = {  # name → extra configs / flags on top of the base config
    "clip": CLIP,
    "eclip": [],
    "naive": ["--config", "ablations/naive.yaml"],
    "random_heatmaps": ["--config", "ablations/random_heatmaps.yaml"],
    "dacl": [*CLIP, "--config", "methods/dacl.yaml"],
    "m3mix": [*CLIP, "--config", "methods/m3mix.yaml"],  # + --model.init_from the CLIP run
    "siglip": [*CLIP, "--config", "methods/siglip.yaml"],
    "gap_closing": [*CLIP, "--config", "methods/gap_closing.yaml"],
    "eclip_gap_closing": ["--config", "methods/gap_closing.yaml"],
}
GEOMETRY = {"modality_gap": "gap", "r_image": "R img", "r_text": "R txt", "alignment": "alignment", "uniformity": "uniformity"}
TASKS = "[{type: zero_shot}, {type: retrieval, ks: [1, 5, 10]}]"  # the evaluation suite's tasks we report
METRICS = {"zero_shot_macro_f1": ("zero_shot", "macro_f1"), "zero_shot_accuracy": ("zero_shot", "accuracy"),
           "i2t_R@10": ("retrieval", "i2t_R@10")}  # R@K in %
START, END = "<!-- compare_methods:start -->", "<!-- compare_methods:end -->"


def run_one(method: str, seed: int, args) -> dict[str, float]:
    out = Path(args.out) / method / f"seed{seed}"
    done = out / "result.json"
    if done.exists() and not args.rerun:  # a finished run: the comparison resumes where it stopped
        print(f"{method} seed {seed}: reusing {done}", flush=True)
        return json.loads(done.read_text())
    common = ["--config", args.config, *METHODS[method], "--seed_everything", str(seed), "--data.seed", str(seed)]
    if method != "clip":
        common += ["--model.expert_seed", str(seed)]  # objectives draw with their own seed (init_args.seed)
    if method == "m3mix":  # a fine-tune of this seed's final CLIP weights
        common += ["--model.init_from", str(Path(args.out) / "clip" / f"seed{seed}" / "final.ckpt")]
    epochs = args.finetune_epochs if method == "m3mix" else args.max_epochs
    common += [f"--trainer.{k}={v}" for k, v in (("max_epochs", epochs), ("limit_train_batches", args.limit_train_batches)) if v is not None]
    quiet = ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    fit = cli_main(["fit", *common, *quiet, "--trainer.default_root_dir", str(out), "--checkpoint.dirpath", str(out / "ckpt")])
    if method == "clip":
        fit.trainer.save_checkpoint(out / "final.ckpt")
    geometry = {k: float(fit.trainer.callback_metrics[f"geometry/{k}"]) for k in GEOMETRY if f"geometry/{k}" in fit.trainer.callback_metrics}
    best = fit.trainer.checkpoint_callback.best_model_path or fit.trainer.checkpoint_callback.last_model_path
    test = cli_main(["test", *common, "--trainer.logger", "false", "--evaluation.progress", "false",
                     "--evaluation.tasks", TASKS, "--ckpt_path", best])
    found = {(t["name"], k): v for t in test.evaluation_results.get("tasks", []) for k, v in t["metrics"].items()}
    result = {key: float(found[(task, metric)]) for key, (task, metric) in METRICS.items() if (task, metric) in found}
    result.update(geometry)
    result.update(expert_pairs_seen=int(getattr(fit.model, "expert_pairs_seen", 0)), seconds=time.perf_counter() - start)
    print(json.dumps({"method": method, "seed": seed, **result}), flush=True)
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(done)
    return result


def table(results: dict[str, list[dict[str, float]]], args) -> str:
    def cell(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else float("nan")
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    if args.doc.endswith("methods.md"):
        return methods_table(results, args)
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


def _cell(values: list[float], digits: int = 3) -> str:
    values = [v for v in values if v == v]
    if not values:
        return "–"
    sd = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.{digits}f}{sd}"


def methods_table(results: dict[str, list[dict[str, float]]], args) -> str:
    """docs/methods.md's table: scores, end-of-training geometry and step-time overhead."""
    overhead = json.loads(Path(args.overhead).read_text())["ratio_to_clip"] if args.overhead and Path(args.overhead).exists() else {}
    lines = [
        f"Synthetic set, `{args.config}`, seeds {args.seeds}"
        + (f", max_epochs {args.max_epochs}" if args.max_epochs else "")
        + (f", m³-mix fine-tune epochs {args.finetune_epochs}" if args.finetune_epochs else "")
        + (f", limit_train_batches {args.limit_train_batches}" if args.limit_train_batches else "")
        + ". F1 and R@10: test split, best-validation checkpoint; geometry: validation split, final model.",
        "",
        "| method | zero-shot macro-F1 | image→report R@10 (%) | " + " | ".join(GEOMETRY.values()) + " | step time / CLIP |",
        "|---" * (4 + len(GEOMETRY)) + "|",
    ]
    for method, runs in results.items():
        cells = [_cell([r.get("zero_shot_macro_f1", float("nan")) for r in runs]),
                 _cell([r.get("i2t_R@10", float("nan")) for r in runs], 1)]
        cells += [_cell([r.get(k, float("nan")) for r in runs]) for k in GEOMETRY]
        ratio = overhead.get(method)  # eCLIP's own overhead: scripts/bench_eclip_overhead.py
        cells.append(f"{ratio:.2f}" if ratio is not None else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict[str, list[dict[str, float]]], path: Path) -> None:
    """Bars of mean ± sd per method for F1, R@10 and the geometry metrics."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover
        raise ImportError("the plot needs matplotlib: pip install medalign[plots]") from err
    keys = {"zero_shot_macro_f1": "zero-shot macro-F1", "i2t_R@10": "R@10", **GEOMETRY}
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3.2))
    names = list(results)
    for ax, (key, label) in zip(axes, keys.items()):
        values = [[r[key] for r in results[m] if key in r] for m in names]
        means = [statistics.mean(v) if v else float("nan") for v in values]
        sds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
        ax.bar(range(len(names)), means, yerr=sds, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(label, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if START not in doc or END not in doc:
        raise ValueError(f"{DOC} lacks the markers {START} … {END}")
    DOC.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{text}\n{END}", doc, flags=re.S))


def main() -> None:
    global DOC
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo_eclip.yaml")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=None, help="override the config's trainer.max_epochs")
    parser.add_argument("--limit-train-batches", type=int, default=None)
    parser.add_argument("--finetune-epochs", type=int, default=None, help="m³-mix fine-tune epochs (default: configs/methods/m3mix.yaml's)")
    parser.add_argument("--doc", default=str(DOC), help="markdown file with the compare_methods markers")
    parser.add_argument("--overhead", default=None, help="scripts/bench_methods.py --out JSON for the step-time column")
    parser.add_argument("--out", default=str(ROOT / "runs" / "compare_methods"))
    parser.add_argument("--rerun", action="store_true", help="train again even where a run's result.json exists")
    parser.add_argument("--no-write", action="store_true", help=f"print the table only, leave {DOC} alone")
    args = parser.parse_args()
    if "m3mix" in args.methods and ("clip" not in args.methods or args.methods.index("clip") > args.methods.index("m3mix")):
        parser.error("m3mix fine-tunes the CLIP run: list clip before m3mix in --methods")
    DOC = Path(args.doc)
    argv = sys.argv
    results = {m: [] for m in args.methods}
    for seed in args.seeds:  # seed-major: an interrupted run still has every method at seed 0
        for method in args.methods:
            results[method].append(run_one(method, seed, args))
            sys.argv = argv
    text = table(results, args)
    print(text)
    if not args.no_write:
        if args.doc.endswith("methods.md"):
            plot(results, DOC.with_name("methods_compare.png"))
            text += "\n\n![methods](methods_compare.png)"
        write_doc(text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
