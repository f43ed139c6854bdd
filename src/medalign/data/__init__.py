"""Data: manifest schema, dataset and batch contract, transforms, samplers, datamodule, synthetic set."""

from medalign.data.dataset import Collator, ImageTextDataset, clean_report
from medalign.data.manifest import Manifest, ManifestError, read_manifest
from medalign.data.transforms import PairTransform, load_heatmap, load_image

__all__ = [
    "Collator",
    "ImageTextDataset",
    "Manifest",
    "ManifestError",
    "PairTransform",
    "clean_report",
    "load_heatmap",
    "load_image",
    "read_manifest",
]
