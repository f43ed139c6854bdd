"""Retrieval-based report generation: the k nearest training reports of each test image (eCLIP paper §5).

The paper prompts a frozen LLM with the 5 retrieved reports; offline we write the retrieved
reports (with cosine scores) to a JSONL file, and an optional hook feeds them to a local
Hugging Face text-generation model given by directory (off by default, never downloads).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from medalign.evaluation.tasks.retrieval import dedup_texts, knn_search

DEFAULT_PROMPT = (
    "You are a radiologist. Write the findings of a chest X-ray report for a new image whose most "
    "similar previous studies had these reports:\n{reports}\nReport:"
)


def nearest_reports(
    image: np.ndarray,
    corpus_text: np.ndarray,
    corpus_texts: Sequence[str],
    k: int = 5,
    query_ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """For each image, the k most similar distinct reports of a corpus (e.g. the train split).

    Args:
        image: L2-normalised query image embeddings (Q, D).
        corpus_text: L2-normalised report embeddings (M, D).
        corpus_texts: the M report strings; identical strings are merged first.
        k: reports per image.
        query_ids: an id per query (e.g. manifest rows); default 0..Q-1.

    Returns:
        One record per image: ``{"id", "reports": [str] * k, "scores": [float] * k}``, best first.
    """
    unique, _, first = dedup_texts(corpus_texts)
    scores, ids = knn_search(corpus_text[first], image, k)
    query_ids = list(range(len(image))) if query_ids is None else list(query_ids)
    return [
        {"id": _plain(q), "reports": [unique[j] for j in row_ids], "scores": [round(float(s), 6) for s in row_scores]}
        for q, row_ids, row_scores in zip(query_ids, ids, scores)
    ]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def write_jsonl(records: list[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
    return path


def generate_reports(
    records: list[dict[str, Any]],
    model_dir: str | Path,
    prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = 128,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """Add a ``generated`` report to each record with a local text-generation model.

    Args:
        records: output of `nearest_reports`.
        model_dir: a local transformers model directory (config, weights, tokenizer).
        prompt: template with a ``{reports}`` field (the retrieved reports, one per line).
        max_new_tokens: generation length.
        device: ``cpu`` / ``cuda``; default CUDA when available.

    Raises:
        FileNotFoundError: `model_dir` is not a directory with a ``config.json`` (nothing is downloaded).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"report generation model {model_dir} is not a local transformers model directory (no config.json); "
            "pass a downloaded model folder — hub ids are never fetched"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).to(device).eval()
    out = []
    for record in records:
        text = prompt.format(reports="\n".join(f"- {r}" for r in record["reports"]))
        tokens = tokenizer(text, return_tensors="pt").to(device)
        with torch.no_grad():
            generated = model.generate(**tokens, max_new_tokens=max_new_tokens, do_sample=False)
        new = generated[0, tokens["input_ids"].shape[1] :]
        out.append({**record, "generated": tokenizer.decode(new, skip_special_tokens=True).strip()})
    return out
