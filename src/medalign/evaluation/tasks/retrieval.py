"""Image ↔ report retrieval: Recall@K as CLIP's hit rate, mean / median rank (eCLIP paper §5).

Ground truth is report identity: image i matches the report string of its own pair. Identical
report strings are merged into one corpus entry before ranking (otherwise a query would compete
with copies of its own report and R@K would be biased); the number merged is reported.

The rank of the truth is the number of corpus items scoring strictly higher (ties count in
the truth's favour, so the result does not depend on an index's tie order); R@K is the share
of queries with rank < K. Nearest-neighbour lists come from a faiss ``IndexFlatIP`` over
L2-normalised float32 vectors; ranks from chunked matrix products, so a 200k-report corpus never
needs a (Q, 200k) matrix in memory at once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


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
    unique = [texts[i] for i in first]
    return unique, inverse, np.asarray(first, dtype=np.int64)


def _faiss():
    try:
        import faiss
    except ImportError as err:
        raise ImportError("retrieval needs faiss: pip install faiss-cpu (or faiss-gpu)") from err
    return faiss


def knn_search(corpus: np.ndarray, queries: np.ndarray, k: int, chunk_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner-product neighbours with faiss ``IndexFlatIP`` (exact search).

    Args:
        corpus: L2-normalised (M, D) vectors to index.
        queries: L2-normalised (Q, D) vectors.
        k: neighbours per query (capped at M).
        chunk_size: queries searched per call.

    Returns:
        scores (Q, k) float32 descending and ids (Q, k) int64 into `corpus`.
    """
    faiss = _faiss()
    corpus = np.ascontiguousarray(corpus, dtype=np.float32)
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(corpus)
    k = min(k, len(corpus))
    scores, ids = [], []
    for start in range(0, len(queries), chunk_size):
        s, i = index.search(np.ascontiguousarray(queries[start : start + chunk_size], dtype=np.float32), k)
        scores.append(s)
        ids.append(i)
    return np.concatenate(scores), np.concatenate(ids)


@torch.no_grad()
def true_ranks(queries: np.ndarray, corpus: np.ndarray, target: np.ndarray, chunk_size: int = 1024) -> np.ndarray:
    """0-based rank of each query's target: #{j : s(q, j) > s(q, target)} (ties favour the target).

    Args:
        queries: (Q, D) float32.
        corpus: (M, D) float32.
        target: (Q,) index of each query's true item in `corpus`.
        chunk_size: queries per matrix product ((chunk, M) scores in memory).
    """
    corpus_t = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    ranks = []
    for start in range(0, len(queries), chunk_size):
        q = torch.from_numpy(np.ascontiguousarray(queries[start : start + chunk_size], dtype=np.float32))
        scores = q @ corpus_t.T  # (C, M)
        tgt = torch.from_numpy(target[start : start + chunk_size]).long()
        true = scores.gather(1, tgt[:, None])  # (C, 1), the same numbers as in `scores`
        ranks.append((scores > true).sum(1))
    return torch.cat(ranks).numpy().astype(np.int64)


def rank_metrics(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10), prefix: str = "") -> dict[str, float]:
    """Recall@K (hit rate) in percent, mean and median 1-based rank."""
    out = {f"{prefix}R@{k}": float(100.0 * (ranks < k).mean()) for k in ks}
    out[f"{prefix}mean_rank"] = float(ranks.mean() + 1)
    out[f"{prefix}median_rank"] = float(np.median(ranks) + 1)
    return out


def retrieval_metrics(
    image: np.ndarray,
    text: np.ndarray,
    texts: Sequence[str],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float | int]:
    """Image→report and report→image retrieval on paired embeddings.

    Args:
        image: L2-normalised image embeddings (N, D); row i is paired with report `texts[i]`.
        text: L2-normalised report embeddings (N, D).
        texts: the N report strings (for de-duplication by identity).
        ks: cut-offs K of Recall@K.
        chunk_size: queries per chunk.

    Returns:
        ``i2t_R@K``, ``i2t_mean_rank``, ``i2t_median_rank`` over the N images against the U unique
        reports; ``t2i_*`` over the U unique reports against the N images, where a report's hit is
        any image it belongs to (its best-ranked one); ``n_images``, ``n_reports`` (U) and
        ``n_duplicate_reports`` (N − U).
    """
    if len(image) != len(text) or len(image) != len(texts):
        raise ValueError(f"need paired rows: image {image.shape}, text {text.shape}, {len(texts)} report strings")
    unique, inverse, first = dedup_texts(texts)
    corpus = text[first]  # (U, D): one embedding per distinct report
    out: dict[str, float | int] = rank_metrics(true_ranks(image, corpus, inverse, chunk_size), ks, "i2t_")
    out.update(rank_metrics(_report_to_image_ranks(corpus, image, inverse, chunk_size), ks, "t2i_"))
    out.update(n_images=len(image), n_reports=len(unique), n_duplicate_reports=len(texts) - len(unique))
    return out


@torch.no_grad()
def _report_to_image_ranks(reports: np.ndarray, image: np.ndarray, owner: np.ndarray, chunk_size: int) -> np.ndarray:
    """Rank of each unique report's best-scoring own image among all images (ties favour it)."""
    image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    owner_t = torch.from_numpy(owner)
    ranks = []
    for start in range(0, len(reports), chunk_size):
        r = torch.from_numpy(np.ascontiguousarray(reports[start : start + chunk_size], dtype=np.float32))
        scores = r @ image_t.T  # (C, N)
        own = owner_t[None, :] == torch.arange(start, start + len(r))[:, None]  # (C, N) this report's images
        best = scores.masked_fill(~own, float("-inf")).amax(1, keepdim=True)  # (C, 1)
        ranks.append((scores > best).sum(1))
    return torch.cat(ranks).numpy().astype(np.int64)
