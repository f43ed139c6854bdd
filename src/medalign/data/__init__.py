"""Data: manifest schema, dataset and batch contract, transforms, samplers, datamodule, synthetic set."""

from medalign.data.dataset import Collator, ImageTextDataset, clean_report
from medalign.data.labels import LabelPolicy, apply_label_policy, single_label_rows
from medalign.data.manifest import Manifest, ManifestError, read_manifest
from medalign.data.transforms import PairTransform, load_heatmap, load_image

__all__ = [
    "Collator",
    "ImageTextDataset",
    "LabelPolicy",
    "Manifest",
    "ManifestError",
    "PairTransform",
    "apply_label_policy",
    "clean_report",
    "load_heatmap",
    "load_image",
    "read_manifest",
    "single_label_rows",
]
