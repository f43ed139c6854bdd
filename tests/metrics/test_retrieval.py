"""Retrieval ranks and R@K against hand-computed cases and an adversarial-sort brute force.

The brute force never counts "items scoring ≥ the truth": it sorts the corpus by score with every
tie broken against the truth (true items placed after equal-scoring others) and reads the position
of the first true item — a different formulation of the pessimistic rank.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medalign.metrics import retrieval_metrics as reexported
from medalign.metrics.retrieval import (
    dedup_texts,
    pessimistic_rank,
    rank_metrics,
    report_groups,
    report_keys,
    retrieval_metrics,
)
from tests.reference import brute_force_retrieval


def _check(image, text, texts):
    got = retrieval_metrics(image, text, texts, chunk_size=7)  # several chunks
    want, n_unique = brute_force_retrieval(image, text, texts)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert got["n_reports"] == n_unique and got["n_duplicate_reports"] == len(texts) - n_unique
    return got


# ---------------------------------------------------------------- hand-computed cases


def test_ties_count_against_the_truth_by_hand():
    # scores image×report = image @ text.T:
    #   image 0: [1, 1, 0]  truth 0 ties with report 1      → rank 2
    #   image 1: [0, 0, 0]  truth 1 ties with reports 0, 2  → rank 3
    #   image 2: [0, 0, 1]  truth 2 alone on top            → rank 1
    # report→image: a: [1, 0, 0] → 1;  b: [1, 0, 0], truth image 1 (0) below image 0, tied with 2 → 3;  c → 1
    image = np.eye(3, dtype=np.float32)
    text = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    got = retrieval_metrics(image, text, ["a", "b", "c"], ks=(1, 2))
    assert got["i2t_R@1"] == pytest.approx(100 / 3) and got["i2t_R@2"] == pytest.approx(200 / 3)
    assert got["i2t_mean_rank"] == pytest.approx(2.0) and got["i2t_median_rank"] == 2.0
    assert got["t2i_R@1"] == pytest.approx(200 / 3) and got["t2i_R@2"] == pytest.approx(200 / 3)
    assert got["t2i_mean_rank"] == pytest.approx(5 / 3) and got["t2i_median_rank"] == 1.0


def test_duplicates_are_one_item_represented_by_their_first_occurrence():
    # "same" = rows 0 and 1, represented by row 0's embedding e0; "other" = [0, .5, 1].
    # image 1 scores same 0 < other .5 → rank 2 (alone it would have found its own row-1 copy);
    # report "same" has two true images (0, 1): its best one, image 0, ranks first.
    image = np.eye(3, dtype=np.float32)
    text = np.array([[1, 0, 0], [0, 1, 0], [0, 0.5, 1]], dtype=np.float32)
    got = retrieval_metrics(image, text, ["same", "same", "other"])
    assert (got["n_images"], got["n_reports"], got["n_duplicate_reports"]) == (3, 2, 1)
    assert got["i2t_R@1"] == pytest.approx(200 / 3) and got["i2t_mean_rank"] == pytest.approx(4 / 3)
    assert got["t2i_R@1"] == pytest.approx(100.0)


def test_several_true_images_only_non_true_ones_count():
    # one report owned by images 0 and 1 scoring [.2, .2, .2, .9]: best own .2, ≥ by image 2 and 3 → rank 3
    scores = torch.tensor([[0.2, 0.2, 0.2, 0.9]])
    truth = torch.tensor([[True, True, False, False]])
    assert pessimistic_rank(scores, truth).tolist() == [3]


@pytest.mark.parametrize(("n", "n_unique"), [(20, 20), (20, 10)])
def test_collapsed_model_scores_no_better_than_chance(n, n_unique):
    # every image embedding equal, every report embedding equal: all scores tie
    image = np.tile([[0.6, 0.8]], (n, 1)).astype(np.float32)
    text = np.tile([[1.0, 0.0]], (n, 1)).astype(np.float32)
    texts = [f"report {i % n_unique}" for i in range(n)]
    got = retrieval_metrics(image, text, texts, ks=(1, 5, 10))
    for k in (1, 5, 10):
        assert got[f"i2t_R@{k}"] <= 100 * k / n_unique  # chance: K of U reports
        assert got[f"t2i_R@{k}"] <= 100 * k * (n // n_unique) / n  # chance: K draws, n/U true images of n
    assert got["i2t_R@1"] == 0.0 and got["t2i_R@1"] == 0.0
    assert got["i2t_mean_rank"] == n_unique  # every truth ranked behind all other reports
    assert got["t2i_mean_rank"] == n - n // n_unique + 1


def test_rank_metrics_units_and_median():
    got = rank_metrics(np.array([1, 2, 2, 7]), ks=(1, 2), prefix="x_")
    assert got == {"x_R@1": 25.0, "x_R@2": 75.0, "x_mean_rank": 3.0, "x_median_rank": 2.0}
    with pytest.raises(ValueError, match="1-based"):
        rank_metrics(np.array([0, 1]))


# ---------------------------------------------------------------- brute force


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


def test_tensor_inputs_and_integer_keys_give_the_same_numbers_as_strings():
    rng = np.random.default_rng(3)
    image = rng.integers(-1, 2, size=(40, 4)).astype(np.float32)
    text = rng.integers(-1, 2, size=(40, 4)).astype(np.float32)
    texts = [f"r{rng.integers(0, 15)}" for _ in range(40)]
    want = retrieval_metrics(image, text, texts)
    got = retrieval_metrics(torch.from_numpy(image), torch.from_numpy(text), report_keys(texts), chunk_size=3)
    assert got == want
    assert reexported is retrieval_metrics  # one owner, re-exported


# ---------------------------------------------------------------- report identity


def test_report_groups_agree_for_strings_and_keys():
    texts = ["b", "a", "b", "c", "a"]
    unique, inverse, first = dedup_texts(texts)
    assert unique == ["b", "a", "c"]
    assert inverse.tolist() == [0, 1, 0, 2, 1] and first.tolist() == [0, 1, 3]
    for reports in (texts, report_keys(texts), report_keys(texts).numpy()):
        inverse, first = report_groups(reports)
        assert inverse.tolist() == [0, 1, 0, 2, 1] and first.tolist() == [0, 1, 3]


def test_report_keys_are_stable_and_distinguish_strings():
    keys = report_keys(["no finding", "no finding", "No finding", ""])
    assert keys.dtype == torch.int64 and keys[0] == keys[1] and len(set(keys.tolist())) == 3
    assert keys[0].item() == -5635553446293029611  # pinned: the same key in every process and run


def test_bad_input_names_the_shapes():
    with pytest.raises(ValueError, match="paired rows"):
        retrieval_metrics(np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32), ["a", "b", "c"])
    with pytest.raises(ValueError, match="at least one true item"):
        pessimistic_rank(torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.bool))


def test_tie_free_i2t_agrees_with_torchmetrics_hit_rate():
    # a third-party reference (top-k by sorting); without ties every rank rule gives the same number
    functional = pytest.importorskip("torchmetrics.functional.retrieval")
    rng = np.random.default_rng(4)
    image = rng.normal(size=(50, 8)).astype(np.float32)
    text = (image + rng.normal(scale=1.0, size=image.shape)).astype(np.float32)
    got = retrieval_metrics(image, text, [f"r{i}" for i in range(50)], ks=(1, 5, 10))
    scores = torch.from_numpy(image @ text.T)  # (50, 50)
    target = torch.eye(50, dtype=torch.bool)
    for k in (1, 5, 10):
        hits = [float(functional.retrieval_hit_rate(scores[i], target[i], top_k=k)) for i in range(50)]
        assert got[f"i2t_R@{k}"] == pytest.approx(100 * sum(hits) / 50), k
