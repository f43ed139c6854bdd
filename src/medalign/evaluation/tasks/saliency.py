"""Saliency–gaze agreement: does the model look where the radiologists looked?

On every gaze-annotated row of a manifest split (EGD-CXR / REFLACX manifests, or the synthetic
set's test rows with gaze), compute the model's saliency for the image and a text (its own
report, or the prompt set of its single positive class), and score it against the expert
heatmap with NSS, CC, KLD, SIM and AUC (`medalign.metrics.saliency`). Two baselines put the
numbers in context: a centre prior, and the same saliency method on a randomly initialised
model of the same architecture. Results are mean ± sd over rows, plus PNG panels (image,
expert heatmap, model saliency, overlay) for the first rows.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalign.data.heatmaps import check_heatmap
from medalign.data.labels import BlankPolicy, UncertainPolicy, apply_label_policy, single_label_rows
from medalign.data.manifest import read_manifest
from medalign.data.transforms import load_heatmap, load_image
from medalign.evaluation.saliency import centre_prior, get_saliency_method
from medalign.metrics.saliency import MIT_EPS, VARIANTS, auc, auc_judd, binarize, cc, kld, nss, nss_fixations, sim

log = logging.getLogger(__name__)

METRICS = ("nss", "cc", "kld", "sim", "auc")


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` with every layer re-initialised (the "random model" baseline)."""
    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in clone.modules():
            if module is not clone and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        backbone = getattr(getattr(clone, "image_encoder", None), "backbone", None)
        if hasattr(backbone, "init_weights"):  # timm ViTs: position embeddings and tokens too
            backbone.init_weights()
    return clone.eval()


