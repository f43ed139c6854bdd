"""`ImageTextDataset` and its collator: manifest rows → the batch dict every consumer uses.

Batch contract (STYLE §11):
    image (B, C, S, S) float, input_ids (B, L) long, attention_mask (B, L) long,
    heatmap (B, 1, S, S) float (zeros where absent), has_heatmap (B,) bool,
    labels (B, K) float (NaN = unknown), index (B,) long (manifest row), text list[str];
    with a second view (SLIP, ``data.views: 2``) also image_view2 (B, C, S, S).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from medalign.data.labels import BlankPolicy, UncertainPolicy
from medalign.data.manifest import Manifest
from medalign.data.heatmaps import peak_normalise
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
        on_error: ``raise`` on an unreadable image or bad heatmap, or ``skip`` it (logged,
            counted, replaced by the next readable row) up to `max_skips` per worker.
        max_skips: skips tolerated per worker process before raising.
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
        max_skips: int = 100,
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
        self.max_skips = max_skips
        self.bit_depth = bit_depth
        self.skipped = 0
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
        epoch, position = key if isinstance(key, tuple) else (0, key)
        for attempt in range(len(self)):
            current = (position + attempt) % len(self)
            try:
                return self._load(epoch, current)
            except (OSError, ValueError) as err:
                if self.on_error == "raise":
                    raise
                self.skipped += 1
                log.warning("skipping manifest row %d (%s); %d skipped in this worker", self.rows[current], err, self.skipped)
                if self.skipped > self.max_skips:
                    raise RuntimeError(
                        f"more than {self.max_skips} unreadable rows in {self.manifest.path}; "
                        "fix the data or raise data.max_skips"
                    ) from err
        raise RuntimeError(f"no readable row in {self.manifest.path}")

    def _load(self, epoch: int, position: int) -> dict[str, Any]:
        row = int(self.rows[position])
        try:
            image, source_size = decode_image(self.images[position], self.bit_depth, self.min_size)
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

    def _heatmap(self, position: int, row: int, image_shape: tuple[int, int]) -> torch.Tensor | None:
        path = self.heatmaps[position]
        if not path:
            return None
        where = f"{self.manifest.path} row {row}: heatmap {path}"
        try:
            heatmap = load_heatmap(path)
        except Exception as err:
            raise OSError(f"{where}: cannot read: {err}") from err
        if heatmap.shape[-2:] != image_shape:
            raise ValueError(f"{where} has shape {tuple(heatmap.shape[-2:])} but its image is {tuple(image_shape)}")
        if not torch.isfinite(heatmap).all():
            raise ValueError(f"{where} contains NaN or Inf")
        if float(heatmap.max()) <= 0:
            raise ValueError(f"{where} is all zeros")
        return peak_normalise(heatmap)  # the heatmap invariant: peak 1 (medalign.data.heatmaps)


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
        return batch
