"""Nearest training reports per image, and the off-by-default local-LLM hook."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medalign.evaluation.tasks.report_retrieval import generate_reports, nearest_reports, write_jsonl


def test_nearest_reports_match_brute_force_over_distinct_reports(tmp_path):
    rng = np.random.default_rng(0)
    texts = [f"report {i % 30}" for i in range(60)]  # every string twice
    base = rng.normal(size=(30, 16)).astype(np.float32)
    corpus = base[[i % 30 for i in range(60)]]
    image = rng.normal(size=(5, 16)).astype(np.float32)
    records = nearest_reports(image, corpus, texts, k=4, query_ids=np.arange(100, 105))
    for q, record in enumerate(records):
        order = np.argsort(-(base @ image[q]))[:4]
        assert record["reports"] == [f"report {j}" for j in order]  # no report repeated
        np.testing.assert_allclose(record["scores"], (base @ image[q])[order], atol=1e-5)
    assert records[0]["id"] == 100
    path = write_jsonl(records, tmp_path / "r.jsonl")
    assert [json.loads(line) for line in path.read_text().splitlines()] == records


def test_generation_hook_never_downloads(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local transformers model directory"):
        generate_reports([{"id": 0, "reports": ["x"], "scores": [1.0]}], tmp_path / "no_model")