def score_maps(
    saliency: torch.Tensor, heatmaps: torch.Tensor, auc_quantile: float = 0.9, variant: str = "mit"
) -> dict[str, np.ndarray]:
    """Per-row metrics of saliency maps (B, S, S) against expert heatmaps (B, S, S).

    Args:
        auc_quantile: a heatmap's pixels at or above this quantile are its fixations (AUC; MIT NSS).
        variant: ``mit`` (the MIT benchmark's NSS at fixations, AUC-Judd, min–max SIM, KLD ε 2.2e-16)
            or ``medalign`` (heatmap-weighted NSS, Mann–Whitney AUC, sum-normalised SIM, KLD ε 1e-7);
            see `medalign.metrics.saliency`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"saliency metrics variant must be one of {list(VARIANTS)}, got {variant!r}")
    fixations = binarize(heatmaps, auc_quantile)
    if variant == "mit":
        return {
            "nss": nss_fixations(saliency, fixations).numpy(), "cc": cc(saliency, heatmaps).numpy(),
            "kld": kld(saliency, heatmaps, eps=MIT_EPS).numpy(), "sim": sim(saliency, heatmaps, normalize="minmax").numpy(),
            "auc": auc_judd(saliency, fixations).numpy(),
        }
    return {
        "nss": nss(saliency, heatmaps).numpy(), "cc": cc(saliency, heatmaps).numpy(),
        "kld": kld(saliency, heatmaps).numpy(), "sim": sim(saliency, heatmaps).numpy(),
        "auc": auc(saliency, fixations).numpy(),
    }


def _summary(per_row: dict[str, list[np.ndarray]]) -> dict[str, float]:
    out = {}
    for name in METRICS:
        values = np.concatenate(per_row[name]) if per_row[name] else np.array([])
        out[f"{name}_mean"] = float(values.mean()) if len(values) else float("nan")
        out[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    return out


def saliency_agreement(
    encoder: Any,
    manifest: str | Path,
    split: str = "test",
    method: str = "gradcam",
    text: Literal["report", "prompt"] = "report",
    prompts: dict[str, list[str]] | None = None,
    batch_size: int = 32,
    device: str | None = None,
    limit: int | None = None,
    auc_quantile: float = 0.9,
    baselines: bool = True,
    panels: int = 0,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    uncertain: UncertainPolicy = "zeros",
    blank: BlankPolicy = "zeros",
    variant: str = "mit",
    allow_outside_paths: bool = False,
) -> dict[str, Any]:
    """Score the model's saliency against the expert heatmaps of a split's gaze rows.

    Args:
        encoder: a `MedAlignEncoder` (its ``model`` a DualEncoder with a timm image tower).
        manifest: manifest with a ``heatmap`` column.
        split: split evaluated (rows with an empty heatmap are skipped).
        method: a name in `medalign.evaluation.saliency.SALIENCY_METHODS` (``gradcam``, ``rollout``).
        text: ``report`` (each row's own report) or ``prompt`` (the prompt set of the row's single
            positive class; rows without exactly one positive class in `prompts` are skipped).
        prompts: class → prompt strings (``text: prompt``).
        batch_size: rows per saliency batch.
        device: where the model runs (default: CUDA when available).
        limit: at most this many rows (the first ones).
        auc_quantile: a heatmap's fixated pixels for AUC are those at or above this quantile.
        baselines: also score a centre prior and a randomly initialised model.
        panels: write a PNG of this many rows (image, heatmap, saliency, overlay) to `out_dir`.
        out_dir: folder for the panels.
        seed: seed of the random-model baseline.
        progress: tqdm bar.
        uncertain: label policy for -1 cells (``text: prompt``): the run's ``data.uncertain``.
        blank: label policy for blank cells (``text: prompt``): the run's ``data.blank``.
        variant: metric definitions, ``mit`` (the MIT benchmark's) or ``medalign`` (`score_maps`).
        allow_outside_paths: read paths outside the manifest's folder (`confine_paths`).

    Returns:
        ``n``, ``skipped``, per-source ``{metric}_mean`` / ``{metric}_sd`` under ``model``,
        ``centre_prior`` and ``random_model``, and ``panels`` (file name) when written.

    Raises:
        ValueError: no gaze rows in the split, or an encoder without a medalign DualEncoder.
    """
    from medalign.progress import track

    model = getattr(encoder, "model", None)
    if model is None or not hasattr(model, "image_projection"):
        raise ValueError("saliency needs a medalign checkpoint encoder (a DualEncoder with a timm image tower); "
                         "open_clip models are not supported")
    saliency_fn = get_saliency_method(method)
    rows = read_manifest(manifest, [], check_files=False, allow_outside_paths=allow_outside_paths).split(split)
    frame = rows.frame[rows.frame["heatmap"].astype(str).str.len() > 0] if "heatmap" in rows.frame else rows.frame.iloc[:0]
    if not len(frame):
        raise ValueError(
            f"{manifest} has no {split!r} rows with a gaze heatmap: use an EGD-CXR / REFLACX manifest, or the synthetic "
            "set with test gaze (`medalign synth --test-heatmap-fraction 0.2`)"
        )
    skipped = 0
    texts: list[str] = []
    if text == "prompt":
        if not prompts:
            raise ValueError("saliency text 'prompt' needs prompts (class → prompt strings)")
        classes = [c for c in prompts if c in frame.columns]
        labels = apply_label_policy(frame[classes].to_numpy(dtype=np.float32), uncertain, blank)  # (N, C)
        keep = single_label_rows(labels)  # the one single-label rule
        skipped = int((~keep).sum())
        owner = np.asarray(classes)[np.nan_to_num(labels[keep]).argmax(1)]
        frame = frame[keep]
        positive = pd.Series([[c] for c in owner], index=frame.index)
        class_emb = {c: torch.nn.functional.normalize(encoder.encode_texts(prompts[c]).mean(0), dim=0) for c in classes}
    else:
        texts = frame["text"].astype(str).tolist()
    if limit is not None:
        frame = frame.iloc[:limit]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    encoder.to(device)
    random_model = randomised(model, seed).to(device) if baselines else None
    sources = ["model"] + (["centre_prior", "random_model"] if baselines else [])
    per_row: dict[str, dict[str, list[np.ndarray]]] = {s: {m: [] for m in METRICS} for s in sources}
    panel_rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    root = rows.root
    for start in track(range(0, len(frame), batch_size), desc=f"saliency {method}", enabled=None if progress else False,
                       unit="batch"):
        chunk = frame.iloc[start : start + batch_size]
        images, heatmaps = [], []
        for row, image_rel, heat_rel in zip(chunk.index, chunk["image"], chunk["heatmap"]):
            raw = load_image(root / image_rel)  # (1, H, W)
            where = f"{rows.path} row {row}: heatmap {root / heat_rel}"
            heat = check_heatmap(load_heatmap(root / heat_rel), tuple(raw.shape[-2:]), where)  # training's rule
            image, heat = encoder.transform(raw, heat)
            images.append(image)
            heatmaps.append(heat[0])
        images_t = torch.stack(images).to(device)  # (B, 3, S, S)
        heat_t = torch.stack(heatmaps)  # (B, S, S)
        with torch.no_grad():
            if text == "prompt":
                text_emb = torch.stack([class_emb[p[0]] for p in positive.loc[chunk.index]]).to(device)
            else:
                text_emb = encoder.encode_texts(texts[start : start + len(chunk)]).to(device)
        maps = saliency_fn(model, images_t, text_emb).cpu()
        for name, values in score_maps(maps, heat_t, auc_quantile, variant).items():
            per_row["model"][name].append(values)
        if baselines:
            prior = centre_prior(len(chunk), maps.shape[-1])
            for name, values in score_maps(prior, heat_t, auc_quantile, variant).items():
                per_row["centre_prior"][name].append(values)
            random_maps = saliency_fn(random_model, images_t, text_emb).cpu()
            for name, values in score_maps(random_maps, heat_t, auc_quantile, variant).items():
                per_row["random_model"][name].append(values)
        for i in range(len(chunk)):
            if len(panel_rows) < panels:
                panel_rows.append((images_t[i].cpu(), heat_t[i], maps[i]))
    result: dict[str, Any] = {"n": int(len(frame)), "skipped": skipped, "method": method, "text": text,
                              "auc_quantile": auc_quantile, "metrics_variant": variant}
    for source in sources:
        result[source] = _summary(per_row[source])
    if panel_rows and out_dir is not None:
        from medalign.evaluation.plots.saliency import plot_panels
        from medalign.evaluation.plots.style import dataset_name

        path = plot_panels(panel_rows, Path(out_dir) / f"saliency_{method}.png", title=f"{method} vs expert gaze on {dataset_name(manifest)}")
        result["panels"] = path.name
    return result
