"""Does the gaze test bed's shortcut hurt CLIP? (docs/testbed.md, "The shortcut bites")

Trains the tiny CLIP of ``configs/demo_gaze.yaml`` on the test bed with its burn-in shortcut and on
the same test bed without it (``--shortcut 0``: the same images, reports and splits, no markers),
for each seed, to its validation plateau (early stopping on val zero-shot macro-F1, ``--patience``
epochs, at most ``--epochs``; the best val checkpoint is kept), and scores both checkpoints'
zero-shot macro-F1 on the shortcut set's test split, where the markers are independent of the
labels, and on the same test images without markers (the clean set's test split). Prints per-seed
numbers and the paired difference (clean − shortcut) with a t-based 95 % CI (`medalign.metrics.stats.paired_ci`); the result JSON also
holds each run's val curve, the code version and both sets' content hashes.

    medalign synth --testbed gaze --out /tmp/tb && medalign synth --testbed gaze --shortcut 0 --out /tmp/tb_clean
    python scripts/testbed_shortcut_study.py /tmp/tb/manifest.csv /tmp/tb_clean/manifest.csv --seeds 0 1 2

Extra arguments go to `fit` (e.g. ``--trainer.limit_train_batches 40``). ``--only shortcut|clean``
runs one arm (two processes can run the arms side by side, each writing its own ``--out``);
``--aggregate A.json B.json`` then prints the paired difference (``--rescore`` first adds the
no-marker score to runs that lack it). ``--by-marker CKPT`` trains nothing: it splits a checkpoint's test accuracy by the markers
each row carries. ``--by-marker-grid RUN_DIR`` does that for every finished cell of a benchmark study
(``RUN_DIR/<method>/fraction1/seed<N>/checkpoints/last.ckpt``; results cached in ``RUN_DIR/by_marker.json``
by checkpoint hash) and writes ``RUN_DIR/by_marker.md``: per arm the accuracy with and without markers
and the loss to markers (t-based 95 % CIs over seeds), each ``--pairs METHOD:BASELINE`` paired by
seed, and each glyph's pull::

    python scripts/testbed_shortcut_study.py data/pc_inf_g25/manifest.csv data/pc_clean_g25/manifest.csv \
        --by-marker-grid runs/benchmark/eclip_positive_control --pairs eclip_inf_g25:clip_inf eclip_inf_g25:template_inf_g25

``--linear`` trains no CLIP:
a per-class logistic regression on the raw pixels of each arm's train split, scored on the
shortcut set's test split (macro-AUC, paired bootstrap over test rows): a minute on a CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def zero_shot_f1(results: dict) -> float:
    return next(t["metrics"]["macro_f1"] for t in results["tasks"] if t["name"] == "zero_shot")


def test_f1(config: str, manifest: str, checkpoint: str) -> float:
    """Zero-shot macro-F1 of `checkpoint` on the test split of `manifest`."""
    from medalign.training.cli import cli_main

    test = cli_main(["test", "--config", config, "--data.manifest", manifest, "--ckpt_path", checkpoint,
                     "--trainer.logger", "false", "--evaluation.progress", "false",
                     "--evaluation.tasks", "[{type: zero_shot}]"])
    return zero_shot_f1(test.evaluation_results)


def dataset_sha256(manifest: str) -> str:
    """Hash of a generated set: the manifest's bytes and every image's bytes, by relative path."""
    import hashlib

    import pandas as pd

    from medalign.run_folder import file_sha256

    root = Path(manifest).parent
    digest = hashlib.sha256(file_sha256(manifest).encode())
    for image in pd.read_csv(manifest, keep_default_na=False)["image"]:
        digest.update(f"{image}\0{file_sha256(root / image)}\n".encode())
    return digest.hexdigest()


def val_curve(log_dir: str) -> list[float]:
    """Per-epoch validation zero-shot macro-F1 from a run's CSVLogger ``metrics.csv``."""
    import pandas as pd

    metrics = pd.read_csv(Path(log_dir) / "metrics.csv")
    column = "val/zero_shot_macro_f1"
    return [round(float(v), 4) for v in metrics.dropna(subset=[column]).groupby("epoch")[column].last()]


