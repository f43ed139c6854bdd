"""`MedAlignDataModule`: manifest → datasets → loaders, with the embedded synthetic default."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from medalign.data.dataset import Collator, ImageTextDataset
from medalign.data.labels import BlankPolicy, UncertainPolicy, check_policies
from medalign.data.manifest import Manifest, read_manifest
from medalign.training.checkpointing import loader_worker_init
from medalign.training.config_check import NO_MANIFEST_HELP, check_label_columns  # noqa: F401 - re-exported
from medalign.training.context import DataContext
from medalign.training.hazards import paper_expert_batch_size
from medalign.training.sampler import (
    EpochSampler, GatedCollate, OversampledEpochSampler, ResumableDataLoader, StepGatedDataset,
)
from medalign.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PairTransform

log = logging.getLogger(__name__)


class MedAlignDataModule(L.LightningDataModule):
    """Serves train / val / test splits of one manifest in the batch format of `Collator`.

    Args:
        manifest: path to the manifest (CSV or Parquet).
        synthetic: the embedded dataset this config may generate: ``manifest`` (where it lives) plus
            `SyntheticConfig` fields, or ``source: openi`` and `OpenIConfig` fields for the rendered
            Open-I set (`synthetic.sources`). It is generated (and announced in the log) only when
            `manifest` is that path and does not exist yet; any other missing path is an error.
        tokenizer: Hugging Face tokenizer directory; default ``<manifest folder>/tokenizer``.
        label_columns: label columns used for zero-shot validation and evaluation.
        prompts: zero-shot prompt file (JSON) for the validation macro-F1; none → no zero-shot.
        image_size: side length fed to the image tower.
        batch_size: per-process training batch (the global batch is this × devices × nodes).
        eval_batch_size: per-process validation / test batch; default `batch_size`.
        max_length: report tokens kept (256 in the eCLIP paper).
        num_workers: loader worker processes.
        pin_memory: pin host memory; default on when CUDA is available.
        crop_scale: area range of the training RandomResizedCrop.
        mean: image normalisation mean (3 values).
        std: image normalisation std (3 values).
        uncertain: policy for uncertain (-1) labels: ``zeros``, ``ones`` or ``ignore``.
        blank: policy for empty ("not mentioned") labels: ``zeros`` (default; CheXpert / MIMIC
            practice, see docs/datasets.md) or ``ignore`` (left out, NaN).
        on_error: ``raise`` on a corrupt image / bad heatmap, or ``skip`` it: replaced by a
            readable row not already in the batch; distinct bad rows per epoch are logged as
            ``data/skipped_rows`` and listed in ``<run folder>/bad_rows.csv`` (`SkippedRows`).
        max_skip_share: the run stops when more than this share of a split is unreadable in
            one epoch (0.01 = 1 %).
        check_files: check at start-up that every referenced file exists.
        allow_outside_paths: accept absolute image paths and ``../`` out of the manifest's folder.
        bit_depth: significant bits of 16-bit PNGs without an ``sBIT`` chunk (e.g. 12); default:
            the chunk, else 16.
        fast_decode: decode JPEGs at the largest 1/2^k DCT reduction still ≥ image_size
            (docs/data_loading.md); false = full-size decode.
        seed: data-order and augmentation seed.
        train_fraction: train on a seeded share of the train split (data-efficiency studies);
            nested across fractions for one seed. Validation and test splits are untouched.
        expert_stream: also serve the train rows that have a heatmap from a second, oversampled
            loader (eCLIP); training batches then are ``{"main": batch, "expert": batch}``.
        expert_batch_size: per-process expert sub-batch M; None (default) = half of `batch_size`, the
            released code's rule (`medalign.training.hazards.paper_expert_batch_size`); another value
            is used and named by the reproduction-hazard warning of a paper preset.
        expert_num_workers: expert loader workers; default `num_workers`.
        views: 2 adds a second augmented view of each train image, ``image_view2`` (SLIP's
            image–image term, ``model.slip_weight``); 1 = off.
        view_crop_scale: crop area range of the second view (default `crop_scale`; SLIP/SimCLR
            use stronger crops, e.g. [0.3, 1.0]).
        format: ``manifest`` (read image files) or ``shards`` (read the litdata shards of
            `medalign shard`, docs/shards.md): same samples, order, DDP split and resume.
        shards: with ``format: shards``, the shard folder or its object-store URL. `manifest` is
            then optional for training and still needed by ``test``.
        shard_cache: litdata's local cache for a shard URL; default a folder in the temp dir.
    """

    def __init__(
        self,
        manifest: str | None = None,
        synthetic: dict[str, Any] | None = None,
        tokenizer: str | None = None,
        label_columns: list[str] | None = None,
        prompts: str | None = None,
        image_size: int = 224,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        max_length: int = 256,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        crop_scale: tuple[float, float] = (0.9, 1.0),
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
        uncertain: UncertainPolicy = "zeros",
        blank: BlankPolicy = "zeros",
        on_error: Literal["raise", "skip"] = "raise",
        max_skip_share: float = 0.01,
        check_files: bool = True,
        allow_outside_paths: bool = False,
        bit_depth: int | None = None,
        fast_decode: bool = True,
        seed: int = 0,
        train_fraction: float = 1.0,
        expert_stream: bool = False,
        expert_batch_size: int | None = None,
        expert_num_workers: int | None = None,
        views: int = 1,
        view_crop_scale: tuple[float, float] | None = None,
        format: Literal["manifest", "shards"] = "manifest",
        shards: str | None = None,
        shard_cache: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if format not in ("manifest", "shards"):
            raise ValueError(f"data.format must be 'manifest' or 'shards', got {format!r}")
        if format == "shards" and not shards:
            raise ValueError("data.format is 'shards' but data.shards is unset; pass the folder `medalign shard` wrote (or its URL)")
        if manifest is None and format == "manifest":
            raise ValueError(f"no dataset given: {NO_MANIFEST_HELP}")
        if batch_size < 1 or image_size < 1 or max_length < 2:
            raise ValueError(
                f"data.batch_size ({batch_size}), data.image_size ({image_size}) must be ≥ 1 and data.max_length ({max_length}) ≥ 2"
            )
        if not 0 < train_fraction <= 1:
            raise ValueError(f"data.train_fraction must be in (0, 1], got {train_fraction}")
        if expert_batch_size is not None and expert_batch_size < 1:
            raise ValueError(f"data.expert_batch_size must be ≥ 1, got {expert_batch_size}")
        if views not in (1, 2):
            raise ValueError(f"data.views must be 1 or 2 (a second augmented view for model.slip_weight), got {views}")
        check_policies(uncertain, blank)
        if not 0 <= max_skip_share <= 1:
            raise ValueError(f"data.max_skip_share must be a share in [0, 1] (0.01 = 1 %), got {max_skip_share}")
        if bit_depth is not None and not 1 <= bit_depth <= 16:
            raise ValueError(f"data.bit_depth must be between 1 and 16 (or null), got {bit_depth}")
        self._manifest_path = Path(manifest) if manifest else None
        if manifest is not None:
            if synthetic is not None:  # generates it when absent; a stale gaze test bed is refused
                from medalign.synthetic.sources import ensure_embedded_at

                ensure_embedded_at(self._manifest_path, synthetic)
            if not self._manifest_path.is_file():
                raise FileNotFoundError(f"manifest {manifest} does not exist: {NO_MANIFEST_HELP}")
        self.tokenizer_path = self._default_tokenizer(tokenizer)
        from medalign.data.tokenizer import load_tokenizer

        self.tokenizer = load_tokenizer(self.tokenizer_path)
        self.label_columns = list(label_columns or [])
        if self._manifest_path is not None:
            check_label_columns(self._manifest_path, self.label_columns)
        self.prompts: dict[str, list[str]] = {}
        if prompts:
            from medalign.data.prompts import load_prompts
            from medalign.paths import resolve_config

            self.prompts = load_prompts(resolve_config(prompts, (".json",)), classes=self.label_columns)
        self.manifest: Manifest | None = None
        self.source: Manifest | Any = None  # the Manifest, or the opened `ShardSet`
        self.datasets: dict[str, ImageTextDataset] = {}
        self.expert_dataset: ImageTextDataset | None = None
        self._train_loader: ResumableDataLoader | None = None
        self._expert_loader: ResumableDataLoader | None = None
        self._resume_state: dict[str, int] | None = None

    @property
    def manifest_path(self) -> Path:
        """The manifest (``test`` evaluates from it, also with ``data.format: shards``)."""
        if self._manifest_path is None:
            raise ValueError(
                f"this run reads shards ({self.hparams.shards}) without a manifest, but evaluation (`test`) reads the "
                "manifest: pass --data.manifest as well (the one the shards were written from)"
            )
        return self._manifest_path

    @property
    def _where(self) -> str:
        """The data source, for messages."""
        return str(self.hparams.shards if self.hparams.format == "shards" else self._manifest_path)

    def _default_tokenizer(self, tokenizer: str | None) -> Path:
        """`tokenizer`, else ``tokenizer/`` next to the manifest, else in a local shard folder."""
        if tokenizer:
            return Path(tokenizer)
        if self._manifest_path is not None:
            return self._manifest_path.parent / "tokenizer"
        from medalign.data.shards import is_remote

        if is_remote(self.hparams.shards):
            raise ValueError(f"data.tokenizer is unset: with shards at a URL ({self.hparams.shards}) pass a local tokenizer folder")
        return Path(self.hparams.shards) / "tokenizer"

    @property
    def context(self) -> DataContext:
        """What the model and callbacks need from the data (`DataContext`)."""
        hp = self.hparams
        val = getattr(self, "datasets", {}).get("val")
        return DataContext(
            tokenizer=self.tokenizer, max_length=hp.max_length, image_size=hp.image_size, mean=tuple(hp.mean),
            std=tuple(hp.std), label_columns=list(self.label_columns), prompts=dict(self.prompts),
            val_rows=None if val is None else np.asarray(val.rows, dtype=np.int64),
        )

    @property
    def vocab_size(self) -> int:
        """Tokenizer size, linked to the model so a fresh text tower has the right embedding."""
        return len(self.tokenizer)

    def setup(self, stage: str | None = None) -> None:
        if self.source is not None:
            return
        hp = self.hparams
        if hp.format == "shards":
            from medalign.data.shards import ShardSet

            self.source = ShardSet(hp.shards, self.label_columns, cache_dir=hp.shard_cache)
            if self._manifest_path is not None:
                self.source.check_manifest(self._manifest_path)
        else:
            self.source = self.manifest = read_manifest(
                self._manifest_path, self.label_columns, check_files=hp.check_files, allow_outside_paths=hp.allow_outside_paths
            )
        common = dict(image_size=hp.image_size, mean=tuple(hp.mean), std=tuple(hp.std))
        transforms = {
            "train": PairTransform(train=True, crop_scale=tuple(hp.crop_scale), **common),
            "val": PairTransform(**common),
            "test": PairTransform(**common),
        }
        for split, transform in transforms.items():
            rows = self.source.split(split)
            if split == "train" and hp.train_fraction < 1:
                rows = subsample_rows(rows, hp.train_fraction, hp.seed)
            if len(rows):
                view = self._view_transform(common) if split == "train" else None
                self.datasets[split] = self._dataset(rows, split, transform, view)
        if "train" not in self.datasets and stage in (None, "fit"):
            raise ValueError(f"{self._where} has no rows with split 'train'")
        if hp.expert_stream and "train" in self.datasets:
            train = self.source.split("train")
            annotated = Manifest(train.path, train.frame[train.frame["heatmap"].astype(bool)], train.label_columns)
            if not len(annotated):
                raise ValueError(
                    f"data.expert_stream is on but {self._where} has no train rows with a heatmap "
                    "(column 'heatmap'); fill it for the annotated subset or set data.expert_stream: false"
                )
            self.expert_dataset = self._dataset(annotated, "train", transforms["train"], None)
            log.info("expert stream: %d annotated train rows", len(annotated))
        log.info("%s %s: %s", hp.format, self._where, {k: len(v) for k, v in self.datasets.items()})

    def _dataset(self, rows: Manifest, split: str, transform: PairTransform, view: PairTransform | None) -> ImageTextDataset:
        """A split's dataset over `rows`: image files (manifest) or the split's shards."""
        options = dict(seed=self.hparams.seed, view_transform=view, **self._row_options())
        if self.hparams.format == "shards":
            from medalign.data.shards import ShardDataset

            return ShardDataset(rows, self.source.url(split), transform, cache_dir=self.hparams.shard_cache, **options)
        return ImageTextDataset(rows, transform, **options)

    def _view_transform(self, common: dict[str, Any]) -> PairTransform | None:
        """The second view's transform (``data.views: 2``), else None."""
        hp = self.hparams
        if hp.views == 1:
            return None
        return PairTransform(train=True, crop_scale=tuple(hp.view_crop_scale or hp.crop_scale), **common)

    def _row_options(self) -> dict[str, Any]:
        """Label policies and error handling shared by every split's dataset."""
        hp = self.hparams
        return dict(uncertain=hp.uncertain, blank=hp.blank, on_error=hp.on_error, max_skip_share=hp.max_skip_share,
                    bit_depth=hp.bit_depth, fast_decode=hp.fast_decode)

    def _loader_kwargs(self, num_workers: int | None = None) -> dict[str, Any]:
        hp = self.hparams
        pin = torch.cuda.is_available() if hp.pin_memory is None else hp.pin_memory
        num_workers = hp.num_workers if num_workers is None else num_workers
        return dict(
            num_workers=num_workers,
            pin_memory=pin,
            persistent_workers=num_workers > 0,
            collate_fn=Collator(self.tokenizer, hp.max_length),
            worker_init_fn=loader_worker_init() if num_workers > 0 else None,  # pre-emption is the main process's
        )

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        dataset = self.datasets["train"]
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler = EpochSampler(len(dataset), seed=self.hparams.seed, num_replicas=world, rank=rank)
        if len(sampler) < self.hparams.batch_size:
            raise ValueError(
                f"the train split has {len(dataset)} rows: fewer than one batch of {self.hparams.batch_size} "
                f"per process on {world} process(es); lower data.batch_size"
            )
        loader = ResumableDataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            sampler=sampler,
            drop_last=True,  # equal batches on every rank for the gathered loss
            progress=self._progress,
            generator=torch.Generator().manual_seed(self.hparams.seed),  # keeps the global RNG untouched
            **self._loader_kwargs(),
        )
        self._train_loader = loader
        if self.hparams.expert_stream:
            self._expert_loader = self._expert_dataloader(len(loader), world, rank)
        if self._resume_state is not None:
            loader.load_state_dict(self._resume_state)
            if self._expert_loader is not None:
                self._expert_loader.load_state_dict({**self._resume_state, "batch_size": self._expert_loader.batch_size})
            self._resume_state = None
        if self._expert_loader is None:
            return loader
        return CombinedLoader({"main": loader, "expert": self._expert_loader}, mode="max_size_cycle")

    @property
    def expert_batch_size(self) -> int:
        """Per-process expert sub-batch (default: half the main batch, `paper_expert_batch_size`)."""
        return self.hparams.expert_batch_size or paper_expert_batch_size(self.hparams.batch_size)

    def _expert_dataloader(self, main_batches: int, world: int, rank: int) -> ResumableDataLoader:
        """The oversampled expert stream, exactly as many batches per epoch as the main stream.

        Its batches are loaded only at the steps whose expert draw uses them (`_expert_batch_used`);
        the others are None and cost no file read or decode.
        """
        if self.expert_dataset is None:
            raise RuntimeError("data.expert_stream is on but setup() built no expert dataset")
        size = self.expert_batch_size
        sampler = OversampledEpochSampler(
            len(self.expert_dataset), samples_per_rank=main_batches * size, seed=self.hparams.seed, num_replicas=world,
            rank=rank, batch_size=size, use_batch=self._expert_batch_used,
        )
        kwargs = self._loader_kwargs(self.hparams.expert_num_workers)
        kwargs["collate_fn"] = GatedCollate(kwargs["collate_fn"])
        return ResumableDataLoader(
            StepGatedDataset(self.expert_dataset),
            batch_size=size,
            sampler=sampler,
            drop_last=True,
            progress=self._progress,
            generator=torch.Generator().manual_seed(self.hparams.seed + 1),
            **kwargs,
        )

    def _expert_batch_used(self, epoch: int, batch: int) -> bool:
        """Whether the module uses the expert sub-batch at batch `batch` of `epoch` (else it is not loaded).

        The module's ``expert_used_at(step)`` (eCLIP's curriculum draw, a pure function of the
        optimizer step) decides; the step of a batch is Lightning's: an epoch has
        ⌈batches / accumulate_grad_batches⌉ optimizer steps (the last batch of an epoch always
        steps). Without a trainer or such a module every batch is loaded.
        """
        trainer = self.trainer
        module = getattr(trainer, "lightning_module", None)
        used_at = getattr(module, "expert_used_at", None)
        batches = getattr(trainer, "num_training_batches", None)
        if used_at is not None and not isinstance(batches, int):
            batches = self._count_before_lightning(module)
        if used_at is None or not isinstance(batches, int) or batches < 1:
            return True
        accumulate = trainer.accumulate_grad_batches
        return used_at(epoch * math.ceil(batches / accumulate) + batch // accumulate)

    def _count_before_lightning(self, module: Any) -> int | None:
        """Batches per epoch before Lightning has counted them (on resume); the module sets its run length from them."""
        if self.trainer.limit_train_batches != 1.0 or self._train_loader is None:
            return None
        batches = len(self._train_loader)
        if hasattr(module, "count_run"):
            module.count_run(batches)
        return batches

    def _progress(self) -> tuple[int, int]:
        loop = self.trainer.fit_loop
        return self.trainer.current_epoch, loop.epoch_loop.batch_progress.current.processed

    # Lightning restores a datamodule's state before it builds the train loader, whereas it may
    # hand loader states to a loader it built earlier (to count steps) and never use them. So the
    # position in the epoch travels through here as well; applying it twice is harmless.
    def state_dict(self) -> dict[str, int]:
        return self._train_loader.state_dict() if self._train_loader is not None else {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume_state = state or None

    def _eval_loader(self, split: str) -> DataLoader:
        if split not in self.datasets:
            raise ValueError(f"{self._where} has no rows with split {split!r}")
        return DataLoader(
            self.datasets[split],
            batch_size=self.hparams.eval_batch_size or self.hparams.batch_size,
            shuffle=False,
            **self._loader_kwargs(),
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")


def subsample_rows(rows: Manifest, fraction: float, seed: int) -> Manifest:
    """A seeded `fraction` of a split's rows (at least one), in manifest order.

    Nested across fractions for a given seed: the rows of fraction 0.1 are among those of 0.5,
    so a data-fraction study adds data rather than swapping it.
    """
    order = np.random.default_rng([seed, 7919]).permutation(len(rows))  # (n,) one seeded ranking per seed
    keep = np.sort(order[: max(1, round(fraction * len(rows)))])
    return Manifest(rows.path, rows.frame.iloc[keep], rows.label_columns)
