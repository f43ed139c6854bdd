"""Image ↔ report retrieval metrics: the one definition of rank, Recall@K and report de-duplication.

Used by validation (`val/i2t_R@K`, `ContrastiveModule`) and by `test` (the ``retrieval`` task) alike,
so a metric name means the same number in the logs, ``results.json`` and the README tables.
Definitions (docs/evaluation.md, "Metric definitions"):

- **Report identity.** Identical report strings are one corpus item (the first occurrence's
  embedding represents it). An image's truth is its own report; a report's truth is every image
  that carries it.
- **Pessimistic rank.** ``rank = 1 + #{items other than the truth scoring ≥ the truth's score}``
  (with several true items: ≥ the best-scoring one). Ties never favour the truth, so a collapsed
  model (every score equal) ranks every truth last and scores chance or worse, never 100 %; the
  rank does not depend on the corpus order.
- **R@K** = 100 · share of queries with rank ≤ K (percent; CLIP's hit rate, eCLIP paper §5).
  **Mean / median rank** of the 1-based ranks (median of an even count: mean of the middle two).

Scores are inner products of the given (L2-normalised) embeddings, in float32 on the embeddings'
device, computed in query chunks so a 200k-report corpus never needs a (Q, 200k) matrix at once.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

__all__ = ["dedup_texts", "pessimistic_rank", "rank_metrics", "report_groups", "report_keys", "retrieval_metrics"]

Reports = Sequence[str] | np.ndarray | torch.Tensor  # N report strings, or N integer report keys


def pessimistic_rank(scores: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """1-based rank of the truth: 1 + #{non-true items scoring ≥ the best true item's score}.

    Args:
        scores: (Q, M) query-by-item scores.
        truth: (Q, M) bool, True for each query's true item(s); every row needs at least one.

    Returns:
        (Q,) int64 ranks in [1, M − #true + 1].
    """
    if scores.shape != truth.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and truth mask {tuple(truth.shape)} must have the same shape")
    if not bool(truth.any(1).all()):
        raise ValueError("every query needs at least one true item (a row of the truth mask is all False)")
    best = scores.masked_fill(~truth, float("-inf")).amax(1, keepdim=True)  # (Q, 1)
    return 1 + ((scores >= best) & ~truth).sum(1)


def report_keys(texts: Sequence[str]) -> torch.Tensor:
    """A stable 64-bit key per report string (BLAKE2b), so report identity travels as a tensor.

    Identical strings get identical keys on every process and run (unlike Python's ``hash``);
    distinct strings collide with probability ~N²/2⁶⁴.

    Returns:
        (N,) int64.
    """
    keys = [int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little", signed=True) for t in texts]
    return torch.tensor(keys, dtype=torch.int64)


def report_groups(reports: Reports) -> tuple[np.ndarray, np.ndarray]:
    """Group identical reports (strings, or integer keys from `report_keys`).

    Returns:
        ``inverse`` (N,) the group of each input and ``first`` (U,) the input position of each
        group's first occurrence; groups are numbered in first-occurrence order.
    """
    if isinstance(reports, torch.Tensor) or (isinstance(reports, np.ndarray) and reports.dtype.kind in "iu"):
        keys = reports.detach().cpu().numpy() if isinstance(reports, torch.Tensor) else reports
        _, first, inverse = np.unique(keys.reshape(-1), return_index=True, return_inverse=True)
        order = np.argsort(first)  # sorted-key groups → first-occurrence order
        renumber = np.empty_like(order)
        renumber[order] = np.arange(len(order))
        return renumber[inverse.reshape(-1)].astype(np.int64), first[order].astype(np.int64)
    _, inverse, first = dedup_texts([str(t) for t in reports])
    return inverse, first


def dedup_texts(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Merge identical strings.

    Returns:
        unique strings (first-occurrence order), `inverse` (N,) mapping each input to its unique
        entry, and `first` (U,) the input position of each unique entry's first occurrence.
    """
    position: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    first: list[int] = []
    for i, text in enumerate(texts):
        if text not in position:
            position[text] = len(first)
            first.append(i)
        inverse[i] = position[text]
    return [texts[i] for i in first], inverse, np.asarray(first, dtype=np.int64)


def rank_metrics(ranks: np.ndarray | torch.Tensor, ks: Sequence[int] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """R@K in percent (share of 1-based ranks ≤ K), mean and median rank."""
    ranks = np.asarray(ranks.cpu() if isinstance(ranks, torch.Tensor) else ranks, dtype=np.float64)
    if ranks.size == 0 or ranks.min() < 1:
        raise ValueError(f"need at least one 1-based rank (≥ 1), got {ranks.size} ranks, min {ranks.min() if ranks.size else None}")
    out = {f"{prefix}R@{k}": float(100.0 * (ranks <= k).mean()) for k in ks}
    out[f"{prefix}mean_rank"] = float(ranks.mean())
    out[f"{prefix}median_rank"] = float(np.median(ranks))
    return out


@torch.no_grad()
def retrieval_metrics(
    image: np.ndarray | torch.Tensor,
    text: np.ndarray | torch.Tensor,
    reports: Reports,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float | int]:
    """Image→report and report→image retrieval on paired embeddings (eCLIP paper §5).

    Args:
        image: L2-normalised image embeddings (N, D); row i is paired with report i.
        text: L2-normalised report embeddings (N, D).
        reports: the N report strings, or N integer keys from `report_keys` (identity only).
        ks: cut-offs K of R@K.
        chunk_size: queries per matrix product ((chunk, M) scores in memory).

    Returns:
        ``i2t_R@K``, ``i2t_mean_rank``, ``i2t_median_rank`` over the N images against the U unique
        reports; ``t2i_*`` over the U unique reports against the N images (a report's truth: every
        image carrying it); ``n_images``, ``n_reports`` (U), ``n_duplicate_reports`` (N − U).
    """
    image_t = image if isinstance(image, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(image))
    text_t = text if isinstance(text, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(text))
    n = len(image_t)
    if image_t.ndim != 2 or text_t.shape != image_t.shape or len(reports) != n or n == 0:
        raise ValueError(
            f"need paired rows: image {tuple(image_t.shape)}, text {tuple(text_t.shape)}, {len(reports)} reports (N ≥ 1, same D)"
        )
    image_t, text_t = image_t.float(), text_t.float().to(image_t.device)
    inverse_np, first_np = report_groups(reports)
    inverse = torch.from_numpy(inverse_np).to(image_t.device)  # (N,) report group of each image
    corpus = text_t[torch.from_numpy(first_np).to(image_t.device)]  # (U, D) one embedding per distinct report
    groups = torch.arange(len(corpus), device=image_t.device)
    i2t = [
        pessimistic_rank(image_t[s : s + chunk_size] @ corpus.T, inverse[s : s + chunk_size, None] == groups[None])  # (C, U)
        for s in range(0, n, chunk_size)
    ]
    t2i = [
        pessimistic_rank(corpus[s : s + chunk_size] @ image_t.T, groups[s : s + chunk_size, None] == inverse[None])  # (C, N)
        for s in range(0, len(corpus), chunk_size)
    ]
    out: dict[str, float | int] = rank_metrics(torch.cat(i2t), ks, "i2t_")
    out.update(rank_metrics(torch.cat(t2i), ks, "t2i_"))
    out.update(n_images=n, n_reports=len(corpus), n_duplicate_reports=n - len(corpus))
    return out
