"""Embedding-geometry metrics: pure functions on L2-normalised (N, d) tensors.

References:
    eCLIP paper: "Improving Medical Multi-modal Contrastive Learning with Expert
    Annotations" (alignment Eq. 2, uniformity Eq. 3).
    Cone-effect paper: "Mind the Gap: Understanding the Modality Gap in Multi-modal
    Contrastive Representation Learning" (λ-shift Eq. 5–6, mean resultant length Eq. 7).
    Wang & Isola, "Understanding Contrastive Representation Learning through Alignment
    and Uniformity on the Hypersphere" (per-modality uniformity).

Pairwise terms are computed in row chunks of ``chunk_size`` rows, so memory is
O(chunk_size · N) rather than O(N²); results equal the unchunked formulas to float
tolerance. Everything runs on the inputs' device and in their dtype (float64 stays
float64); sums over N are accumulated in float64 where the device supports it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

NORM_TOLERANCE = 1e-3  # max allowed | ‖x_i‖₂ − 1 | for an input row

__all__ = [
    "alignment",
    "gap_vector",
    "geometry_summary",
    "intra_modal_cosine",
    "lambda_shift",
    "mean_resultant_length",
    "modality_gap",
    "true_pair_cosine",
    "uniformity",
    "wang_isola_uniformity",
]


# --------------------------------------------------------------------------- checks


def _check_embeddings(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, d), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(x.shape)}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 rows (N >= 2), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    deviation = (x.norm(dim=1) - 1).abs().max().item()
    if not math.isfinite(deviation):
        raise ValueError(f"{name} contains NaN or infinite values")
    if deviation > NORM_TOLERANCE:
        raise ValueError(
            f"{name} must be L2-normalised along dim 1: max | ‖row‖₂ − 1 | = {deviation:.3g} "
            f"> {NORM_TOLERANCE:g}; apply torch.nn.functional.normalize(x, dim=-1) first"
        )


def _check_pair(v: Tensor, t: Tensor, paired: bool) -> None:
    """Validate both modalities; ``paired`` additionally requires v_i ↔ t_i (same N)."""
    _check_embeddings(v, "v")
    _check_embeddings(t, "t")
    if paired and v.shape != t.shape:
        raise ValueError(
            f"v and t must be paired with the same shape (N, d), got v {tuple(v.shape)} "
            f"and t {tuple(t.shape)}"
        )
    if v.shape[1] != t.shape[1]:
        raise ValueError(
            f"v and t must have the same embedding dim d, got v {tuple(v.shape)} and t {tuple(t.shape)}"
        )
    if v.device != t.device or v.dtype != t.dtype:
        raise ValueError(
            f"v and t must share device and dtype, got v ({v.device}, {v.dtype}) "
            f"and t ({t.device}, {t.dtype})"
        )


def _check_chunk_size(chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")


def _acc_dtype(x: Tensor) -> torch.dtype:
    """float64 for accumulating sums over N, except on MPS (no float64 support)."""
    return x.dtype if x.device.type == "mps" else torch.float64


# ------------------------------------------------------------------ pairwise blocks


def _logit_blocks(a: Tensor, b: Tensor, chunk_size: int) -> Iterator[tuple[int, Tensor]]:
    """Yield (start, L) with L[r, j] = −2‖a_{start+r} − b_j‖², one row chunk at a time.

    Uses ‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b with the dot products and ‖b‖² fused into one
    ``addmm``, so each (c, N_b) block costs one matmul and one elementwise pass.
    """
    a_sq = a.pow(2).sum(1)  # (N_a,)
    b_term = b.pow(2).sum(1).mul_(-2)[None, :]  # (1, N_b)  −2‖b_j‖²
    for start in range(0, a.shape[0], chunk_size):
        stop = min(start + chunk_size, a.shape[0])
        block = torch.addmm(b_term, a[start:stop], b.T, alpha=4)  # (c, N_b)  4a·b − 2‖b‖²
        yield start, block.sub_(2 * a_sq[start:stop, None])


def _diagonal_index(start: int, block: Tensor) -> tuple[Tensor, Tensor]:
    """(row, col) indices of the global diagonal i == j inside a row block."""
    rows = torch.arange(block.shape[0], device=block.device)
    return rows, rows + start


def _cross_modal_terms(
    v: Tensor, t: Tensor, chunk_size: int, with_alignment: bool
) -> tuple[float, float]:
    """One pass over ‖v_i − t_j‖² giving (alignment or NaN, uniformity); see those functions."""
    n_v, n_t = v.shape[0], t.shape[0]
    acc = _acc_dtype(v)
    gap_sum = torch.zeros((), dtype=acc, device=v.device)
    lse_parts = []
    for start, logits in _logit_blocks(v, t, chunk_size):  # logits: (c, N_t) = −2‖v_i − t_j‖²
        lse_parts.append(torch.logsumexp(logits, dim=1).to(acc))  # (c,)
        if with_alignment:
            rows, cols = _diagonal_index(start, logits)
            positive = logits[rows, cols] / -2  # (c,)  ‖v_i − t_i‖²
            logits[rows, cols] = float("-inf")
            hardest_negative = logits.max(dim=1).values / -2  # (c,)  min_{j≠i} ‖v_i − t_j‖²
            gap_sum += (positive - hardest_negative).sum(dtype=acc)
    log_mean = torch.logsumexp(torch.cat(lse_parts), dim=0).item() - math.log(n_v * n_t)
    align = -gap_sum.item() / n_v if with_alignment else float("nan")
    return align, -log_mean


# ------------------------------------------------------------------------- metrics


def alignment(v: Tensor, t: Tensor, chunk_size: int = 4096) -> float:
    """Alignment of true pairs relative to the hardest negative (eCLIP paper, Eq. 2).

    ``−E_i[‖v_i − t_i‖² − min_{j≠i} ‖v_i − t_j‖²]``; higher is better aligned.

    Args:
        v: Image embeddings, (N, d), L2-normalised.
        t: Text embeddings paired row-wise with ``v``, (N, d), L2-normalised.
        chunk_size: Rows of ``v`` per block; peak memory is O(chunk_size · N).
    """
    _check_pair(v, t, paired=True)
    _check_chunk_size(chunk_size)
    return _cross_modal_terms(v, t, chunk_size, with_alignment=True)[0]


def uniformity(v: Tensor, t: Tensor, chunk_size: int = 4096) -> float:
    """Cross-modal uniformity (eCLIP paper, Eq. 3).

    ``−log E_{i,j}[exp(−2‖v_i − t_j‖²)]`` over all (i, j) pairs including i = j, computed
    as ``−(logsumexp − log(N_v·N_t))`` for stability. ``v`` and ``t`` need not be paired.

    Args:
        v: Image embeddings, (N_v, d), L2-normalised.
        t: Text embeddings, (N_t, d), L2-normalised.
        chunk_size: Rows of ``v`` per block; peak memory is O(chunk_size · N_t).
    """
    _check_pair(v, t, paired=False)
    _check_chunk_size(chunk_size)
    return _cross_modal_terms(v, t, chunk_size, with_alignment=False)[1]


def wang_isola_uniformity(x: Tensor, chunk_size: int = 4096) -> float:
    """Per-modality uniformity (Wang & Isola 2020, L_uniform with t = 2).

    ``log E_{i<j}[exp(−2‖x_i − x_j‖²)]``; lower (more negative) is more uniform.

    Args:
        x: Embeddings of one modality, (N, d), L2-normalised.
        chunk_size: Rows per block; peak memory is O(chunk_size · N).
    """
    _check_embeddings(x, "x")
    _check_chunk_size(chunk_size)
    n = x.shape[0]
    lse_parts = []
    for start, logits in _logit_blocks(x, x, chunk_size):  # logits: (c, N) = −2‖x_i − x_j‖²
        logits[_diagonal_index(start, logits)] = float("-inf")  # drop i == j
        lse_parts.append(torch.logsumexp(logits, dim=1).to(_acc_dtype(x)))  # (c,)
    # The ordered pairs i ≠ j count each unordered pair twice, so their mean is E_{i<j}.
    return torch.logsumexp(torch.cat(lse_parts), dim=0).item() - math.log(n * (n - 1))


def gap_vector(v: Tensor, t: Tensor) -> Tensor:
    """Modality-gap vector Δ = μ_v − μ_t between the modality centroids (cone-effect paper).

    Args:
        v: Image embeddings, (N_v, d), L2-normalised.
        t: Text embeddings, (N_t, d), L2-normalised.

    Returns:
        Δ, shape (d,), in the inputs' dtype and device.
    """
    _check_pair(v, t, paired=False)
    return _centroid(v) - _centroid(t)


def modality_gap(v: Tensor, t: Tensor) -> float:
    """Modality gap ‖μ_v − μ_t‖₂ (cone-effect paper).

    Args:
        v: Image embeddings, (N_v, d), L2-normalised.
        t: Text embeddings, (N_t, d), L2-normalised.
    """
    return gap_vector(v, t).norm().item()


def mean_resultant_length(x: Tensor) -> float:
    """Mean resultant length R = ‖(1/N) Σ_i x_i‖₂ (cone-effect paper, Eq. 7).

    R ∈ [0, 1]: 1 when all vectors coincide (a collapsed cone), 0 when they cancel.

    Args:
        x: Embeddings of one modality, (N, d), L2-normalised.
    """
    _check_embeddings(x, "x")
    return _centroid(x).norm().item()


def true_pair_cosine(v: Tensor, t: Tensor) -> float:
    """Mean cosine similarity of true pairs, E_i[cos(v_i, t_i)].

    Args:
        v: Image embeddings, (N, d), L2-normalised.
        t: Text embeddings paired row-wise with ``v``, (N, d), L2-normalised.
    """
    _check_pair(v, t, paired=True)
    return F.cosine_similarity(v, t, dim=1).mean(dtype=_acc_dtype(v)).item()


def intra_modal_cosine(x: Tensor) -> float:
    """Mean cosine similarity between distinct items of one modality, E_{i≠j}[cos(x_i, x_j)].

    Uses Σ_{i≠j} x̂_i·x̂_j = ‖Σ_i x̂_i‖² − N on re-normalised rows x̂, so no N×N matrix.

    Args:
        x: Embeddings of one modality, (N, d), L2-normalised.
    """
    _check_embeddings(x, "x")
    n = x.shape[0]
    total = F.normalize(x, dim=1).sum(dim=0, dtype=_acc_dtype(x))  # (d,)
    return ((total.pow(2).sum() - n) / (n * (n - 1))).item()


def lambda_shift(
    v: Tensor, t: Tensor, lam: float, delta: Tensor | None = None, renormalize: bool = True
) -> tuple[Tensor, Tensor]:
    """Shift both modalities along the gap vector (cone-effect paper, Eq. 5–6).

    ``v' = normalise(v − λ/2·Δ)``, ``t' = normalise(t + λ/2·Δ)``. Before re-normalisation
    the centroid gap becomes (1 − λ)·Δ, so λ = 1 moves both centroids onto their midpoint.

    Args:
        v: Image embeddings, (N_v, d), L2-normalised.
        t: Text embeddings, (N_t, d), L2-normalised.
        lam: Shift fraction λ (the paper sweeps 0, 0.1, …, 1.0).
        delta: Gap vector Δ, (d,); estimate it on the train split and pass it for
            val/test. Defaults to ``gap_vector(v, t)``.
        renormalize: Project back onto the unit sphere (the paper's method); False returns
            the raw shifted points, e.g. to inspect centroids.

    Returns:
        (v', t'), shapes (N_v, d) and (N_t, d).
    """
    _check_pair(v, t, paired=False)
    if delta is None:
        delta = gap_vector(v, t)
    elif not isinstance(delta, Tensor) or tuple(delta.shape) != (v.shape[1],):
        shape = tuple(delta.shape) if isinstance(delta, Tensor) else type(delta).__name__
        raise ValueError(f"delta must be a tensor of shape (d,) = ({v.shape[1]},), got {shape}")
    step = (lam / 2) * delta.to(device=v.device, dtype=v.dtype)  # (d,)
    v_shifted, t_shifted = v - step, t + step  # (N_v, d), (N_t, d)
    if renormalize:
        return F.normalize(v_shifted, dim=1), F.normalize(t_shifted, dim=1)
    return v_shifted, t_shifted


def geometry_summary(v: Tensor, t: Tensor, chunk_size: int = 4096) -> dict[str, float]:
    """All geometry metrics of a paired embedding set, with one pass per N×N term.

    Args:
        v: Image embeddings, (N, d), L2-normalised.
        t: Text embeddings paired row-wise with ``v``, (N, d), L2-normalised.
        chunk_size: Rows per block for the pairwise terms.

    Returns:
        Floats keyed ``alignment``, ``uniformity``, ``modality_gap``, ``r_image``,
        ``r_text``, ``true_pair_cosine``, ``intra_cosine_image``, ``intra_cosine_text``,
        ``uniformity_image``, ``uniformity_text``.
    """
    _check_pair(v, t, paired=True)
    _check_chunk_size(chunk_size)
    align, uniform = _cross_modal_terms(v, t, chunk_size, with_alignment=True)
    return {
        "alignment": align,
        "uniformity": uniform,
        "modality_gap": modality_gap(v, t),
        "r_image": mean_resultant_length(v),
        "r_text": mean_resultant_length(t),
        "true_pair_cosine": true_pair_cosine(v, t),
        "intra_cosine_image": intra_modal_cosine(v),
        "intra_cosine_text": intra_modal_cosine(t),
        "uniformity_image": wang_isola_uniformity(v, chunk_size),
        "uniformity_text": wang_isola_uniformity(t, chunk_size),
    }


def _centroid(x: Tensor) -> Tensor:
    """μ = (1/N) Σ_i x_i, (d,), accumulated in float64 and returned in x's dtype."""
    return x.mean(dim=0, dtype=_acc_dtype(x)).to(x.dtype)
