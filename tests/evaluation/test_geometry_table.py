"""The geometry table marks which way each metric is better (the two uniformities point opposite ways)."""

import torch
import torch.nn.functional as F

from medalign.evaluation.geometry import geometry_metrics, geometry_table
from medalign.metrics.geometry import alignment, uniformity, wang_isola_uniformity


def _rows(table: str) -> dict[str, str]:
    return {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines()[2:] if line.startswith("| ")}


def test_geometry_table_marks_the_better_direction():
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(40, 8, generator=g), dim=1)
    t = F.normalize(v + 0.3 * torch.randn(40, 8, generator=g), dim=1)
    rows = _rows(geometry_table(geometry_metrics(v, t)))
    assert {"alignment ↑", "uniformity ↑", "uniformity_image ↓", "uniformity_text ↓", "modality_gap"} <= set(rows)
    # better-aligned pairs score higher alignment; more spread embeddings score higher eCLIP and lower Wang–Isola uniformity
    noisier = F.normalize(v + 2.0 * torch.randn(40, 8, generator=g), dim=1)
    assert alignment(v, t) > alignment(v, noisier)
    clustered = F.normalize(v + 3.0, dim=1)
    assert uniformity(v, t) > uniformity(clustered, F.normalize(t + 3.0, dim=1))
    assert wang_isola_uniformity(v) < wang_isola_uniformity(clustered)