def linear_arms(shortcut_manifest: str, clean_manifest: str, boots: int = 1000) -> None:
    """Macro-AUC on the shortcut set's test split of pixel logistic regressions trained on each arm's train split."""
    import pandas as pd
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from medalign.synthetic.testbed.generate import TESTBED_LABELS

    def load(manifest: str) -> tuple[pd.DataFrame, np.ndarray]:
        frame = pd.read_csv(manifest, keep_default_na=False)
        root = Path(manifest).parent
        return frame, np.stack([np.asarray(Image.open(root / p), dtype=np.float32).ravel() / 255 for p in frame["image"]])

    (frame, shortcut_x), (_, clean_x) = load(shortcut_manifest), load(clean_manifest)
    train, test = (frame["split"] == "train").to_numpy(), (frame["split"] == "test").to_numpy()
    y = frame[list(TESTBED_LABELS)].to_numpy()
    scores = {}
    for arm, x in (("shortcut", shortcut_x), ("clean", clean_x)):
        scores[arm] = np.stack([LogisticRegression(C=0.05, max_iter=3000).fit(x[train], y[train, k])
                                .predict_proba(shortcut_x[test])[:, 1] for k in range(y.shape[1])], axis=1)

    from medalign.metrics.stats import format_ci, paired_bootstrap_ci

    def macro_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
        return float(np.mean([roc_auc_score(y_true[:, k], scores[:, k]) for k in range(y_true.shape[1])]))

    print(f"test macro-AUC: shortcut {macro_auc(y[test], scores['shortcut']):.3f}  "
          f"clean {macro_auc(y[test], scores['clean']):.3f}")
    ci = paired_bootstrap_ci(macro_auc, y[test], scores["clean"], scores["shortcut"], n_boot=boots)
    print(f"clean − shortcut: {format_ci(ci)} (bootstrap 95 % CI, {ci['n_boot']} resamples of the {ci['n']} test rows, "
          f"p = {ci['p_value']:.3g})")

def marker_breakdown(checkpoint: str, shortcut_manifest: str, clean_manifest: str) -> dict:
    """Zero-shot accuracy of `checkpoint` on the single-label test rows, with and without their markers.

    The prompts are the checkpoint's (``data.prompts``), scored as `test` scores them
    (`zero_shot_scores`, mean prompt embedding per class). Rows
    are split by the markers they carry (none / only their own class's / another class's), and for
    each class's marker the share of rows of *other* classes carrying it that are predicted as
    that class (what the marker pulls predictions to).
    """
    import pandas as pd
    import torch

    from medalign import load_checkpoint_encoder
    from medalign.data.prompts import load_prompts
    from medalign.data.transforms import load_image
    from medalign.evaluation.encoders import checkpoint_hparams
    from medalign.evaluation.tasks.zero_shot import zero_shot_scores
    from medalign.paths import resolve_config
    from medalign.synthetic.testbed.generate import TESTBED_LABELS

    labels = list(TESTBED_LABELS)
    encoder = load_checkpoint_encoder(checkpoint, manifest=clean_manifest)
    _, data = checkpoint_hparams(checkpoint)
    prompts = load_prompts(resolve_config(data.get("prompts") or "prompts/gaze5.json", (".json",)), labels)
    with torch.no_grad():
        prompt_emb = [torch.nn.functional.normalize(encoder.encode_texts(prompts[c]), dim=-1) for c in labels]

    frame = pd.read_csv(shortcut_manifest, keep_default_na=False)
    test = frame[(frame["split"] == "test") & (frame[labels].sum(axis=1) == 1)]
    truth = test[labels].to_numpy().argmax(axis=1)  # (N,)

    def predict(manifest: str) -> np.ndarray:
        root, out = Path(manifest).parent, []
        for start in range(0, len(test), 128):
            images = torch.stack([encoder.transform(load_image(root / p))[0] for p in test["image"].iloc[start:start + 128]])
            with torch.no_grad():
                image_emb = torch.nn.functional.normalize(encoder.encode_images(images), dim=-1)
                out.append(zero_shot_scores(image_emb, prompt_emb).argmax(1))
        return torch.cat(out).numpy()

    marked, unmarked = predict(shortcut_manifest), predict(clean_manifest)
    markers = [set(filter(None, m.split("|"))) for m in test["markers"]]
    own = np.array([labels[t] in m for t, m in zip(truth, markers)])
    other = np.array([bool(m - {labels[t]}) for t, m in zip(truth, markers)])
    out = {"accuracy": {"with markers": float((marked == truth).mean()), "without": float((unmarked == truth).mean())},
           "by_markers": {}, "pull": {}}
    print(f"{checkpoint}: {len(test)} single-label test rows; accuracy with markers {out['accuracy']['with markers']:.3f}, "
          f"same images without {out['accuracy']['without']:.3f}")
    for rows, what in ((~own & ~other, "no marker"), (own & ~other, "own class's marker only"), (other, "another class's marker")):
        out["by_markers"][what] = {"rows": int(rows.sum()), "accuracy": float((marked[rows] == truth[rows]).mean())}
        print(f"  {what:>24}: {rows.sum():5d} rows, accuracy {out['by_markers'][what]['accuracy']:.3f}")
    for k, name in enumerate(labels):
        rows = np.array([name in m for m in markers]) & (truth != k)
        out["pull"][name] = float((marked[rows] == k).mean())
        print(f"  {name} marker on a row of another class ({rows.sum()} rows): predicted {name} {out['pull'][name]:.3f}")
    return out


