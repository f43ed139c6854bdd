"""`ImageTextDataset` and its collator: manifest rows → the batch dict every consumer uses.

Batch contract (STYLE §11):
    image (B, C, S, S) float, input_ids (B, L) long, attention_mask (B, L) long,
    heatmap (B, 1, S, S) float (zeros where absent), has_heatmap (B,) bool,
    labels (B, K) float (NaN = unknown), index (B,) long (manifest row), text list[str];
    with a second view (SLIP, ``data.views: 2``) also image_view2 (B, C, S, S); under
    ``on_error: skip``, when a row was replaced, bad_rows list[BadRow] (taken off by `SkippedRows`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from medalign.data.labels import BlankPolicy, UncertainPolicy
from medalign.data.manifest import Manifest
from medalign.data.heatmaps import check_heatmap
from medalign.data.skips import BAD_ROWS_KEY, BadRow, TooManyBadRows
from medalign.data.text import clean_report  # noqa: F401 - re-exported
from medalign.data.transforms import PairTransform, decode_image, load_heatmap

log = logging.getLogger(__name__)



class ImageTextDataset(Dataset):
    """Image–report pairs of one manifest split.

    Keys are a row position, or ``(epoch, position)`` from `EpochSampler`: the random crop is
    then seeded by (seed, epoch, position), so augmentation does not depend on worker count,
    rank or resumption.

    Args:
        manifest: the rows to serve.
        transform: joint image/heatmap transform.
        seed: base seed of the per-sample augmentation.
        uncertain: policy for -1 labels.
        blank: policy for empty ("not mentioned") labels.
        on_error: ``raise`` on an unreadable image or bad heatmap, or ``skip`` it: the row is
            replaced by the next readable row that is not already in the same batch (a duplicate
            pair would be a false negative), and reported in the batch's ``bad_rows`` (`BadRow`
            list) for the main process's `SkipLedger` to count.
        max_skip_share: a worker stops once it knows more than this share of the split to be
            unreadable (the main process's ledger applies the same share per epoch).
        bit_depth: significant bits of 16-bit images without an ``sBIT`` chunk (`load_image`).
        view_transform: if given, each sample also carries ``image_view2``: the same image under
            this transform with a generator seeded by (seed, epoch, row, 1) (SLIP's second view).
        fast_decode: decode JPEGs at the largest 1/2^k reduction still ≥ the transforms' image
            size (`medalign.data.decode`); same crops, pixels within the tolerance in
            docs/data_loading.md. False: full-size decode.
    """

    def __init__(
        self,
        manifest: Manifest,
        transform: PairTransform,
        seed: int = 0,
        uncertain: UncertainPolicy = "zeros",
        on_error: Literal["raise", "skip"] = "raise",
        max_skip_share: float = 0.01,
        blank: BlankPolicy = "zeros",
        bit_depth: int | None = None,
        view_transform: PairTransform | None = None,
        fast_decode: bool = True,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.manifest = manifest
        self.transform = transform
        self.view_transform = view_transform
        self.seed = seed
        self.on_error = on_error
        self.max_skip_share = max_skip_share
        self.bit_depth = bit_depth
        self.bad: dict[int, BadRow] = {}  # position → why it failed, known to this worker
        sizes = [t.image_size for t in (transform, view_transform) if t is not None]
        self.min_size = max(sizes) if fast_decode else None  # decode JPEGs down to this short side
        frame = manifest.frame
        self.rows = frame.index.to_numpy()
        self.images = [str(p) for p in manifest.image_paths()]
        self.heatmaps = [str(manifest.root / h) if h else "" for h in frame["heatmap"]]
        self.texts = [clean_report(t) for t in frame["text"]]
        self.labels = torch.from_numpy(manifest.labels(uncertain, blank))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[int | tuple[int, int]]) -> list[dict[str, Any]]:
        """Load a batch's samples; under ``skip`` replace unreadable rows by unused readable ones.

        A replacement is the next readable position (cyclically) that is neither requested by
        this batch nor already used as a replacement in it, so no row appears twice in a batch.
        The reports of the rows it stands in for ride along in the sample's ``bad_rows``.
        """
        keys = [k if isinstance(k, tuple) else (0, k) for k in keys]
        taken = {position for _, position in keys}
        samples = []
        for epoch, position in keys:
            reports: list[BadRow] = []
            current = position
            for _ in range(len(self)):
                if current not in self.bad:
                    try:
                        sample = self._load(epoch, current)
                        break
                    except (OSError, ValueError) as err:
                        if self.on_error == "raise":
                            raise
                        self._mark_bad(current, err)
                reports.append(self.bad[current])
                current = self._next_free(current, taken)
            else:
                raise RuntimeError(f"no readable row left for a batch of {len(keys)} in {self.manifest.path}")
            taken.add(current)
            if reports:
                sample[BAD_ROWS_KEY] = reports
            samples.append(sample)
        return samples

    def _mark_bad(self, position: int, err: Exception) -> None:
        self.bad[position] = BadRow(int(self.rows[position]), self.images[position], str(err))
        limit = self.max_skip_share * len(self)
        if len(self.bad) > limit:
            raise TooManyBadRows(
                f"{len(self.bad)} unreadable rows in {self.manifest.path} (more than data.max_skip_share = "
                f"{self.max_skip_share:g} of {len(self)} rows), e.g. {err}. "
                "Fix or remove them, or raise data.max_skip_share"
            ) from err

    def _next_free(self, position: int, taken: set[int]) -> int:
        """The next position after `position` (cyclic) not in this batch and not known bad."""
        for step in range(1, len(self) + 1):
            candidate = (position + step) % len(self)
            if candidate not in taken and candidate not in self.bad:
                return candidate
        raise RuntimeError(f"no readable row left to replace row {self.rows[position]} in {self.manifest.path}")

    def _load(self, epoch: int, position: int) -> dict[str, Any]:
        row = int(self.rows[position])
        try:
            image, source_size = self._read_image(position)
        except Exception as err:  # PIL raises many types for corrupt files
            raise OSError(f"{self.manifest.path} row {row}: cannot read image {self.images[position]}: {err}") from err
        heatmap = self._heatmap(position, row, source_size)
        generator = torch.Generator().manual_seed(hash((self.seed, epoch, row)) & 0x7FFF_FFFF_FFFF_FFFF)
        raw = image
        image, heatmap = self.transform(raw, heatmap, generator, source_size)
        has_heatmap = heatmap is not None
        if heatmap is None:
            heatmap = torch.zeros(1, *image.shape[-2:])
        sample = {
            "image": image,
            "heatmap": heatmap,
            "has_heatmap": has_heatmap,
            "text": self.texts[position],
            "labels": self.labels[position],
            "index": row,
        }
        if self.view_transform is not None:
            view_generator = torch.Generator().manual_seed(hash((self.seed, epoch, row, 1)) & 0x7FFF_FFFF_FFFF_FFFF)
            sample["image_view2"] = self.view_transform(raw, None, view_generator, source_size)[0]
        return sample

    def _read_image(self, position: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """One row's image, (1, h, w) in [0, 1] (a JPEG possibly DCT-reduced), and the file's full (H, W).

        Shards override where the bytes come from.
        """
        return decode_image(self.images[position], self.bit_depth, self.min_size)

    def _read_heatmap(self, position: int) -> torch.Tensor:
        """The raw heatmap of one row that has one, (1, H, W)."""
        return load_heatmap(self.heatmaps[position])

    def _heatmap(self, position: int, row: int, image_shape: tuple[int, int]) -> torch.Tensor | None:
        path = self.heatmaps[position]
        if not path:
            return None
        where = f"{self.manifest.path} row {row}: heatmap {path}"
        try:
            heatmap = self._read_heatmap(position)
        except Exception as err:
            raise OSError(f"{where}: cannot read: {err}") from err
        return check_heatmap(heatmap, image_shape, where)  # the heatmap invariant: peak 1 (medalign.data.heatmaps)


class Collator:
    """Stacks samples and tokenises their reports in one call.

    Args:
        tokenizer: a Hugging Face tokenizer.
        max_length: reports are truncated to this many tokens (256 in the eCLIP paper).
    """

    def __init__(self, tokenizer: Any, max_length: int = 256) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [s["text"] for s in samples]
        tokens = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        batch = {
            "image": torch.stack([s["image"] for s in samples]),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "heatmap": torch.stack([s["heatmap"] for s in samples]),
            "has_heatmap": torch.tensor([s["has_heatmap"] for s in samples], dtype=torch.bool),
            "labels": torch.stack([s["labels"] for s in samples]),
            "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
            "text": texts,
        }
        if "image_view2" in samples[0]:
            batch["image_view2"] = torch.stack([s["image_view2"] for s in samples])
        reports = [r for s in samples for r in s.get(BAD_ROWS_KEY, ())]
        if reports:
            batch[BAD_ROWS_KEY] = reports
        return batch
