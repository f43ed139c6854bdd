"""Data: manifest schema, dataset and batch contract, transforms.

The names below load on first use (PEP 562), so ``medalign.data.manifest`` can be imported without
torch (``medalign prepare`` uses it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medalign.data.dataset import Collator, ImageTextDataset, clean_report
    from medalign.data.labels import LabelPolicy, apply_label_policy, single_label_rows
    from medalign.data.manifest import Manifest, ManifestError, read_manifest
    from medalign.data.transforms import PairTransform, load_heatmap, load_image

_HOME = {
    "Collator": "dataset",
    "ImageTextDataset": "dataset",
    "clean_report": "dataset",
    "LabelPolicy": "labels",
    "apply_label_policy": "labels",
    "single_label_rows": "labels",
    "Manifest": "manifest",
    "ManifestError": "manifest",
    "read_manifest": "manifest",
    "PairTransform": "transforms",
    "load_heatmap": "transforms",
    "load_image": "transforms",
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