def grid_breakdowns(run_dir: str, shortcut_manifest: str, clean_manifest: str,
                    methods: list[str] | None = None) -> dict[str, dict]:
    """`marker_breakdown` of every finished cell's final checkpoint under a benchmark folder, keyed ``method/seedN``.

    Results are cached in ``run_dir/by_marker.json`` with the checkpoint's SHA-256 and both manifests'
    paths; a cell whose checkpoint (or manifest pair) changed is scored again.
    """
    import contextlib
    import io

    from medalign.run_folder import atomic_path, file_sha256

    root = Path(run_dir)
    cache_file = root / "by_marker.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    out = {}
    cells = sorted(root.glob("*/fraction*/seed*/done.json"), key=lambda p: (p.parts[-4], int(p.parts[-2][4:])))
    for done in cells:
        method, seed = done.parts[-4], done.parts[-2]
        if methods and method not in methods:
            continue
        checkpoint = done.parent / "checkpoints" / "last.ckpt"
        if not checkpoint.exists():
            print(f"{method}/{seed}: finished but {checkpoint} is missing; left out", flush=True)
            continue
        key = f"{method}/{seed}"
        stamp = {"checkpoint_sha256": file_sha256(checkpoint), "manifests": [shortcut_manifest, clean_manifest]}
        cached = cache.get(key)
        if cached is None or any(cached.get(k) != v for k, v in stamp.items()):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                cached = cache[key] = {**stamp, **marker_breakdown(str(checkpoint), shortcut_manifest, clean_manifest)}
            print(f"{key}: accuracy with markers {cached['accuracy']['with markers']:.3f}, without "
                  f"{cached['accuracy']['without']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
            with atomic_path(cache_file) as tmp:
                Path(tmp).write_text(json.dumps(cache, indent=1))
        out[key] = cached
    return out


def marker_tables(breakdowns: dict[str, dict], pairs: list[tuple[str, str]]) -> str:
    """Markdown: per-arm accuracy with / without markers and the loss to markers, `pairs` by seed, glyph pull.

    Args:
        breakdowns: ``method/seedN`` → `marker_breakdown` result.
        pairs: (method, baseline) differences, paired on the seeds both have.
    """
    from medalign.metrics.stats import format_ci, mean_ci, paired_ci, reading

    def per_seed(method: str, key: str) -> dict[int, float]:
        return {int(k.split("/seed")[1]): v["accuracy"][key] for k, v in breakdowns.items() if k.split("/")[0] == method}

    arms = list(dict.fromkeys(k.split("/")[0] for k in breakdowns))
    lines = ["| arm | test accuracy, markers independent of labels | same images without markers | "
             "loss to markers (without − with) | seeds |", "|---|---|---|---|---|"]
    for arm in arms:
        with_, without = per_seed(arm, "with markers"), per_seed(arm, "without")
        seeds = sorted(with_)
        loss = paired_ci([without[s] for s in seeds], [with_[s] for s in seeds]) if len(seeds) > 1 else None
        lines.append(f"| {arm} | {format_ci(mean_ci([with_[s] for s in seeds]), signed=False)} | "
                     f"{format_ci(mean_ci([without[s] for s in seeds]), signed=False)} | "
                     f"{format_ci(loss) + ', ' + reading(loss) if loss else '–'} | {seeds} |")
    if pairs:
        lines += ["", "| difference (paired by seed) | accuracy with markers | without markers |", "|---|---|---|"]
    for method, baseline in pairs:
        row = []
        for key in ("with markers", "without"):
            a, b = per_seed(method, key), per_seed(baseline, key)
            seeds = sorted(set(a) & set(b))
            if len(seeds) < 2:
                row.append(f"{len(seeds)} paired seed(s): too few seeds")
                continue
            ci = paired_ci([a[s] for s in seeds], [b[s] for s in seeds])
            row.append(f"{format_ci(ci)}, p = {ci['p_value']:.2g}, n = {ci['n']}: {reading(ci)}")
        lines.append(f"| {method} − {baseline} | " + " | ".join(row) + " |")
    lines += ["", "Glyph pull: share of test rows of another class carrying a class's marker that are predicted "
              "as that class, mean over seeds.", ""]
    classes = list(next(iter(breakdowns.values()))["pull"]) if breakdowns else []
    lines += ["| arm | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for arm in arms:
        pulls = [v["pull"] for k, v in breakdowns.items() if k.split("/")[0] == arm]
        lines.append(f"| {arm} | " + " | ".join(f"{np.mean([p[c] for p in pulls]):.3f}" for c in classes) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shortcut_manifest")
    parser.add_argument("clean_manifest")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12, help="most epochs per run")
    parser.add_argument("--patience", type=int, default=3,
                        help="stop after this many epochs without a better val zero-shot F1 (0: never)")
    parser.add_argument("--config", default="demo_gaze.yaml")
    parser.add_argument("--out", default="runs/testbed_shortcut.json")
    parser.add_argument("--runs", default="runs/testbed_shortcut", help="folder for each run's CSV log and checkpoints")
    parser.add_argument("--only", choices=["shortcut", "clean", "control"], default=None, help="run one arm only")
    parser.add_argument("--control", metavar="MANIFEST", default=None,
                        help="a third arm trained on MANIFEST, scored like the others: the test bed with "
                             "--markers independent (the same glyphs at the same rates, uncorrelated with the findings)")
    parser.add_argument("--aggregate", nargs="+", default=None, help="result JSONs to combine (no training)")
    parser.add_argument("--linear", action="store_true", help="pixel logistic regression per arm instead of CLIP")
    parser.add_argument("--rescore", action="store_true",
                        help="with --aggregate: add test_f1_no_markers (the clean manifest's test split) where missing")
    parser.add_argument("--by-marker", metavar="CKPT", default=None,
                        help="no training: zero-shot accuracy of CKPT on the shortcut set's single-label test rows "
                             "split by the markers they carry, and where each class's marker pulls predictions")
    parser.add_argument("--by-marker-grid", metavar="RUN_DIR", default=None,
                        help="no training: --by-marker for every finished cell of a benchmark folder; tables with "
                             "paired CIs in RUN_DIR/by_marker.md")
    parser.add_argument("--pairs", nargs="*", default=[], metavar="METHOD:BASELINE",
                        help="with --by-marker-grid: differences to pair by seed")
    parser.add_argument("--methods", nargs="*", default=None, help="with --by-marker-grid: only these methods")
    args, overrides = parser.parse_known_args()
    if args.by_marker_grid:
        pairs = [tuple(p.split(":", 1)) for p in args.pairs]
        if any(len(p) != 2 for p in pairs):
            parser.error(f"--pairs takes METHOD:BASELINE, got {args.pairs}")
        breakdowns = grid_breakdowns(args.by_marker_grid, args.shortcut_manifest, args.clean_manifest, args.methods)
        if not breakdowns:
            parser.error(f"{args.by_marker_grid}: no finished cell (*/fraction*/seed*/done.json) with a last.ckpt")
        missing = sorted({m for p in pairs for m in p} - {k.split("/")[0] for k in breakdowns})
        if missing:
            parser.error(f"--pairs names methods with no finished cell under {args.by_marker_grid}: {missing}")
        tables = marker_tables(breakdowns, pairs)
        Path(args.by_marker_grid, "by_marker.md").write_text(tables)
        print(tables)
        return
    if args.by_marker:
        marker_breakdown(args.by_marker, args.shortcut_manifest, args.clean_manifest)
        return
    if args.linear:
        linear_arms(args.shortcut_manifest, args.clean_manifest)
        return
    if args.aggregate:
        results: dict = {"shortcut": {}, "clean": {}, "control": {}}
        for path in args.aggregate:
            loaded = json.loads(Path(path).read_text())
            if args.rescore:
                for arm in ("shortcut", "clean", "control"):
                    for run in loaded.get(arm, {}).values():
                        if "test_f1_no_markers" not in run:
                            run["test_f1_no_markers"] = test_f1(args.config, args.clean_manifest, run["checkpoint"])
                Path(path).write_text(json.dumps(loaded, indent=2))
            for arm in ("shortcut", "clean", "control"):
                results[arm] |= {int(seed): run for seed, run in loaded.get(arm, {}).items()}
            results.setdefault("provenance", []).append(loaded.get("provenance"))
        report(results, args.seeds)
        return
    from medalign.provenance import code_identity
    from medalign.training.cli import cli_main

    manifests = {"shortcut": args.shortcut_manifest, "clean": args.clean_manifest,
                 **({"control": args.control} if args.control else {})}
    results: dict = {"shortcut": {}, "clean": {}, "control": {}, "provenance": {
        **code_identity(), "config": args.config, "fit_overrides": overrides, "max_epochs": args.epochs,
        "patience": args.patience, "data_sha256": {arm: dataset_sha256(m) for arm, m in manifests.items()}}}
    stop = ([{"class_path": "lightning.pytorch.callbacks.EarlyStopping",
              "init_args": {"monitor": "val/zero_shot_macro_f1", "mode": "max", "patience": args.patience}}]
            if args.patience > 0 else [])
    for seed in args.seeds:
        for name, manifest in manifests.items():
            if args.only and name != args.only:
                continue
            start = time.perf_counter()
            logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
                      "init_args": {"save_dir": args.runs, "name": f"{name}_seed{seed}"}}
            fit = cli_main(["fit", "--config", args.config, "--data.manifest", manifest, "--seed_everything", str(seed),
                            "--trainer.max_epochs", str(args.epochs), "--trainer.logger", json.dumps([logger]),
                            "--trainer.callbacks", json.dumps(stop), *overrides])
            best = fit.trainer.checkpoint_callback.best_model_path
            val = float(fit.trainer.checkpoint_callback.best_model_score)
            results[name][seed] = dict(test_f1=test_f1(args.config, args.shortcut_manifest, best),
                                       test_f1_no_markers=test_f1(args.config, args.clean_manifest, best), best_val_f1=val,
                                       val_curve=val_curve(fit.trainer.logger.log_dir),
                                       epochs=fit.trainer.current_epoch, checkpoint=best,
                                       seconds=round(time.perf_counter() - start, 1))
            print(name, seed, results[name][seed], flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=2))
    if not args.only:
        report(results, args.seeds)


