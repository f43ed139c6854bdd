"""Saliency–gaze agreement: where the model looks vs where the radiologists looked.

Two variants of the saliency-benchmark metrics (Bylinskii et al., "What do different evaluation
metrics tell us about saliency models?", TPAMI 2019), chosen by name in `score_maps`-style
callers (`VARIANTS`):

``mit`` — the MIT saliency benchmark's definitions (its MATLAB code, as in the paper):

* `nss_fixations` — mean z-scored saliency at the fixated pixels (MATLAB ``std``: N − 1).
* `auc_judd` — AUC-Judd: thresholds at the saliency of each fixation; TP rate = fixations
  above / all fixations, FP rate = other pixels above / all other pixels; trapezoid area
  with (0, 0) and (1, 1) added. (The benchmark also adds 1e-7 random jitter to break ties;
  we do not: ties count as above, deterministically.)
* `sim` with ``normalize="minmax"`` — each map min–max scaled to [0, 1] (a constant map →
  all ones), then divided by its sum; Σ min(P, Q).
* `kld` with ``eps=MIT_EPS`` (MATLAB's ``eps`` = 2.2e-16).
* `cc` — Pearson correlation (the same in both variants).

``medalign`` — the variants this package used first (the tables in docs/gaze.md):

* `nss` — heatmap-weighted: Σ z·h / Σ h, population std (equals the fixation NSS, up to the
  std's N vs N − 1, when `h` is a binary fixation map).
* `auc` — Mann–Whitney ROC AUC of fixated vs all other pixels (ties count ½).
* `sim` with ``normalize="sum"`` (each map divided by its sum, no min–max step).
* `kld` with ``eps=1e-7``.

Each comparing a model saliency map `s` with an expert heatmap `h` (non-negative, e.g. a
rendered gaze map) or a binary fixation map of the same shape:

* `nss` — normalised scanpath saliency: Σ z·h / Σ h with z = (s − mean s) / std s (population
  std); for a binary fixation map, the mean of z at the fixations. 0 = chance.
* `cc` — Pearson correlation over pixels. 0 = chance.
* `kld` — Kullback–Leibler divergence Σ P·log(eps + P / (Q + eps)), P = h / Σh, Q = s / Σs.
  0 = identical distributions; lower is better.
* `sim` — histogram intersection Σ min(P, Q) ∈ [0, 1]; 1 = identical.
* `auc` — ROC AUC of the saliency values separating fixated pixels from all others (ties
  count one half, the Mann–Whitney form). 0.5 = chance.

Each takes (H, W) maps and returns a float, or (B, H, W) batches and returns a (B,) tensor.
A constant saliency map carries no information: its NSS and CC are 0 (not NaN), and for KLD
and SIM it is the uniform distribution.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["MIT_EPS", "VARIANTS", "auc", "auc_judd", "binarize", "cc", "kld", "nss", "nss_fixations", "sim"]

MIT_EPS = float(np.finfo(np.float64).eps)  # MATLAB's eps, the MIT benchmark's KLD ε
MEDALIGN_EPS = 1e-7
VARIANTS = ("mit", "medalign")


def _pair(s: Tensor | np.ndarray, h: Tensor | np.ndarray, name: str) -> tuple[Tensor, Tensor, bool]:
    """Both maps as float64 (B, H·W) tensors; whether the input was a single map."""
    s = torch.as_tensor(s).detach().to(torch.float64).cpu()
    h = torch.as_tensor(h).detach().to(torch.float64).cpu()
    if s.shape != h.shape or s.ndim not in (2, 3):
        raise ValueError(f"{name}: saliency and heatmap must both be (H, W) or (B, H, W); got {tuple(s.shape)} and {tuple(h.shape)}")
    if not (torch.isfinite(s).all() and torch.isfinite(h).all()):
        raise ValueError(f"{name}: maps contain NaN or Inf")
    single = s.ndim == 2
    if single:
        s, h = s[None], h[None]
    return s.flatten(1), h.flatten(1), single


def _out(values: Tensor, single: bool) -> float | Tensor:
    return float(values[0]) if single else values.to(torch.float32)


def _distribution(x: Tensor, name: str, what: str, uniform_if_empty: bool) -> Tensor:
    """Rows of a non-negative map normalised to sum 1 (uniform for an all-zero saliency row)."""
    if (x < 0).any():
        raise ValueError(f"{name}: the {what} map has negative values; shift it (x − x.min()) or clip it first")
    total = x.sum(1, keepdim=True)  # (B, 1)
    if (total == 0).any():
        if not uniform_if_empty:
            raise ValueError(f"{name}: an expert heatmap is all zeros (no gaze on this image)")
        x = torch.where(total == 0, torch.ones_like(x), x)
        total = x.sum(1, keepdim=True)
    return x / total


def _zscore(s: Tensor) -> Tensor:
    std = s.std(1, unbiased=False, keepdim=True)  # (B, 1) population std
    centred = s - s.mean(1, keepdim=True)
    return torch.where(std > 0, centred / std.clamp_min(1e-300), torch.zeros_like(s))


def nss(s: Tensor | np.ndarray, h: Tensor | np.ndarray) -> float | Tensor:
    """Normalised scanpath saliency: Σ z·h / Σ h, z the z-scored saliency (population std)."""
    s, h, single = _pair(s, h, "nss")
    weights = _distribution(h, "nss", "expert", uniform_if_empty=False)
    return _out((_zscore(s) * weights).sum(1), single)


def cc(s: Tensor | np.ndarray, h: Tensor | np.ndarray) -> float | Tensor:
    """Pearson correlation between the maps' pixels (0 when either map is constant)."""
    s, h, single = _pair(s, h, "cc")
    return _out((_zscore(s) * _zscore(h)).mean(1), single)


