"""`GeometryCallback`: embedding-geometry metrics (and pictures) each validation epoch (docs/geometry.md).

Consumes what ``validation_step`` returns — ``{"image", "text", "labels", "index"}`` per batch —
keeps the rows of a fixed validation subset, gathers them from every DDP rank exactly once, and
logs `medalign.evaluation.geometry.geometry_metrics` under ``geometry/...``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from medalign.evaluation.geometry import geometry_metrics
from medalign.evaluation.plots.geometry import plot_geometry
from medalign.run_folder import RunFolder
from medalign.training.context import context_of

log = logging.getLogger(__name__)

KEYS = ("image", "text", "labels", "index")  # the validation_step output contract

__all__ = ["GeometryCallback", "select_subset"]


def select_subset(indices: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """A fixed subset of manifest rows: a seeded permutation of the sorted unique indices.

    Args:
        indices: (N,) manifest row indices (duplicates allowed).
        size: rows to keep; all of them when there are fewer.
        seed: permutation seed.

    Returns:
        (min(size, N_unique),) sorted int64 indices.
    """
    unique = np.unique(np.asarray(indices, dtype=np.int64))
    order = torch.randperm(len(unique), generator=torch.Generator().manual_seed(seed)).numpy()
    return np.sort(unique[order[:size]])


class GeometryCallback(L.Callback):
    """Logs alignment, uniformity, modality gap, R, cosines and clustering on validation embeddings.

    Args:
        subset_size: validation pairs measured (a fixed seeded subset; all when fewer).
        seed: seed of the subset choice, of k-means and of the picture sampling.
        plot_every_n_epochs: save ``<log_dir>/geometry/epoch_XXX.png`` every N epochs
            (0 = never).
        max_plot_lines: true-pair lines drawn in the PCA picture.

    Attributes:
        last: after each measured epoch, on global rank 0: ``index`` (N,) sorted manifest rows,
            ``image`` / ``text`` (N, D), ``labels`` (N, K) and the logged ``metrics``.
        seconds: wall time spent in this callback per measured epoch (rank 0), newest last.
    """

    def __init__(
        self, subset_size: int = 2000, seed: int = 0, plot_every_n_epochs: int = 0, max_plot_lines: int = 100
    ) -> None:
        if subset_size < 2:
            raise ValueError(f"GeometryCallback.subset_size must be ≥ 2, got {subset_size}")
        if plot_every_n_epochs < 0:
            raise ValueError(f"GeometryCallback.plot_every_n_epochs must be ≥ 0, got {plot_every_n_epochs}")
        self.subset_size = subset_size
        self.seed = seed
        self.plot_every_n_epochs = plot_every_n_epochs
        self.max_plot_lines = max_plot_lines
        self.subset: np.ndarray | None = None
        self.last: dict[str, Any] | None = None
        self.seconds: list[float] = []
        self._rows: list[torch.Tensor] = []
        self._member: torch.Tensor | None = None  # (max_index + 1,) bool lookup of the subset
        self._dims = (0, 0)  # (D, K) of the rows collected on this rank
        self._clock = 0.0

    # ----------------------------------------------------------------- collection
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._rows, self._clock = [], 0.0
        if self.subset is None:
            self._set_subset(_validation_indices(trainer))

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if trainer.sanity_checking or dataloader_idx != 0:
            return
        start = time.perf_counter()
        if not isinstance(outputs, dict) or not all(k in outputs for k in KEYS):
            raise ValueError(f"GeometryCallback needs validation_step to return a dict with keys {KEYS}, got {type(outputs).__name__}")
        index = outputs["index"].detach().cpu().long()
        keep = self._in_subset(index)  # (B,) bool
        if keep.any():
            image, text, labels = (outputs[k].detach().to("cpu", torch.float64) for k in ("image", "text", "labels"))
            labels = labels.reshape(len(index), -1)  # (B, K), K may be 0
            # One float64 CPU row per pair: [image (D) | text (D) | labels (K) | index], gathered in one call.
            packed = torch.cat([image, text, labels, index.double()[:, None]], dim=1)
            self._rows.append(packed[keep])
            self._dims = (image.shape[1], labels.shape[1])
        self._clock += time.perf_counter() - start

    def _set_subset(self, indices: np.ndarray | None) -> None:
        if indices is None:
            return  # unknown before the first epoch: that epoch keeps every row, then fixes the subset
        self.subset = select_subset(indices, self.subset_size, self.seed)
        member = torch.zeros(int(self.subset.max()) + 1 if len(self.subset) else 0, dtype=torch.bool)
        member[torch.from_numpy(self.subset)] = True
        self._member = member

    def _in_subset(self, index: torch.Tensor) -> torch.Tensor:
        """(B,) bool: which CPU manifest indices belong to the subset (all while it is unknown)."""
        if self._member is None:
            return torch.ones_like(index, dtype=torch.bool)
        inside = (index >= 0) & (index < len(self._member))
        keep = torch.zeros_like(index, dtype=torch.bool)
        keep[inside] = self._member[index[inside]]
        return keep

    # ------------------------------------------------------------------ measuring
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        start = time.perf_counter()
        packed, dims = _gather_rows(pl_module, self._rows, self._dims)  # every rank's kept rows; collective
        self._rows = []
        log_dir = trainer.log_dir if self._plot_due(trainer) else None  # a collective under DDP: all ranks
        metrics: dict[str, float] = {}
        if trainer.is_global_zero:
            metrics = self._measure(trainer, packed, dims[0], log_dir)
        metrics, subset = trainer.strategy.broadcast((metrics, self.subset), src=0)
        if self.subset is None and subset is not None:  # other ranks learn a subset fixed by rank 0
            self._set_subset(subset)
        if metrics:
            pl_module.log_dict({f"geometry/{k}": v for k, v in metrics.items()}, sync_dist=False, rank_zero_only=False)
        elapsed = self._clock + time.perf_counter() - start
        if trainer.is_global_zero:
            self.seconds.append(elapsed)

    def _measure(self, trainer: L.Trainer, packed: torch.Tensor, dim: int, log_dir: str | None) -> dict[str, float]:
        """Rank 0: dedupe, fix the subset, compute the metrics and maybe the picture.

        Args:
            packed: (M, 2·D + K + 1) gathered rows ``[image | text | labels | index]``.
            dim: the embedding width D.
        """
        if len(packed) == 0:
            return {}
        # Lightning's distributed sampler pads with repeated rows: keep each manifest index once.
        index = packed[:, -1].round().long().numpy()
        _, first = np.unique(index, return_index=True)  # sorted by index
        packed = packed[torch.from_numpy(first)]
        if self.subset is None:  # first epoch without a known index list: fix the subset now
            self._set_subset(index)
        packed = packed[torch.from_numpy(np.isin(index[first], self.subset))]
        if len(packed) < 2:
            log.warning("geometry: %d validation pair(s) measured; need at least 2", len(packed))
            return {}
        image = F.normalize(packed[:, :dim].float(), dim=1)  # (N, D); renormalised after bf16 runs
        text = F.normalize(packed[:, dim : 2 * dim].float(), dim=1)  # (N, D)
        labels = packed[:, 2 * dim : -1].float()  # (N, K)
        metrics = geometry_metrics(image, text, labels.numpy(), seed=self.seed)
        metrics["n_pairs"] = float(len(packed))
        self.last = {"index": packed[:, -1].round().long(), "image": image, "text": text, "labels": labels, "metrics": metrics}
        if log_dir is not None:
            data = getattr(trainer.lightning_module, "data_context", None) or context_of(trainer)
            names = data.label_columns if data is not None else None
            path = RunFolder(log_dir).geometry_plot(trainer.current_epoch)
            plot_geometry(
                image, text, labels.numpy(), names, path, title=f"epoch {trainer.current_epoch}",
                max_points=self.subset_size, max_lines=self.max_plot_lines, seed=self.seed,
            )
        return metrics

    def _plot_due(self, trainer: L.Trainer) -> bool:
        n = self.plot_every_n_epochs
        return n > 0 and (trainer.current_epoch + 1) % n == 0


def _validation_indices(trainer: L.Trainer) -> np.ndarray | None:
    """Manifest rows of the validation split, from the module's (or data module's) `DataContext`."""
    data = getattr(trainer.lightning_module, "data_context", None) or context_of(trainer)
    return None if data is None else data.val_rows


def _gather_rows(
    pl_module: L.LightningModule, rows: list[torch.Tensor], dims: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Concatenate every rank's CPU rows (R_r, W) into (Σ R_r, W) on CPU; counts may differ by rank.

    A collective under DDP (through the module's device, as NCCL needs): every rank must call
    it, even one that kept no rows.

    Returns:
        The rows and (D, K) as reported by any rank that has rows.
    """
    local = torch.cat(rows) if rows else torch.zeros(0, 0, dtype=torch.float64)
    if pl_module.trainer.world_size == 1:
        return local, dims
    info = torch.tensor([*local.shape, *dims], device=pl_module.device)  # (4,): R, W, D, K
    infos = pl_module.all_gather(info).reshape(-1, 4).cpu()  # (world, 4)
    width, most = int(infos[:, 1].max()), int(infos[:, 0].max())
    dims = (int(infos[:, 2].max()), int(infos[:, 3].max()))
    if width == 0:
        return local, dims
    padded = torch.zeros(most, width, dtype=torch.float64)
    padded[: len(local), : local.shape[1]] = local
    everything = pl_module.all_gather(padded.to(pl_module.device)).cpu()  # (world, most, width)
    return torch.cat([everything[r, : int(n)] for r, n in enumerate(infos[:, 0])]), dims