def report(results: dict, seeds: list[int]) -> None:
    """Per-seed test F1 of the arms and each reference arm (clean, control) − shortcut, paired by seed (t 95 % CI)."""
    from medalign.metrics.stats import paired_ci, reading

    for reference in ("clean", "control"):
        paired = [s for s in seeds if s in results.get(reference, {}) and s in results["shortcut"]]
        if reference == "clean" and not paired:
            print("no seed has results in both arms yet")
        if not paired:
            continue
        for s in paired:
            print(f"seed {s}: shortcut {results['shortcut'][s]['test_f1']:.3f}  {reference} "
                  f"{results[reference][s]['test_f1']:.3f}")
        for key, what in (("test_f1", "zero-shot macro-F1 on the test split"),
                          ("test_f1_no_markers", "same test images without markers")):
            if not all(key in results[arm][s] for arm in (reference, "shortcut") for s in paired):
                continue
            f1 = {arm: np.array([results[arm][s][key] for s in paired]) for arm in (reference, "shortcut")}
            ci = paired_ci(f1[reference], f1["shortcut"])
            print(f"{what}: shortcut {f1['shortcut'].mean():.3f}  {reference} {f1[reference].mean():.3f}  "
                  f"{reference} − shortcut {ci['mean_diff']:+.3f} (95 % CI {ci['low']:+.3f} to {ci['high']:+.3f}, "
                  f"p = {ci['p_value']:.3g}, {ci['n']} seeds: {reading(ci)})")


if __name__ == "__main__":
    main()
