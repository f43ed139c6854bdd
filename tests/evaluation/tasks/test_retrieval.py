"""Retrieval metrics against a brute-force numpy ranking, with exact ties and duplicate reports."""

from __future__ import annotations

import numpy as np
import pytest

from medalign.evaluation.tasks.retrieval import dedup_texts, knn_search, retrieval_metrics


def _brute_force(image, text, texts, ks=(1, 5, 10)):
    """Independent reference: float64, Python loops, report identity via a set of strings."""
    unique = sorted(set(texts))  # a different order than the code's first-occurrence order
    emb = {u: text[texts.index(u)].astype(np.float64) for u in unique}
    corpus = np.stack([emb[u] for u in unique])
    i2t = []
    for i in range(len(image)):
        s = corpus @ image[i].astype(np.float64)
        i2t.append(int((s > s[unique.index(texts[i])]).sum()))
    t2i = []
    for u in unique:
        s = image.astype(np.float64) @ emb[u]
        best = max(s[i] for i in range(len(texts)) if texts[i] == u)
        t2i.append(int((s > best).sum()))
    out = {}
    for name, ranks in (("i2t_", np.array(i2t)), ("t2i_", np.array(t2i))):
        out.update({f"{name}R@{k}": 100.0 * np.mean(ranks < k) for k in ks})
        out[f"{name}mean_rank"] = ranks.mean() + 1
        out[f"{name}median_rank"] = np.median(ranks) + 1
    return out, len(unique)


def _check(image, text, texts):
    got = retrieval_metrics(image, text, texts, chunk_size=7)  # several chunks
    want, n_unique = _brute_force(image, text, texts)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert got["n_reports"] == n_unique and got["n_duplicate_reports"] == len(texts) - n_unique
    return got


def test_random_embeddings_match_brute_force():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(60, 16)).astype(np.float32)
    text = (image + rng.normal(scale=1.5, size=image.shape)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    got = _check(image, text, [f"report {i}" for i in range(60)])
    assert 0 < got["i2t_R@1"] < got["i2t_R@10"] < 100  # a non-trivial case


def test_exact_ties_and_duplicate_reports_match_brute_force():
    rng = np.random.default_rng(1)
    n = 80
    # Small integer vectors: every dot product is exact in float32, so ties are real ties.
    image = rng.integers(-2, 3, size=(n, 6)).astype(np.float32)
    texts = [f"report {rng.integers(0, 50)}" for _ in range(n)]  # many duplicate strings
    vectors = {t: rng.integers(-2, 3, size=6).astype(np.float32) for t in sorted(set(texts))}
    names = sorted(vectors)
    vectors[names[1]] = vectors[names[0]].copy()  # two distinct reports with identical embeddings
    text = np.stack([vectors[t] for t in texts])
    got = _check(image, text, texts)
    assert got["n_duplicate_reports"] > 10


def test_duplicates_are_merged_into_their_first_occurrence():
    # Rows 0 and 1 share one report string; the merged entry keeps row 0's embedding, so image 1
    # (which alone would retrieve its own row-1 copy) now prefers "other": a miss.
    image = np.eye(3, dtype=np.float32)
    text = np.array([[1, 0, 0], [0, 1, 0], [0, 0.5, 1]], dtype=np.float32)
    got = retrieval_metrics(image, text, ["same", "same", "other"])
    assert got["n_reports"] == 2 and got["n_duplicate_reports"] == 1
    assert got["i2t_R@1"] == pytest.approx(100 * 2 / 3)
    assert got["t2i_R@1"] == pytest.approx(100.0)  # each report's best own image ranks first


def test_dedup_texts_first_occurrence_order():
    unique, inverse, first = dedup_texts(["b", "a", "b", "c", "a"])
    assert unique == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2, 1] and first.tolist() == [0, 1, 3]


def test_knn_search_matches_numpy_topk():
    rng = np.random.default_rng(2)
    corpus = rng.normal(size=(500, 32)).astype(np.float32)
    queries = rng.normal(size=(37, 32)).astype(np.float32)
    scores, ids = knn_search(corpus, queries, k=10, chunk_size=8)
    full = queries @ corpus.T
    want = np.argsort(-full, axis=1)[:, :10]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_allclose(scores, np.take_along_axis(full, want, 1), rtol=1e-5, atol=1e-5)
