"""Dataset adapters: each reads one dataset in its published layout and yields the standard manifest.

`REGISTRY` maps the name used by ``medalign prepare <name>`` to where its adapter lives (a module
path, plus a `SubsetSpec` for the single-label evaluation subsets); nothing is imported until an
adapter is used, so ``medalign prepare --help`` stays fast. `load_adapter` imports one: a module
(or object) with ``NAME``, ``add_arguments(parser)`` and ``build(root, args) -> Prepared``;
`write_manifest` writes the result. ``ADAPTERS`` is the same mapping with the adapters loaded on
access. Layouts and options: docs/datasets.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medalign._lazy import lazy_exports

if TYPE_CHECKING:  # re-exported lazily below
    from medalign.prepare.base import AdapterError, Prepared
    from medalign.prepare.subsets import single_label_subset
    from medalign.prepare.writer import summary, write_manifest


@dataclass(frozen=True)
class SubsetSpec:
    """A single-label subset drawn from a base adapter's output (`subsets.SubsetAdapter`).

    Attributes:
        classes: ``"module:ATTRIBUTE"`` naming the list of class columns.
        per_class: default images per class.
        from_split: default split drawn from.
        shortfall: ``error`` or ``take_all`` when a class has fewer eligible rows than `per_class`.
    """

    classes: str
    per_class: int
    from_split: str
    shortfall: str = "error"  # a class with too few eligible rows: "error" or "take_all" (warn, record)


@dataclass(frozen=True)
class AdapterSpec:
    """Where one ``medalign prepare`` dataset's adapter lives.

    Attributes:
        module: import path of the adapter module (of the base adapter, for a subset).
        summary: one line for ``medalign prepare --help``.
        subset: set for a single-label subset of the base adapter's output.
    """

    module: str
    summary: str
    subset: SubsetSpec | None = None


_P = "medalign.prepare."
_COMPETITION_5 = "medalign.prepare.subsets:COMPETITION_5"
REGISTRY: dict[str, AdapterSpec] = {
    "mimic-cxr": AdapterSpec(_P + "mimic", "MIMIC-CXR-JPG images, splits and CheXpert labels + MIMIC-CXR reports"),
    "mimic-5x200": AdapterSpec(_P + "mimic", "MIMIC 5x200: 200 single-label test images per competition class",
                               SubsetSpec(_COMPETITION_5, 200, "test", "take_all")),  # fmt: skip
    "egd-cxr": AdapterSpec(_P + "egd_cxr", "EGD-CXR eye gaze → heatmaps joined onto a MIMIC manifest"),
    "reflacx": AdapterSpec(_P + "reflacx", "REFLACX eye gaze → heatmaps joined onto a MIMIC manifest"),
    "chexpert": AdapterSpec(_P + "chexpert", "CheXpert v1.0 / v1.0-small images and labels"),
    "chexpert-5x200": AdapterSpec(_P + "chexpert", "CheXpert 5x200: 200 single-label train images per competition class",
                                  SubsetSpec(_COMPETITION_5, 200, "train")),  # fmt: skip
    "rsna-pneumonia": AdapterSpec(_P + "rsna", "RSNA Pneumonia Detection Challenge (stage 2)"),
    "nih-cxr14": AdapterSpec(_P + "nih", "NIH ChestX-ray14 images, official split and 14 findings"),
    "nih-14x100": AdapterSpec(_P + "nih", "NIH 14x100: 100 single-label test images per finding",
                              SubsetSpec("medalign.prepare.nih:FINDINGS", 100, "test")),  # fmt: skip
    "openi": AdapterSpec(_P + "openi", "Open-I / Indiana University chest X-rays with reports"),
    "ham10000": AdapterSpec(_P + "ham10000", "HAM10000 dermatoscopic images, 7 diagnoses"),
    "brset": AdapterSpec(_P + "brset", "BRSET fundus photos and their labels"),
    "mbrset": AdapterSpec(_P + "mbrset", "mBRSET handheld-camera fundus photos, binary DR from final_icdr"),
    "recipes5k": AdapterSpec(_P + "recipes5k", "Recipes5k food photos + ingredient lists, 101 food types"),
    "daquar": AdapterSpec(_P + "daquar", "DAQUAR indoor-scene questions, multi-label answers"),
    "coco-qa": AdapterSpec(_P + "cocoqa", "COCO-QA questions on MS-COCO images, multi-class answers"),
    "fakeddit": AdapterSpec(_P + "fakeddit", "Fakeddit multimodal posts, binary 2_way_label"),
}


def _attribute(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def load_adapter(name: str) -> Any:
    """Import and return the adapter registered as `name`.

    Raises:
        KeyError: `name` is not registered; the message lists the registered names.
    """
    if name not in REGISTRY:
        raise KeyError(f"no dataset adapter {name!r}; known: {', '.join(REGISTRY)}")
    spec = REGISTRY[name]
    module = importlib.import_module(spec.module)
    if spec.subset is None:
        return module
    from medalign.prepare.subsets import SubsetAdapter

    s = spec.subset
    return SubsetAdapter(name, module, _attribute(s.classes), s.per_class, s.from_split, s.shortfall)


class _Adapters(Mapping):
    """name → adapter, each imported on first access."""

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            self._loaded[name] = load_adapter(name)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


ADAPTERS: Mapping[str, Any] = _Adapters()

_LAZY = {
    "AdapterError": "medalign.prepare.base",
    "Prepared": "medalign.prepare.base",
    "single_label_subset": "medalign.prepare.subsets",
    "summary": "medalign.prepare.writer",
    "write_manifest": "medalign.prepare.writer",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)  # PEP 562: pandas/torch load only when these are used


__all__ = ["ADAPTERS", "REGISTRY", "AdapterError", "AdapterSpec", "Prepared", "SubsetSpec", "load_adapter",
           "single_label_subset", "summary", "write_manifest"]  # fmt: skip
