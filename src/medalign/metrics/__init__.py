"""Metrics as pure functions: embedding geometry (`geometry`), retrieval ranks / R@K (`retrieval`),
classification AUC / F1 (`classification`) and clustering scores (`clustering`).

The geometry and retrieval metrics are re-exported here (``from medalign.metrics import alignment``);
`classification` and `clustering` (scipy / scikit-learn) are imported from their modules.
"""

from medalign.metrics.geometry import (
    alignment,
    gap_vector,
    geometry_summary,
    intra_modal_cosine,
    lambda_shift,
    mean_resultant_length,
    modality_gap,
    true_pair_cosine,
    uniformity,
    wang_isola_uniformity,
)
from medalign.metrics.retrieval import (
    dedup_texts,
    pessimistic_rank,
    rank_metrics,
    report_groups,
    report_keys,
    retrieval_metrics,
)

__all__ = [
    "alignment",
    "dedup_texts",
    "gap_vector",
    "geometry_summary",
    "intra_modal_cosine",
    "lambda_shift",
    "mean_resultant_length",
    "modality_gap",
    "pessimistic_rank",
    "rank_metrics",
    "report_groups",
    "report_keys",
    "retrieval_metrics",
    "true_pair_cosine",
    "uniformity",
    "wang_isola_uniformity",
]