def kld(s: Tensor | np.ndarray, h: Tensor | np.ndarray, eps: float = MEDALIGN_EPS) -> float | Tensor:
    """KL divergence Σ P·log(ε + P / (Q + ε)) of the saliency distribution Q from the expert P (lower is better).

    Args:
        eps: ε; `MIT_EPS` (2.2e-16) for the MIT benchmark, 1e-7 for medalign's first variant.
    """
    s, h, single = _pair(s, h, "kld")
    p = _distribution(h, "kld", "expert", uniform_if_empty=False)
    q = _distribution(s, "kld", "saliency", uniform_if_empty=True)
    return _out((p * torch.log(eps + p / (q + eps))).sum(1), single)


def sim(s: Tensor | np.ndarray, h: Tensor | np.ndarray, normalize: str = "sum") -> float | Tensor:
    """Similarity (histogram intersection) Σ min(P, Q) of the two normalised maps.

    Args:
        normalize: ``sum`` (divide by the sum) or ``minmax`` (the MIT benchmark: min–max scale to
            [0, 1] first, a constant map becoming all ones, then divide by the sum).
    """
    if normalize not in ("sum", "minmax"):
        raise ValueError(f"sim: normalize must be 'sum' or 'minmax', got {normalize!r}")
    s, h, single = _pair(s, h, "sim")
    if normalize == "minmax":
        s, h = _minmax(s), _minmax(h)
    p = _distribution(h, "sim", "expert", uniform_if_empty=False)
    q = _distribution(s, "sim", "saliency", uniform_if_empty=True)
    return _out(torch.minimum(p, q).sum(1), single)


def _minmax(x: Tensor) -> Tensor:
    """Rows scaled to [0, 1]; a constant row becomes all ones (the MIT benchmark's rule)."""
    low, high = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
    return torch.where(high > low, (x - low) / (high - low).clamp_min(1e-300), torch.ones_like(x))


def _fixation_rows(fixations: Tensor | np.ndarray, name: str) -> Tensor:
    f = torch.as_tensor(fixations).to(torch.float64)
    if not torch.isin(f, torch.tensor([0.0, 1.0], dtype=f.dtype)).all():
        raise ValueError(f"{name}: fixations must be a binary map (0/1 or bool); binarize a heatmap with "
                         "medalign.metrics.saliency.binarize")
    return f


