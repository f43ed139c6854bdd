"""`DataContext`: what the model and its callbacks need to know about the data, in one typed object.

The data module builds it (`MedAlignDataModule.context`); the module takes it in `setup` (after
the data module's, so the validation rows are known), and without a data module that offers one
uses what was attached with `ContrastiveModule.attach_data` (the CLI attaches one before `fit` and
`validate`; a notebook can too). The model and the geometry callback read only this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DataContext:
    """The data facts the training side uses.

    Args:
        tokenizer: the loaded tokenizer (validation zero-shot prompts, MLM, open_clip checks).
        max_length: report tokens kept.
        image_size: side length fed to the image tower.
        mean: image normalisation mean.
        std: image normalisation std.
        label_columns: label columns of the batches' ``labels``.
        prompts: zero-shot prompts per class for the validation macro-F1 (empty = none).
        val_rows: manifest rows of the validation split, in loader order (geometry subsets).
    """

    tokenizer: Any
    max_length: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    label_columns: list[str] = field(default_factory=list)
    prompts: dict[str, list[str]] = field(default_factory=dict)
    val_rows: np.ndarray | None = None


def context_of(trainer: Any) -> DataContext | None:
    """The context of the trainer's data module, if it offers one (plain `Trainer.fit` use)."""
    return getattr(getattr(trainer, "datamodule", None), "context", None)
