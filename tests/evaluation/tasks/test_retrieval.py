"""The retrieval task: faiss nearest neighbours against numpy, and the metric owned by `medalign.metrics`.

Rank / R@K definitions are tested against hand-computed cases and a brute force in
tests/metrics/test_retrieval.py.
"""

from __future__ import annotations

import numpy as np

from medalign.evaluation.tasks import retrieval as task
from medalign.metrics import retrieval as metric


def test_task_uses_the_one_metric_definition():
    assert task.retrieval_metrics is metric.retrieval_metrics and task.dedup_texts is metric.dedup_texts


def test_knn_search_matches_numpy_topk():
    rng = np.random.default_rng(2)
    corpus = rng.normal(size=(500, 32)).astype(np.float32)
    queries = rng.normal(size=(37, 32)).astype(np.float32)
    scores, ids = task.knn_search(corpus, queries, k=10, chunk_size=8)
    full = queries @ corpus.T
    want = np.argsort(-full, axis=1)[:, :10]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), rtol=1e-5, atol=1e-5)


def test_knn_search_caps_k_at_the_corpus_size():
    corpus = np.eye(3, dtype=np.float32)
    scores, ids = task.knn_search(corpus, np.array([[0.0, 1.0, 0.0]], dtype=np.float32), k=10)
    assert ids.shape == (1, 3) and ids[0, 0] == 1 and scores[0, 0] == 1.0