def nss_fixations(s: Tensor | np.ndarray, fixations: Tensor | np.ndarray) -> float | Tensor:
    """MIT NSS: the mean of (s − mean s) / std s (std with N − 1, MATLAB's) at the fixated pixels.

    Raises:
        ValueError: a map without any fixated pixel.
    """
    s, f, single = _pair(s, _fixation_rows(fixations, "nss_fixations"), "nss_fixations")
    n_fix = f.sum(1)
    if (n_fix == 0).any():
        raise ValueError("nss_fixations: every map needs at least one fixated pixel")
    std = s.std(1, unbiased=True, keepdim=True)
    z = torch.where(std > 0, (s - s.mean(1, keepdim=True)) / std.clamp_min(1e-300), torch.zeros_like(s))
    return _out((z * f).sum(1) / n_fix, single)


def auc_judd(s: Tensor | np.ndarray, fixations: Tensor | np.ndarray) -> float | Tensor:
    """AUC-Judd (the MIT benchmark's): ROC through thresholds at each fixation's saliency, trapezoid area.

    Raises:
        ValueError: a map with no fixated or no unfixated pixel.
    """
    s, f, single = _pair(s, _fixation_rows(fixations, "auc_judd"), "auc_judd")
    out = torch.empty(len(s), dtype=torch.float64)
    for b in range(len(s)):  # per map: thresholds are that map's fixation values
        fixated = f[b].bool()
        n_fix, n_pix = int(fixated.sum()), s.shape[1]
        if n_fix == 0 or n_fix == n_pix:
            raise ValueError("auc_judd: every map needs at least one fixated and one unfixated pixel")
        thresholds = s[b][fixated].sort(descending=True).values  # (n_fix,)
        above = (s[b][None, :] >= thresholds[:, None]).sum(1).to(torch.float64)  # pixels at or above each threshold
        i = torch.arange(1, n_fix + 1, dtype=torch.float64)
        tp = torch.cat([torch.zeros(1, dtype=torch.float64), i / n_fix, torch.ones(1, dtype=torch.float64)])
        fp = torch.cat([torch.zeros(1, dtype=torch.float64), (above - i) / (n_pix - n_fix), torch.ones(1, dtype=torch.float64)])
        out[b] = torch.trapezoid(tp, fp)
    return _out(out, single)


def binarize(h: Tensor | np.ndarray, quantile: float = 0.9) -> Tensor:
    """Fixation map from a heatmap: pixels at or above the map's `quantile` (per map)."""
    h = torch.as_tensor(h).to(torch.float64)
    flat = h.flatten(-2)  # (..., H·W)
    threshold = torch.quantile(flat, quantile, dim=-1, keepdim=True)
    return (flat >= threshold).reshape(h.shape)


def auc(s: Tensor | np.ndarray, fixations: Tensor | np.ndarray) -> float | Tensor:
    """ROC AUC of saliency values at fixated pixels vs all other pixels (ties count ½).

    Args:
        s: saliency, (H, W) or (B, H, W).
        fixations: binary map of the same shape (for a heatmap pass ``binarize(h, q)``).

    Raises:
        ValueError: a map with no fixated or no unfixated pixel (AUC undefined).
    """
    s, f, single = _pair(s, torch.as_tensor(fixations).to(torch.float64), "auc")
    if not torch.isin(f, torch.tensor([0.0, 1.0], dtype=f.dtype)).all():
        raise ValueError("auc: fixations must be a binary map (0/1 or bool); binarize a heatmap with medalign.metrics.saliency.binarize")
    positive = f.bool()
    n_pos, n_neg = positive.sum(1), (~positive).sum(1)  # (B,)
    if (n_pos == 0).any() or (n_neg == 0).any():
        raise ValueError("auc: every map needs at least one fixated and one unfixated pixel")
    # Mann–Whitney U from average ranks (ties share their mean rank).
    order = s.argsort(1)  # (B, P)
    sorted_s = torch.gather(s, 1, order)
    ranks = torch.empty_like(s)
    for b in range(len(s)):  # average ranks per row (tie groups via unique counts)
        _, inverse, counts = torch.unique_consecutive(sorted_s[b], return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).to(torch.float64)
        mean_rank = ends - (counts.to(torch.float64) - 1) / 2  # 1-based mean rank of each tie group
        ranks[b, order[b]] = mean_rank[inverse]
    u = (ranks * positive).sum(1) - n_pos * (n_pos + 1) / 2
    return _out(u / (n_pos * n_neg), single)
