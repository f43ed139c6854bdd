"""Fakeddit multimodal fake-news posts (Nakamura et al., LREC 2020; github.com/entitize/Fakeddit, v2.0).

Published layout::

    multimodal_train.tsv, multimodal_validate.tsv, multimodal_test_public.tsv   tab-separated:
        author, clean_title, created_utc, domain, hasImage, id, image_url, linked_submission_id,
        num_comments, score, subreddit, title, upvote_ratio, 2_way_label, 3_way_label, 6_way_label
    public_image_set/<id>.jpg   (the released image archive; images/ also accepted)

As in the cone-effect paper (Restrepo et al. 2026), the text is the post title (``clean_title``)
and the task is the binary ``2_way_label`` as distributed. Rows without an image
(``hasImage`` false or no ``image_url``) are dropped. The official splits are kept; the full set
has ~680k posts, so ``--fraction`` keeps a label-stratified seeded share of each split (the
paper's subset size is not stated).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, source_of, strict_labels
from medalign.prepare.options import adapter, arguments_adder

NAME = "fakeddit"
VERSION = "Fakeddit v2.0 (multimodal_{train,validate,test_public}.tsv, public_image_set/<id>.jpg)"
LAYOUT = Layout(NAME, VERSION)
FILES = {"train": "multimodal_train.tsv", "val": "multimodal_validate.tsv", "test": "multimodal_test_public.tsv"}
LABEL = "2_way_label"
COLUMNS = ["id", "clean_title", "hasImage", "image_url", LABEL]


def _stratified(table: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Row mask keeping ceil(fraction · n) rows of each label, drawn with `seed`."""
    keep = np.zeros(len(table), dtype=bool)
    rng = np.random.default_rng(seed)
    for value in sorted(table[LABEL].dropna().unique()):
        rows = np.flatnonzero((table[LABEL] == value).to_numpy())
        keep[rng.choice(rows, int(np.ceil(fraction * len(rows))), replace=False)] = True
    return keep


@adapter
def build(root: Path, *, fraction: float = 1.0, seed: int = 0) -> Prepared:
    """Read the three multimodal TSVs; one row per post with an image.

    Args:
        root: the Fakeddit folder (TSVs and the image folder).
        fraction: share of each split kept, stratified by label (1.0: all).
        seed: seed of that subsample.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"{NAME}: fraction must be in (0, 1], got {fraction}")
    parts = [LAYOUT.read(root, f, required=COLUMNS, sep="\t", dtype={"id": str}).assign(split=s) for s, f in FILES.items()]
    table = pd.concat(parts, ignore_index=True)
    rows_in = len(table)
    dropped = Drops()
    has_image = table["hasImage"].astype(str).str.lower().isin(["true", "1"]) & table["image_url"].notna()
    table = drop(table, ~has_image.to_numpy(), "no image (hasImage false or no image_url)", dropped, value="id")
    table = drop(table, table["clean_title"].fillna("").astype(str).str.strip().eq("").to_numpy(), "empty clean_title",
                 dropped, value="id")
    label = strict_labels(table, [LABEL], NAME, allowed=(0.0, 1.0))[LABEL]
    table = table.assign(**{LABEL: label})
    if fraction < 1:
        keep = np.zeros(len(table), dtype=bool)
        for s in FILES:
            rows = np.flatnonzero((table["split"] == s).to_numpy())
            keep[rows[_stratified(table.iloc[rows], fraction, seed)]] = True
        table = drop(table, ~keep, f"not in the {fraction:g} stratified subsample", dropped)
    folder = root / "public_image_set" if (root / "public_image_set").is_dir() or not (root / "images").is_dir() else root / "images"
    frame = pd.DataFrame({
        "image": [str(folder / f"{i}.jpg") for i in table["id"]], "text": table["clean_title"].fillna("").astype(str).to_numpy(),
        "split": table["split"].to_numpy(), "id": table["id"].to_numpy(), "study_id": table["id"].to_numpy(),
        "subject_id": table["id"].to_numpy(), LABEL: table[LABEL].to_numpy(), **source_of(table),
    })  # fmt: skip
    return Prepared(NAME, frame, [LABEL], rows_in, dropped)


add_arguments = arguments_adder(build)
