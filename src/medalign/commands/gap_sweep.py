"""`medalign gap-sweep --config gap_sweep.yaml`: the λ-shift + early-fusion probe study of a frozen model.

Reads a manifest's train / (val) / test embeddings through the embedding cache that ``train.py test``
uses (so nothing is re-encoded), runs `medalign.studies.gap.sweep.run_gap_sweep` and writes one
folder: ``gap_sweep.csv`` / ``gap_sweep.md`` (printed too), ``auc_vs_lambda.png``, ``pca_lambda.png``
and ``results.json`` (everything, with the config and the checkpoint hash). Any key can be
overridden on the command line, e.g. ``--probe.max_epochs 20 --sequential true``.
"""

from __future__ import annotations


import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from medalign.studies.gap.probe_config import ProbeConfig  # torch-free: `gap-sweep -h` stays fast

log = logging.getLogger(__name__)


@dataclass
class GapSweepConfig:
    """The gap-sweep run (``configs/gap_sweep.yaml``).

    Attributes:
        manifest: labelled manifest with train / test (and optionally val) splits.
        label_columns: the classes probed.
        task: ``multilabel`` (class-weighted BCE) or ``multiclass`` (class-weighted CE; rows with
            not exactly one positive label are dropped, and counted in the results).
        encoder: ``checkpoint`` (a medalign .ckpt / weights file) or ``open_clip`` (local weights).
        ckpt: medalign checkpoint (``encoder: checkpoint``; ``--checkpoint`` is a deprecated alias).
        preset: model preset for a weights file without hyper-parameters.
        tokenizer: tokenizer folder (default: <manifest folder>/tokenizer; checkpoint encoder).
        weights: open_clip weights file or hf-hub-layout directory, or a transformers CLIP/SigLIP folder (``encoder: open_clip``).
        arch: open_clip architecture of a weights file, e.g. ``ViT-B-32``.
        text_config_dir: local HF directory with an open_clip text tower's config.json.
        image_size: encoder input size (default: the checkpoint's data.image_size, else 224).
        max_length: report tokens (default: the checkpoint's data.max_length, else 256).
        uncertain: policy for -1 labels (default: the checkpoint's data.uncertain, else zeros).
        blank: policy for empty ("not mentioned") labels (default: the checkpoint's data.blank, else zeros).
        val_split: split used for early stopping; null, or a split without rows → 10 % of train per seed.
        lambdas: the λ grid.
        seeds: probe seeds (the paper: five, 42 … 46).
        probe: probe optimisation (default: the ``converge`` protocol; ``gap_sweep_paper.yaml`` is the paper's).
        sequential: train the probes one at a time instead of batched (for comparison).
        references: also train image-only and text-only probes.
        learnable_lambda: also fit a probe per seed whose λ (init 0.5, lr ``probe.lambda_lr``) is
            learned with its weights; reported as an extra row (λ mean ± sd over seeds).
        output_dir: results folder (default runs/gap_sweep/<timestamp>).
        cache_dir: embedding cache root (default $MEDALIGN_CACHE_DIR or runs/cache).
        batch_size: encoder batch. num_workers: image-loading workers.
        device: where the encoder runs (default CUDA when available).
        pca_points: rows drawn in the PCA pictures.
        allow_outside_paths: read image paths outside the manifest's folder
            (`medalign.data.manifest.confine_paths`; refused by default, as in every command).
        progress: progress with an ETA for encoding and each block of probes (a bar on a terminal, log lines
            otherwise) and each block's result as it finishes; false: quiet.
    """

    manifest: str = "data/synthetic/manifest.csv"
    label_columns: list[str] = field(default_factory=lambda: ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"])
    task: Literal["multilabel", "multiclass"] = "multilabel"
    encoder: Literal["checkpoint", "open_clip"] = "checkpoint"
    ckpt: str | None = None
    preset: str | None = None
    tokenizer: str | None = None
    weights: str | None = None
    arch: str | None = None
    text_config_dir: str | None = None
    image_size: int | None = None
    max_length: int | None = None
    uncertain: Literal["zeros", "ones", "ignore"] | None = None
    blank: Literal["zeros", "ignore"] | None = None
    val_split: str | None = "val"
    lambdas: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(11)])
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44, 45, 46])
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    sequential: bool = False
    references: bool = True
    learnable_lambda: bool = False
    output_dir: str | None = None
    cache_dir: str | None = None
    batch_size: int = 64
    num_workers: int = 0
    device: str | None = None
    pca_points: int = 1000
    allow_outside_paths: bool = False
    progress: bool = True


