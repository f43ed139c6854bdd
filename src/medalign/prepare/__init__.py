"""Dataset adapters: each reads one dataset in its published layout and yields the standard manifest.

``ADAPTERS`` maps the name used by ``medalign prepare <name>`` to a module (or object) with
``NAME``, ``add_arguments(parser)`` and ``build(root, args) -> Prepared``; `write_manifest`
writes the result. See docs/datasets.md for layouts and options.
"""

from __future__ import annotations

from medalign.prepare import brset, chexpert, egd_cxr, ham10000, mimic, nih, openi, reflacx, rsna
from medalign.prepare.base import AdapterError, Prepared
from medalign.prepare.subsets import COMPETITION_5, SubsetAdapter, single_label_subset
from medalign.prepare.writer import summary, write_manifest

ADAPTERS = {
    "mimic-cxr": mimic,
    "mimic-5x200": SubsetAdapter("mimic-5x200", mimic, COMPETITION_5, 200, "test"),
    "egd-cxr": egd_cxr,
    "reflacx": reflacx,
    "chexpert": chexpert,
    "chexpert-5x200": SubsetAdapter("chexpert-5x200", chexpert, COMPETITION_5, 200, "train"),
    "rsna-pneumonia": rsna,
    "nih-cxr14": nih,
    "nih-14x100": SubsetAdapter("nih-14x100", nih, nih.FINDINGS, 100, "test"),
    "openi": openi,
    "ham10000": ham10000,
    "brset": brset,
}

__all__ = ["ADAPTERS", "AdapterError", "Prepared", "single_label_subset", "summary", "write_manifest"]
