"""Zero-shot classification from prompt sets (CLIP; prompt structure after GLoRIA, Huang et al. 2021).

Tie rule (the pessimistic rank of `medalign.metrics.retrieval`, applied to classes): an image counts
as correct only when its true class scores more than `TIE_TOLERANCE` above every other class. When
the truth shares the top score with another class, the recorded prediction is the lowest-index tied
class other than the truth, so a collapsed model (all class scores equal) scores accuracy 0 — never
better than chance — instead of "always class 0", which is right for every class-0 image. The
tolerance absorbs float32 rounding: equal prompt embeddings averaged over different prompt counts
give class embeddings (and cosines) that differ by ~1e-7, which would otherwise pick a fixed class.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from medalign.data.labels import single_label_rows  # the one single-label rule (re-exported for callers)
from medalign.metrics.classification import binary_auc, classification_metrics

Aggregation = Literal["embedding", "logits", "max"]
TIE_TOLERANCE = 1e-6  # class scores (cosines) closer than this are tied


@torch.no_grad()
def encode_prompts(
    model: Any,
    tokenizer: Any,
    prompts: dict[str, list[str]],
    device: torch.device | str = "cpu",
    max_length: int = 256,
) -> list[torch.Tensor]:
    """Embed each class's prompts with `model.encode_text`.

    Returns:
        One (P_k, D) tensor of L2-normalised prompt embeddings per class, in `prompts` order.
    """
    out = []
    for name, texts in prompts.items():
        if not texts:
            raise ValueError(f"class {name!r} has no prompts")
        tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        emb = model.encode_text(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
        out.append(F.normalize(emb.float(), dim=-1))
    return out


def zero_shot_scores(
    image_emb: torch.Tensor, prompt_emb: list[torch.Tensor], aggregation: Aggregation = "embedding"
) -> torch.Tensor:
    """Class scores (N, K) for normalised image embeddings (N, D).

    Args:
        image_emb: L2-normalised image embeddings (N, D).
        prompt_emb: per class, L2-normalised prompt embeddings (P_k, D).
        aggregation: ``embedding`` — cosine to the renormalised mean prompt embedding (default);
            ``logits`` — mean cosine over prompts; ``max`` — best prompt's cosine.
    """
    image_emb = image_emb.float()
    if aggregation == "embedding":
        classes = torch.stack([F.normalize(p.mean(0), dim=-1) for p in prompt_emb])  # (K, D)
        return image_emb @ classes.T
    if aggregation == "logits":
        return torch.stack([(image_emb @ p.T).mean(1) for p in prompt_emb], dim=1)
    if aggregation == "max":
        return torch.stack([(image_emb @ p.T).amax(1) for p in prompt_emb], dim=1)
    raise ValueError(f"aggregation must be 'embedding', 'logits' or 'max', got {aggregation!r}")


def pessimistic_predictions(scores: torch.Tensor, y_true: np.ndarray, tolerance: float = TIE_TOLERANCE) -> np.ndarray:
    """Predicted class per row under the module's tie rule (ties never favour the truth).

    Args:
        scores: (N, K) class scores, K ≥ 2.
        y_true: (N,) true class indices.
        tolerance: a truth must beat every other class by more than this to count.

    Returns:
        (N,) int64: the truth where it strictly beats every other class, else the best other class
        (lowest index among equals) — which is also the overall argmax whenever the truth is not on top.
    """
    if scores.ndim != 2 or scores.shape[1] < 2 or len(scores) != len(y_true):
        raise ValueError(f"need (N, K ≥ 2) scores and N true classes, got scores {tuple(scores.shape)} and {len(y_true)} labels")
    truth = torch.as_tensor(np.asarray(y_true), dtype=torch.long, device=scores.device)  # (N,)
    is_truth = torch.nn.functional.one_hot(truth, scores.shape[1]).bool()  # (N, K)
    others = scores.float().masked_fill(is_truth, float("-inf"))
    best_other = others.argmax(1)  # first maximum among the other classes
    wins = scores.float().gather(1, truth[:, None])[:, 0] > others.amax(1) + tolerance
    return torch.where(wins, truth, best_other).cpu().numpy().astype(np.int64)


def zero_shot_classify(
    image_emb: torch.Tensor,
    labels: np.ndarray,
    prompt_emb: list[torch.Tensor],
    classes: list[str],
    aggregation: Aggregation = "embedding",
) -> dict[str, Any]:
    """Multi-class zero-shot on the single-label rows of a labelled set (ties never favour the truth).

    Args:
        image_emb: normalised image embeddings (N, D).
        labels: (N, K) labels, columns in `classes` order (1 / 0 / NaN), after the run's label
            policy (`medalign.data.labels`); rows kept by `single_label_rows`.
        prompt_emb: per-class prompt embeddings from `encode_prompts`, same order.
        classes: class names.
    """
    mask = single_label_rows(labels)
    if not mask.any():
        raise ValueError("no row is positive for exactly one of the classes; zero-shot needs single-label rows")
    y_true = np.nan_to_num(labels[mask]).argmax(1)
    scores = zero_shot_scores(image_emb[torch.from_numpy(mask).to(image_emb.device)], prompt_emb, aggregation)
    return classification_metrics(y_true, pessimistic_predictions(scores, y_true), classes)


def binary_zero_shot(
    image_emb: torch.Tensor,
    labels: np.ndarray,
    positive_emb: torch.Tensor,
    negative_emb: torch.Tensor,
    aggregation: Aggregation = "embedding",
    names: tuple[str, str] = ("negative", "positive"),
) -> dict[str, Any]:
    """Binary zero-shot (e.g. RSNA pneumonia): a positive and a negative prompt set compete.

    Args:
        image_emb: normalised image embeddings (N, D).
        labels: (N,) 1 / 0 / NaN; NaN rows are left out.
        positive_emb: L2-normalised positive prompt embeddings (P, D).
        negative_emb: L2-normalised negative prompt embeddings (Q, D).
        aggregation: as in `zero_shot_scores`.
        names: display names of class 0 and class 1.

    Returns:
        `classification_metrics` over (negative, positive) plus ``auc`` of the score margin
        s_pos − s_neg (NaN when only one class is present).
    """
    labels = np.asarray(labels, dtype=np.float32).reshape(-1)
    known = ~np.isnan(labels)
    if not known.any():
        raise ValueError("binary zero-shot: every label is unknown (NaN)")
    y_true = labels[known].astype(np.int64)
    scores = zero_shot_scores(image_emb[torch.from_numpy(known)], [negative_emb, positive_emb], aggregation)  # (n, 2)
    result = classification_metrics(y_true, pessimistic_predictions(scores, y_true), list(names))
    margin = (scores[:, 1] - scores[:, 0]).cpu().numpy()
    result["auc"] = binary_auc(y_true, margin)
    return result


def class_prompt_embeddings(prompt_emb: np.ndarray, counts: list[int]) -> list[torch.Tensor]:
    """Split one stacked (sum P_k, D) prompt-embedding array into per-class tensors."""
    bounds = np.cumsum([0, *counts])
    return [torch.from_numpy(prompt_emb[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