def validate_config(cfg: GapSweepConfig) -> None:
    """Refuse settings that would fail (or mislead) only after the embedding work: λ ∈ [0, 1], non-empty lists, sizes > 0.

    Raises:
        ValueError: naming the key, the value and what is allowed.
    """
    problems = []
    if not cfg.lambdas:
        problems.append("lambdas is empty: give at least one λ in [0, 1], e.g. --lambdas '[0, 0.5, 1]'")
    bad = [x for x in cfg.lambdas if not 0.0 <= float(x) <= 1.0]  # NaN fails too
    if bad:
        problems.append(f"lambdas {bad} outside [0, 1]: λ interpolates image (0) to text (1) embeddings")
    if not cfg.seeds:
        problems.append("seeds is empty: give at least one probe seed, e.g. --seeds '[42]'")
    if len(set(cfg.seeds)) != len(cfg.seeds):
        problems.append(f"seeds {cfg.seeds} repeat a seed: repeated probes are not independent runs")
    for key in ("batch_size", "pca_points"):
        if getattr(cfg, key) < 1:
            problems.append(f"{key} must be ≥ 1, got {getattr(cfg, key)}")
    if cfg.num_workers < 0:
        problems.append(f"num_workers must be ≥ 0, got {cfg.num_workers}")
    if problems:
        raise ValueError("gap-sweep: " + "; ".join(problems))


def _parse(argv: list[str]) -> GapSweepConfig:
    from jsonargparse import ActionConfigFile, ArgumentParser

    from medalign.commands.flags import rename_deprecated, underscore_flags
    from medalign.paths import resolve_config_args

    argv = resolve_config_args(argv)  # bare names resolve in configs/, like train.py
    argv = rename_deprecated(underscore_flags(argv), {"--checkpoint": "--ckpt"}, "medalign gap-sweep")
    parser = ArgumentParser(prog="medalign gap-sweep", description=__doc__)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config (bare names resolve in configs/)")
    parser.add_class_arguments(GapSweepConfig)
    namespace = parser.parse_args(argv)
    init = parser.instantiate_classes(namespace)
    values = {k: v for k, v in vars(init).items() if k != "config" and not k.startswith("__")}
    cfg = GapSweepConfig(**values)
    validate_config(cfg)  # before any checkpoint loading or embedding
    return cfg


def _encoder(cfg: GapSweepConfig) -> tuple[Any, dict[str, Any]]:
    """The frozen encoder and the data settings saved with a medalign checkpoint."""
    from medalign.evaluation.encoders import load_pretrained_encoder

    if cfg.encoder == "open_clip":
        if not cfg.weights:
            raise ValueError("gap-sweep: encoder is 'open_clip': set weights (a local file or directory)")
        return load_pretrained_encoder(cfg.weights, cfg.arch, cfg.text_config_dir), {}  # open_clip or transformers
    if not cfg.ckpt:
        raise ValueError("gap-sweep: encoder is 'checkpoint': set --ckpt (a medalign .ckpt or weights file)")
    from medalign.data.tokenizer import load_tokenizer
    from medalign.evaluation.encoders import checkpoint_hparams, load_checkpoint_encoder

    ckpt = Path(cfg.ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"gap-sweep: --ckpt {ckpt} does not exist")
    tokenizer = load_tokenizer(cfg.tokenizer) if cfg.tokenizer else None
    encoder = load_checkpoint_encoder(ckpt, tokenizer, manifest=cfg.manifest, preset=cfg.preset,
                                      max_length=cfg.max_length, image_size=cfg.image_size)
    return encoder, checkpoint_hparams(ckpt)[1]


def _splits(cfg: GapSweepConfig, encoder: Any, uncertain: str, blank: str = "zeros") -> tuple[dict[str, Any], dict[str, int]]:
    """(v, t, labels) per split from the embedding cache; multiclass keeps single-label rows."""
    import numpy as np

    from medalign.data.manifest import read_manifest
    from medalign.evaluation.embeddings import get_embeddings
    from medalign.data.labels import single_label_rows

    manifest = read_manifest(cfg.manifest, cfg.label_columns, check_files=False, allow_outside_paths=cfg.allow_outside_paths)
    names = ["train", "test"]
    if cfg.val_split and len(manifest.split(cfg.val_split)):
        names.insert(1, cfg.val_split)
    else:
        log.info("gap-sweep: no %r rows in %s: carving %.0f%% of train per seed", cfg.val_split, cfg.manifest, 100 * cfg.probe.val_fraction)
    out, dropped = {}, {}
    for name in names:
        emb = get_embeddings(encoder, cfg.manifest, name, cfg.label_columns, cache_dir=cfg.cache_dir, batch_size=cfg.batch_size,
                             num_workers=cfg.num_workers, device=cfg.device, uncertain=uncertain, blank=blank,
                             allow_outside_paths=cfg.allow_outside_paths, progress=cfg.progress)
        keep = single_label_rows(emb.labels) if cfg.task == "multiclass" else np.ones(len(emb), bool)
        dropped[name] = int((~keep).sum())
        out["val" if name == cfg.val_split else name] = (emb.image[keep], emb.text[keep], emb.labels[keep])
    return out, dropped


