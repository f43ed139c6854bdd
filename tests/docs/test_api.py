"""`medalign.__all__` holds the canonical entry points, each importable, and docs/api.md lists every name."""

from __future__ import annotations

from pathlib import Path

import medalign

CANONICAL = ("retrieval_metrics", "zero_shot_classify", "load_checkpoint_encoder", "LabelPolicy", "ModelSpec")


def test_canonical_entry_points_are_exported_from_their_homes():
    from medalign.data.labels import LabelPolicy
    from medalign.evaluation.encoders import load_checkpoint_encoder
    from medalign.evaluation.tasks.zero_shot import zero_shot_classify
    from medalign.metrics.retrieval import retrieval_metrics
    from medalign.models.spec import ModelSpec

    homes = dict(zip(CANONICAL, (retrieval_metrics, zero_shot_classify, load_checkpoint_encoder, LabelPolicy, ModelSpec)))
    for name, obj in homes.items():
        assert name in medalign.__all__ and getattr(medalign, name) is obj


def test_api_doc_lists_every_exported_name():
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    assert [n for n in medalign.__all__ if f"| `{n}` |" not in text] == []
