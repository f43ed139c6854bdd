"""Data: manifest schema, dataset and batch contract, transforms.

The names below load on first use (PEP 562), so ``medalign.data.manifest`` can be imported without
torch (``medalign prepare`` uses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medalign._lazy import lazy_exports

if TYPE_CHECKING:
    from medalign.data.dataset import Collator, ImageTextDataset, clean_report
    from medalign.data.labels import LabelPolicy, apply_label_policy, single_label_rows
    from medalign.data.manifest import Manifest, ManifestError, read_manifest
    from medalign.data.transforms import PairTransform, load_heatmap, load_image

_HOME = {
    "Collator": "medalign.data.dataset",
    "ImageTextDataset": "medalign.data.dataset",
    "clean_report": "medalign.data.dataset",
    "LabelPolicy": "medalign.data.labels",
    "apply_label_policy": "medalign.data.labels",
    "single_label_rows": "medalign.data.labels",
    "Manifest": "medalign.data.manifest",
    "ManifestError": "medalign.data.manifest",
    "read_manifest": "medalign.data.manifest",
    "PairTransform": "medalign.data.transforms",
    "load_heatmap": "medalign.data.transforms",
    "load_image": "medalign.data.transforms",
}
__all__ = sorted(_HOME)


__getattr__, __dir__ = lazy_exports(__name__, _HOME)