def run(argv: list[str]) -> dict[str, Any]:
    """Entry point of ``medalign gap-sweep``; returns what it wrote to results.json."""
    cfg = _parse(argv)  # before numpy and torch: `-h` and config errors answer at once
    import numpy as np

    from medalign.studies.gap.sweep import run_gap_sweep
    from medalign.evaluation.plots.style import dataset_name
    from medalign.studies.gap.plots import markdown_table, plot_auc_vs_lambda, plot_shift_pca, write_csv

    encoder, data = _encoder(cfg)
    policy = (cfg.uncertain or data.get("uncertain", "zeros"), cfg.blank or data.get("blank", "zeros"))
    splits, dropped = _splits(cfg, encoder, *policy)
    n_fit = len(splits["train"][0])
    blocks = 1 + 2 * cfg.references + cfg.learnable_lambda
    log.info("gap-sweep: %d λ × %d seeds = %d probes%s, up to %d epochs each on %d rows (%d block(s)); progress and an "
             "ETA follow per block", len(cfg.lambdas), len(cfg.seeds), len(cfg.lambdas) * len(cfg.seeds),
             " one at a time" if cfg.sequential else " trained together", cfg.probe.epoch_budget(n_fit), n_fit, blocks)
    result = run_gap_sweep(splits["train"], splits.get("val"), splits["test"], cfg.lambdas, cfg.seeds, cfg.task,
                           cfg.label_columns, cfg.probe, cfg.sequential, cfg.references,
                           cfg.learnable_lambda, progress=None if cfg.progress else False)
    out = Path(cfg.output_dir or Path("runs/gap_sweep") / time.strftime("%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(result)
    header = (f"## λ-shift sweep: {encoder.name} on {Path(cfg.manifest).name} ({cfg.task}, probe protocol "
              f"{cfg.probe.protocol}), ‖Δ‖ train = {np.linalg.norm(result.delta):.4f}\n\n"
              f"best λ (selected on validation AUC) = {result.best_lambda:g}: test AUC "
              f"{result.auc_mean[result.best_index]:.4f} ± {result.auc_std[result.best_index]:.4f}; "
              f"test-argmax λ (oracle, not a result) = {result.lambdas[result.test_argmax_index]:g}"
              + (f"; learned λ = {np.mean(result.learned['lambda']):.3f}" if result.learned is not None else "")
              + (f"\n\n**{result.n_unconverged} probes did not converge** (early stopping never fired): their AUCs are "
                 "not results; raise probe.max_steps / probe.max_epochs or use the converging protocol."
                 if result.n_unconverged else "\n\nall probes converged (early stopping fired within the budget)") + "\n")
    (out / "gap_sweep.md").write_text(header + "\n" + table + "\n")
    write_csv(result, out / "gap_sweep.csv")
    plot_auc_vs_lambda(result, out / "auc_vs_lambda.png", title=f"{dataset_name(cfg.manifest)}: AUC vs λ")
    v, t, _ = splits["test"]
    pictured = sorted({0.0, result.best_lambda, 1.0})
    import torch

    plot_shift_pca(torch.from_numpy(v), torch.from_numpy(t), torch.from_numpy(result.delta), pictured,
                   out / "pca_lambda.png", max_points=cfg.pca_points, title=f"{dataset_name(cfg.manifest)}: test split, Δ from train")
    results = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "encoder": {"name": encoder.name, "fingerprint": encoder.fingerprint, "settings": encoder.settings},
        "checkpoint": cfg.ckpt or cfg.weights,
        "checkpoint_sha256": encoder.fingerprint,
        "manifest": cfg.manifest,
        "n": {name: len(split[0]) for name, split in splits.items()},
        "dropped_rows": dropped,
        "config": asdict(cfg),
        "result": result.to_dict(),
        "table": table,
        "files": ["gap_sweep.md", "gap_sweep.csv", "auc_vs_lambda.png", "pca_lambda.png", "results.json"],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(header)
    print(table)
    print(f"\nresults: {out}")
    return results
