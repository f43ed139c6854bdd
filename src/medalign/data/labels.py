"""Label policies and the single-label rule: one home for how 1 / 0 / -1 / blank become labels.

A manifest's label cells hold 1 (positive), 0 (negative), -1 (uncertain) or nothing (blank). In
CheXpert and MIMIC-CXR (CheXpert labeler, Irvin et al. 2019) a blank cell means "not mentioned
in the report", not "unknown": the published 5x200 / 14x100 test sets (GLoRIA, Huang et al. 2021;
eCLIP, Kumar et al. 2024 §4.1) count a blank as not positive. Two policies turn raw cells into
the float labels every consumer sees (1 / 0, NaN = left out):

* ``uncertain``: ``zeros`` (-1 → 0), ``ones`` (-1 → 1) or ``ignore`` (-1 → NaN);
* ``blank``: ``zeros`` (blank → 0, the default) or ``ignore`` (blank → NaN).

`single_label_rows` is the one single-label rule (zero-shot selection, the 5x200 / 14x100
builders, multiclass probes, the gap sweep, geometry plots): exactly one positive and nothing
left out among the classes. The builders apply it under `SUBSET_POLICY` (uncertain rows out,
blanks not positive); other consumers under the run's policy (docs/datasets.md, "Labels:
uncertain and blank").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

UncertainPolicy = Literal["zeros", "ones", "ignore"]
BlankPolicy = Literal["zeros", "ignore"]
UNCERTAIN_POLICIES: tuple[str, ...] = get_args(UncertainPolicy)
BLANK_POLICIES: tuple[str, ...] = get_args(BlankPolicy)


def check_policies(uncertain: str, blank: str, prefix: str = "data.") -> None:
    """Raise `ValueError` naming the config key when a policy is not one of its choices."""
    if uncertain not in UNCERTAIN_POLICIES:
        raise ValueError(f"{prefix}uncertain must be one of {UNCERTAIN_POLICIES}, got {uncertain!r}")
    if blank not in BLANK_POLICIES:
        raise ValueError(f"{prefix}blank must be one of {BLANK_POLICIES}, got {blank!r}")


@dataclass(frozen=True)
class LabelPolicy:
    """How raw label cells become labels.

    Attributes:
        uncertain: what a -1 (uncertain) cell becomes: ``zeros``, ``ones`` or ``ignore`` (NaN).
        blank: what an empty (not mentioned) cell becomes: ``zeros`` or ``ignore`` (NaN).
    """

    uncertain: UncertainPolicy = "zeros"
    blank: BlankPolicy = "zeros"

    def __post_init__(self) -> None:
        check_policies(self.uncertain, self.blank)


# The 5x200 / 14x100 selection (docs/datasets.md, "Labels"): no uncertain value among the classes, blanks not positive.
SUBSET_POLICY = LabelPolicy(uncertain="ignore", blank="zeros")


def apply_label_policy(values: np.ndarray, uncertain: UncertainPolicy = "zeros", blank: BlankPolicy = "zeros") -> np.ndarray:
    """Raw cells (N, C) of 1 / 0 / -1 / NaN (blank) → float32 labels (N, C) of 1 / 0 / NaN.

    Args:
        values: raw label cells; NaN marks a blank cell.
        uncertain: policy for -1.
        blank: policy for blank (NaN) cells.
    """
    check_policies(uncertain, blank, prefix="")
    values = np.array(values, dtype=np.float32, copy=True)  # (N, C)
    blank_cells = np.isnan(values)
    values[values == -1] = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}[uncertain]
    values[blank_cells] = {"zeros": 0.0, "ignore": np.nan}[blank]
    return values


def single_label_rows(labels: np.ndarray) -> np.ndarray:
    """Boolean mask (N,) of rows positive for exactly one class and left out (NaN) for none.

    Args:
        labels: (N, C) labels after a policy (1 / 0 / NaN).
    """
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (N, C), got shape {labels.shape}")
    known = ~np.isnan(labels).any(axis=1)
    return known & ((labels == 1).sum(axis=1) == 1)


def single_label_eligible(values: np.ndarray) -> np.ndarray:
    """The 5x200 / 14x100 eligibility of raw cells (N, C): `single_label_rows` under `SUBSET_POLICY`.

    A row is eligible when exactly one class is 1, no class is -1, and the rest are 0 or blank.
    """
    return single_label_rows(apply_label_policy(values, SUBSET_POLICY.uncertain, SUBSET_POLICY.blank))
