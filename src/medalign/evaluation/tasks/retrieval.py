"""Image ↔ report retrieval task: R@K, mean / median rank and faiss nearest-neighbour lists (eCLIP paper §5).

The metric definitions — report de-duplication, the pessimistic rank (ties never favour the truth),
R@K in percent — live in `medalign.metrics.retrieval` and are re-exported here; validation
(`val/i2t_R@K`) uses the same function. Nearest-neighbour lists (report retrieval) come from a
faiss ``IndexFlatIP`` over L2-normalised float32 vectors.
"""

from __future__ import annotations

import numpy as np

from medalign.metrics.retrieval import dedup_texts, pessimistic_rank, rank_metrics, report_keys, retrieval_metrics

__all__ = ["dedup_texts", "knn_search", "pessimistic_rank", "rank_metrics", "report_keys", "retrieval_metrics"]


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


