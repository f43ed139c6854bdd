"""Independent reference computations for metric tests (different formulations than the library's)."""

from __future__ import annotations

from typing import Sequence


def adversarial_rank(scores: Sequence[float], is_truth: Sequence[bool]) -> int:
    """1-based position of the first true item after sorting by score, true items last among equals."""
    order = sorted(range(len(scores)), key=lambda j: (-scores[j], is_truth[j]))
    return next(pos for pos, j in enumerate(order, start=1) if is_truth[j])


def brute_force_retrieval(image, text, texts: Sequence[str], ks: Sequence[int] = (1, 5, 10)) -> tuple[dict[str, float], int]:
    """R@K (%), mean and median rank by Python loops in float64 over a sorted set of distinct reports.

    A report is represented by its first occurrence's embedding; its truth is every image carrying it.
    """
    texts = list(texts)
    unique = sorted(set(texts))
    emb = {u: [float(v) for v in text[texts.index(u)]] for u in unique}

    def dot(a, b) -> float:
        return sum(float(x) * float(y) for x, y in zip(a, b))

    i2t = [adversarial_rank([dot(image[i], emb[u]) for u in unique], [u == texts[i] for u in unique]) for i in range(len(image))]
    t2i = [adversarial_rank([dot(image[i], emb[u]) for i in range(len(image))], [t == u for t in texts]) for u in unique]
    out = {}
    for name, ranks in (("i2t_", i2t), ("t2i_", t2i)):
        for k in ks:
            out[f"{name}R@{k}"] = 100.0 * sum(r <= k for r in ranks) / len(ranks)
        out[f"{name}mean_rank"] = sum(ranks) / len(ranks)
        s = sorted(ranks)
        out[f"{name}median_rank"] = (s[(len(s) - 1) // 2] + s[len(s) // 2]) / 2
    return out, len(unique)


def f1_from_confusion(confusion: Sequence[Sequence[int]]) -> tuple[float, float, list[float]]:
    """Accuracy, macro-F1 and per-class F1 = 2·TP / (2·TP + FP + FN) from a confusion matrix (rows = truth).

    A class with no true and no predicted rows gets F1 0 (sklearn's ``zero_division=0``).
    """
    k = len(confusion)
    per_class = []
    for c in range(k):
        tp = confusion[c][c]
        fn = sum(confusion[c]) - tp
        fp = sum(confusion[r][c] for r in range(k)) - tp
        per_class.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    n = sum(map(sum, confusion))
    return sum(confusion[c][c] for c in range(k)) / n, sum(per_class) / k, per_class


def nmi_by_hand(a: Sequence, b: Sequence) -> float:
    """Normalised mutual information I(a; b) / mean(H(a), H(b)) from counts (natural log)."""
    import math
    from collections import Counter

    n = len(a)
    pa, pb, pab = Counter(a), Counter(b), Counter(zip(a, b))
    mi = sum(c / n * math.log((c / n) / (pa[x] / n * pb[y] / n)) for (x, y), c in pab.items())
    h = lambda p: -sum(c / n * math.log(c / n) for c in p.values())  # noqa: E731
    denominator = (h(pa) + h(pb)) / 2
    return mi / denominator if denominator else 1.0


def silhouette_by_hand(x, clusters, chunk: int = 1024) -> float:
    """Mean over points of (b − a) / max(a, b): a = mean distance to its own cluster's other points,
    b = the smallest mean distance to another cluster (Rousseeuw 1987); scipy distances, chunked rows."""
    import numpy as np
    from scipy.spatial.distance import cdist

    x, clusters = np.asarray(x, dtype=np.float64), np.asarray(clusters)
    ids, own = np.unique(clusters, return_inverse=True)  # own: (N,) cluster index of each point
    one_hot = np.eye(len(ids))[own]  # (N, C)
    sizes = one_hot.sum(0)  # (C,)
    values = []
    for start in range(0, len(x), chunk):
        d = cdist(x[start : start + chunk], x)  # (B, N) Euclidean, computed directly (no ‖a‖² − 2ab + ‖b‖²)
        rows = np.arange(len(d))
        mine = own[start : start + chunk]  # (B,)
        mean_to = (d @ one_hot) / (sizes - np.eye(len(ids))[mine])  # (B, C): own cluster without the point itself
        a = mean_to[rows, mine]
        mean_to[rows, mine] = np.inf
        b = mean_to.min(1)
        values.append((b - a) / np.maximum(a, b))
    return float(np.concatenate(values).mean())


def calinski_harabasz_by_hand(x, clusters) -> float:
    """[between-cluster dispersion / (k − 1)] / [within-cluster dispersion / (n − k)]."""
    import numpy as np

    x, clusters = np.asarray(x, dtype=np.float64), np.asarray(clusters)
    ids, centre = np.unique(clusters), x.mean(0)
    between = sum((clusters == c).sum() * ((x[clusters == c].mean(0) - centre) ** 2).sum() for c in ids)
    within = sum(((x[clusters == c] - x[clusters == c].mean(0)) ** 2).sum() for c in ids)
    return float((between / (len(ids) - 1)) / (within / (len(x) - len(ids))))
