"""Retrieval queries per second over 200k random 512-d reports: faiss IndexFlatIP vs torch matmul + top-k.

    python scripts/bench_retrieval.py [--corpus 200000] [--queries 1000] [--dim 512] [--k 10]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from medalign.evaluation.tasks.retrieval import knn_search


def torch_topk(corpus: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    scores, ids = [], []
    for start in range(0, len(queries), chunk):
        s, i = (queries[start : start + chunk] @ corpus.T).topk(k, dim=1)  # (C, M) → (C, k)
        scores.append(s)
        ids.append(i)
    return torch.cat(scores).numpy(), torch.cat(ids).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((args.corpus, args.dim), dtype=np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    knn_search(corpus[:1000], queries[:10], args.k)  # warm-up (faiss import, threads)
    start = time.perf_counter()
    f_scores, f_ids = knn_search(corpus, queries, args.k)
    faiss_s = time.perf_counter() - start

    corpus_t, queries_t = torch.from_numpy(corpus), torch.from_numpy(queries)
    torch_topk(corpus_t[:1000], queries_t[:10], args.k)
    start = time.perf_counter()
    t_scores, t_ids = torch_topk(corpus_t, queries_t, args.k)
    torch_s = time.perf_counter() - start

    import faiss

    start = time.perf_counter()
    faiss.IndexFlatIP(args.dim).add(corpus)
    build_s = time.perf_counter() - start
    agree = float((f_ids == t_ids).mean())
    print(f"corpus {args.corpus} x {args.dim}, {args.queries} queries, top-{args.k}, torch threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"faiss IndexFlatIP : {faiss_s:7.3f} s  {args.queries / faiss_s:9.1f} queries/s  (of which index build {build_s:.3f} s)")
    print(f"torch matmul+topk : {torch_s:7.3f} s  {args.queries / torch_s:9.1f} queries/s")
    print(f"ratio torch/faiss time: {torch_s / faiss_s:.2f}x   (same top-{args.k} ids: {100 * agree:.2f}%, "
          f"max score diff {np.abs(f_scores - t_scores).max():.1e})")


if __name__ == "__main__":
    main()
