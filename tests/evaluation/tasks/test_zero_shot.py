"""Zero-shot classification on constructed embeddings whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score

from medalign.evaluation.tasks.zero_shot import (
    binary_zero_shot,
    class_prompt_embeddings,
    pessimistic_predictions,
    zero_shot_classify,
    zero_shot_scores,
)


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_multiclass_known_answer_and_metrics_match_sklearn():
    prompts = [_unit([1, 0, 0], [0.9, 0.1, 0]), _unit([0, 1, 0]), _unit([0, 0, 1], [0.1, 0, 1])]
    # images near class 0, 1, 2, 2, 0; the fourth is mislabelled as class 1
    image = _unit([1, 0.1, 0], [0, 1, 0.2], [0, 0.1, 1], [0.1, 0, 1], [1, 0, 0.1])
    labels = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]], dtype=np.float32)
    labels = np.vstack([labels, [[1, 1, 0], [np.nan, 0, 1]]])  # two rows that are not single-label: left out
    image = torch.cat([image, _unit([1, 0, 0], [0, 0, 1])])
    result = zero_shot_classify(image, labels, prompts, ["a", "b", "c"])
    y_true, y_pred = [0, 1, 2, 1, 0], [0, 1, 2, 2, 0]
    assert result["n"] == 5
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert result["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_aggregations_differ_where_they_should():
    # class 0: two opposite-ish prompts; class 1: one prompt. "max" picks class 0 for an image on
    # one of its prompts, while the renormalised mean and mean-of-logits favour class 1.
    prompts = [_unit([1, 0], [-0.8, 0.6]), _unit([0.8, 0.6])]
    image = _unit([1, 0])
    assert zero_shot_scores(image, prompts, "max").argmax(1).item() == 0
    assert zero_shot_scores(image, prompts, "logits").argmax(1).item() == 1
    scores = zero_shot_scores(image, prompts, "embedding")
    mean = F.normalize(prompts[0].mean(0), dim=-1)
    assert scores[0, 0].item() == pytest.approx(float(image[0] @ mean))
    with pytest.raises(ValueError, match="aggregation"):
        zero_shot_scores(image, prompts, "median")


def test_binary_zero_shot_known_answer():
    positive, negative = _unit([1, 0], [0.9, 0.3]), _unit([0, 1])
    image = _unit([1, 0.1], [0.2, 1], [0.9, 0.2], [0.1, 1], [1, 1.2])
    labels = np.array([1, 0, 1, 1, np.nan], dtype=np.float32)  # row 3 is wrong, row 4 unknown
    result = binary_zero_shot(image, labels, positive, negative, names=("no", "yes"))
    assert result["n"] == 4 and result["accuracy"] == pytest.approx(0.75)
    assert result["confusion_matrix"] == [[1, 0], [1, 2]]
    # AUC of the margin: positives (rows 0, 2, 3) vs the negative (row 1): row 3 ties/loses
    margin = (image @ F.normalize(positive.mean(0), dim=-1) - image @ negative[0])[:4].numpy()
    from sklearn.metrics import roc_auc_score

    assert result["auc"] == pytest.approx(roc_auc_score([1, 0, 1, 1], margin))


def test_class_prompt_embeddings_splits_in_order():
    stacked = np.arange(12, dtype=np.float32).reshape(6, 2)
    parts = class_prompt_embeddings(stacked, [2, 3, 1])
    assert [p.shape[0] for p in parts] == [2, 3, 1] and parts[2][0, 0].item() == 10


# ------------------------------------------------------------------ ties never favour the truth


def test_tied_top_score_is_a_miss_by_hand():
    scores = torch.tensor([[0.5, 0.5, 0.1], [0.5, 0.5, 0.1], [0.2, 0.9, 0.9], [0.1, 0.3, 0.2], [0.4, 0.4, 0.4]])
    y_true = np.array([0, 1, 2, 1, 2])
    # row 0: tied with 1 → 1; row 1: tied with 0 → 0; row 2: tied with 1 → 1; row 3: strict win → 1;
    # row 4: three-way tie → the first other class, 0
    assert pessimistic_predictions(scores, y_true).tolist() == [1, 0, 1, 1, 0]


@pytest.mark.parametrize("aggregation", ["embedding", "logits", "max"])
def test_collapsed_model_scores_no_better_than_chance(aggregation):
    # all image embeddings equal, all prompt embeddings equal: every class score ties.
    # With argmax ("always class 0") this set, 60 % class 0, would score 60 % accuracy.
    n, k = 50, 5
    image = _unit(*[[0.6, 0.8]] * n)
    prompts = [_unit([1.0, 0.0], [1.0, 0.0]) for _ in range(k)]
    truth = np.array([0] * 30 + [1, 2, 3, 4] * 5)
    labels = np.eye(k, dtype=np.float32)[truth]
    result = zero_shot_classify(image, labels, prompts, list("abcde"), aggregation)
    assert result["accuracy"] <= 1 / k and result["macro_f1"] <= 1 / k
    assert result["accuracy"] == 0.0  # the pessimistic rule: a tie is never a hit


def test_collapsed_binary_zero_shot_is_chance():
    image = _unit(*[[1.0, 0.0]] * 10)
    same = _unit([0.0, 1.0])
    labels = np.array([1] * 7 + [0] * 3, dtype=np.float32)  # argmax→"negative" would score 30 %, →"positive" 70 %
    result = binary_zero_shot(image, labels, same, same)
    assert result["accuracy"] == 0.0 and result["auc"] == pytest.approx(0.5)


def test_rounding_level_differences_are_ties_but_real_margins_are_not():
    scores = torch.tensor([[0.5 + 1e-7, 0.5], [0.5 + 1e-4, 0.5]])
    assert pessimistic_predictions(scores, np.array([0, 0])).tolist() == [1, 0]


def test_collapsed_model_with_unequal_prompt_counts_scores_no_better_than_chance():
    # the same prompt embedding, averaged over 1, 2, ..., 5 copies: class embeddings equal up to rounding
    image = _unit(*[[0.3, 0.4, 0.5]] * 20)
    prompts = [_unit(*[[0.1, 0.7, 0.2]] * (c + 1)) for c in range(5)]
    labels = np.eye(5, dtype=np.float32)[np.arange(20) % 5]
    for aggregation in ("embedding", "logits", "max"):
        assert zero_shot_classify(image, labels, prompts, list("abcde"), aggregation)["accuracy"] == 0.0


def test_pessimistic_predictions_rejects_bad_shapes():
    with pytest.raises(ValueError, match="K ≥ 2"):
        pessimistic_predictions(torch.zeros(3, 1), np.zeros(3, dtype=int))
