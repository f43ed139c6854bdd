"""`ContrastiveModule`: contrastive pretraining as a LightningModule.

The model (`ModelSpec`) returns embeddings; the objectives (`medalign.methods`) return named
loss terms; this module sums them, logs, schedules and evaluates. A new method is a new
`medalign.methods.base.Objective` listed in YAML (docs/architecture.md, "Add a method");
eCLIP's expert pairs extend `compute_losses` and `param_groups` in `ECLIPModule`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, replace
from typing import Any, Mapping

import lightning as L
import numpy as np
import torch
from torch import nn

from medalign.evaluation.tasks.zero_shot import encode_prompts, zero_shot_classify
from medalign.methods.base import Objective, PairLoss, StepContext, build_objective
from medalign.methods.clip import CLIP
from medalign.methods.legacy import migrate_model_args
from medalign.metrics.retrieval import report_keys, retrieval_metrics
from medalign.models import DualEncoderOutput, ModelSpec, create_dual_encoder, load_weights
from medalign.models.compile import compile_towers
from medalign.rng import collect_rng_states, set_rng_states
from medalign.training.context import DataContext, context_of
from medalign.training.hazards import warn_reproduction_hazards
from medalign.optim import build_optimizer, param_groups, warmup_cosine

log = logging.getLogger(__name__)


class ContrastiveModule(L.LightningModule):
    """Dual-encoder contrastive training (CLIP; eCLIP paper §4.1 hyper-parameters by default).

    Args:
        model: the dual encoder to build (preset, towers, initial weights; fields documented in
            `medalign.models.ModelSpec`); rebuilt from a checkpoint's hyper-parameters.
        objectives: training objectives (`medalign.methods`: SigLIP, GapClosing, DACL, M3Mix,
            SLIP, MLM, FILIP, Freeze, …) by ``class_path``; the pair loss is CLIP's InfoNCE unless
            one `PairLoss` (SigLIP) is listed. All compose, also with `ECLIPModule`'s expert pairs.
        init_from: checkpoint or weights file to initialise from (weights only; fresh optimizer,
            schedule and data order — use ``--ckpt_path`` to resume a run exactly).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on biases, norms and the logit scale).
        betas: AdamW betas.
        eps: AdamW epsilon.
        warmup_fraction: linear warmup share of the run before the cosine decay.
        min_lr_ratio: final learning rate as a fraction of `lr`.
        max_logit_scale: exp(logit_scale) is clamped to this after every step (100).
        channels_last: channels-last memory format for the image tower and its input (faster
            convolutions on GPUs with tensor cores; docs/gpu.md).
        compile: ``torch.compile`` the image and text towers in place (checkpoint keys unchanged).
        compile_kwargs: `torch.compile` arguments, e.g. ``{mode: max-autotune}`` or ``{backend: eager}``.
        **legacy: the flat keys of older configs and checkpoints (``preset``, ``loss``, ``dacl_weight`` …),
            mapped by `medalign.methods.legacy.migrate_model_args` with a `DeprecationWarning`.
    """

    def __init__(
        self,
        model: ModelSpec = ModelSpec(),
        objectives: list[Objective] | None = None,
        init_from: str | None = None,
        lr: float = 1e-4,
        weight_decay: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        warmup_fraction: float = 0.1,
        min_lr_ratio: float = 0.0,
        max_logit_scale: float = 100.0,
        channels_last: bool = False,
        compile: bool = False,
        compile_kwargs: dict[str, Any] | None = None,
        **legacy: Any,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lr <= 0 or weight_decay < 0 or max_logit_scale <= 1:
            raise ValueError(f"need model.lr > 0 ({lr}), model.weight_decay ≥ 0 ({weight_decay}), model.max_logit_scale > 1 ({max_logit_scale})")
        spec, given = _resolve(model, objectives, legacy)
        for key in legacy:  # the saved hyper-parameters keep only the current form (plain values)
            self.hparams.pop(key, None)
        self.hparams.update(model=asdict(spec), objectives=[o.config() for o in given])
        self.model = create_dual_encoder(spec)
        if channels_last:
            self.model.image_encoder.to(memory_format=torch.channels_last)
        if compile:  # lazy: compiles at the first step, on the device Lightning moved the model to
            compile_towers(self.model, **(compile_kwargs or {}))
        pairs = [o for o in given if isinstance(o, PairLoss)]
        kinds = [type(o).__name__ for o in given]
        if len(pairs) > 1 or len(set(kinds)) < len(kinds):
            raise ValueError(f"model.objectives lists {kinds}: each objective at most once, and one pair loss (CLIP or SigLIP)")
        others = [o for o in given if not isinstance(o, PairLoss)]  # the pair loss first: a stable state / optimizer layout
        self.objectives = nn.ModuleList([*(pairs or [CLIP()]), *others])
        for objective in self.objectives:
            objective.setup(self.model)
        self.total_steps: int | None = None  # the run's optimizer steps: `count_run`, then Lightning's count at train start
        self._initialised = init_from is None
        self._rng_to_restore: dict | None = None
        self._eval_outputs: list[dict[str, torch.Tensor]] = []
        self._clock: tuple[float, int] | None = None
        self._logging_step = True
        self.data_context: DataContext | None = None  # `attach_data`, or the data module's at setup

    @property
    def pair_objective(self) -> PairLoss:
        """The objective whose loss the main pairs (and validation) use."""
        return next(o for o in self.objectives if isinstance(o, PairLoss))

    # ----------------------------------------------------------------- set-up
    def attach_data(self, context: DataContext) -> None:
        """Tell the module about its data (tokenizer, prompts, label columns); see `DataContext`."""
        self.data_context = context

    def setup(self, stage: str) -> None:
        if stage == "fit":  # paper presets without ImageNet/ClinicalBERT weights or at another global batch
            warn_reproduction_hazards(self.hparams, self.trainer)
        # the data module's context after its setup (val rows known), else the one attached by hand
        data = context_of(self.trainer) or self.data_context
        self.data_context = data
        if hasattr(self.model, "check_data") and data is not None:  # open_clip: image size, tokenizer
            self.model.check_data(data.image_size, data.mean, data.std, data.tokenizer)
        if data is not None:
            for objective in self.objectives:
                objective.set_tokenizer(data.tokenizer)
        if not self._initialised:  # before Lightning restores --ckpt_path, which then wins
            load_weights(self.model, self.hparams.init_from)
            self._initialised = True

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(self.param_groups(), hp.lr, hp.betas, hp.eps)
        factor = warmup_cosine(self.trainer.estimated_stepping_batches, hp.warmup_fraction, hp.min_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def param_groups(self) -> list[dict]:
        """Optimizer groups of the model and the objectives; subclasses add their own (e.g. the heatmap processor)."""
        hp = self.hparams
        groups = [g for g in param_groups(self.model.named_parameters(), hp.weight_decay) if g["params"]]  # frozen: no state
        for objective in self.objectives:
            groups += objective.param_groups(hp.weight_decay, hp.lr)
        return groups

    # --------------------------------------------------------------- training
    def forward(self, batch: dict[str, Any]) -> DualEncoderOutput:
        image = batch["image"]
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        if self.training and any(o.needs_tokens for o in self.objectives):  # FILIP: tokens from the same forward
            return self.model(image, batch["input_ids"], batch["attention_mask"], tokens=True)
        return self.model(image, batch["input_ids"], batch["attention_mask"])

    def compute_losses(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """The pair loss term of the main pairs (``clip_loss`` or ``siglip_loss``); eCLIP extends it."""
        return {self.pair_objective.term: self.pair_loss(out.image_emb, out.text_emb, out.logit_scale)}

    def pair_loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        """The run's pair loss of this rank's pairs (B, D) against the global batch (docs/architecture.md, "DDP")."""
        return self.pair_objective.loss(image_emb, text_emb, logit_scale, self.step_context())

    def step_context(self) -> StepContext:
        """What the objectives' terms need from the training loop at this step."""
        trained = self._trainer is not None
        return StepContext(
            model=self.model, step=self.global_step, total_steps=self.total_steps,
            rank=self.trainer.global_rank if trained else 0, world_size=self.trainer.world_size if trained else 1,
            gather=self.gather, pair_loss=self.pair_loss, channels_last=self.hparams.channels_last,
            run_seed=int(os.environ.get("PL_GLOBAL_SEED", 0)),  # set by seed_everything (the CLI's --seed_everything)
        )

    def progress(self, step: int) -> float:
        """Share of training done at `step` (1 without a trainer or a finite run length)."""
        total = self.total_steps
        if total is None:
            total = self.trainer.estimated_stepping_batches if self._trainer is not None else float("inf")
            if not np.isfinite(total):
                return 1.0
        return step / max(total, 1)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """All ranks' rows (world·B, ...) with gradients flowing back to each rank's own rows."""
        if self._trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x, sync_grads=True).flatten(0, 1)

    def loss_terms(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """All named, weighted terms of a training step: `compute_losses` plus each objective's `terms`."""
        terms, ctx = self.compute_losses(batch, out), self.step_context()
        for objective in self.objectives:  # the pair term is in `compute_losses`
            if not isinstance(objective, PairLoss):
                terms.update(objective.terms(batch, out, ctx))
        return terms

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        terms = self.loss_terms(batch, out)
        loss = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(loss):
            values = {k: float(v) for k, v in terms.items()}
            raise FloatingPointError(
                f"non-finite loss at global step {self.global_step} (batch {batch_idx}, rows "
                f"{batch['index'][:8].tolist()}...): {values}; stopping before a poisoned checkpoint is written. "
                "Lower model.lr, check the data, or use --trainer.precision bf16-mixed instead of 16-mixed."
            )
        # Full logs only on the steps Lightning writes to the loggers (trainer.log_every_n_steps):
        # each self.log call costs, and the step-time target is ≤ 5 % over a bare loop.
        self._logging_step = self._trainer is None or (self.global_step + 1) % self.trainer.log_every_n_steps == 0
        if self._logging_step:
            logs = {f"train/{k}": v.detach() for k, v in terms.items()}
            logs["train/loss"] = loss.detach()
            logs["train/logit_scale"] = out.logit_scale.detach()
            for objective in self.objectives:
                logs.update({f"train/{k}": v for k, v in objective.step_logs().items()})
            logs["train/lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]
            logs.update({f"train/{k}": v for k, v in self.step_logs(terms).items()})
            self.log_dict(logs, on_step=True, on_epoch=False, batch_size=len(out.image_emb))
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=len(out.image_emb))
        return loss

    def step_logs(self, terms: dict[str, torch.Tensor]) -> dict[str, float | torch.Tensor]:
        """Extra ``train/`` values for a logging step, besides the loss terms (subclasses add theirs)."""
        return {}

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Any], batch_idx: int) -> None:
        self.model.clamp_logit_scale(self.hparams.max_logit_scale)
        if self._logging_step:
            self._log_throughput(len(batch["index"]))

    def _log_throughput(self, batch_size: int) -> None:
        """Samples per second (all ranks) since the previous logging step, for the progress bar."""
        now, step = time.perf_counter(), self.global_step
        if self._clock is not None and step > self._clock[1]:
            rate = batch_size * self.trainer.world_size * (step - self._clock[1]) / (now - self._clock[0])
            self.log("samples/s", rate, prog_bar=True, logger=False, on_step=True, on_epoch=False, batch_size=1)
        self._clock = (now, step)

    # ------------------------------------------------------------ evaluation
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, torch.Tensor]:
        return self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def _eval_step(self, batch: dict[str, Any], stage: str) -> dict[str, torch.Tensor]:
        """Loss on the batch; returns (and keeps) its embeddings for epoch-end metrics and callbacks.

        Returns:
            ``image`` (B, D), ``text`` (B, D) float32 normalised embeddings, ``labels`` (B, K),
            ``index`` (B,) manifest rows, ``report_key`` (B,) int64 report identity (`report_keys`).
        """
        out = self(batch)
        loss = self.pair_loss(out.image_emb, out.text_emb, out.logit_scale)
        self.log(f"{stage}/loss", loss, on_epoch=True, sync_dist=True, prog_bar=stage == "val", batch_size=len(out.image_emb))
        result = {"image": out.image_emb.float(), "text": out.text_emb.float(), "labels": batch["labels"], "index": batch["index"]}
        result["report_key"] = _batch_report_keys(batch).to(out.image_emb.device)
        self._eval_outputs.append(result)
        return result

    def _eval_epoch_end(self, stage: str) -> None:
        outputs, self._eval_outputs = self._eval_outputs, []
        if not outputs or self.trainer.sanity_checking:
            return
        gathered = {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
        if self.trainer.world_size > 1:  # sampler padding repeats rows: keep each index once
            gathered = {k: self.all_gather(v).flatten(0, 1) for k, v in gathered.items()}
            _, first = np.unique(gathered["index"].cpu().numpy(), return_index=True)
            gathered = {k: v[torch.from_numpy(first).to(v.device)] for k, v in gathered.items()}
        metrics = self.evaluate_embeddings(gathered)
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False, rank_zero_only=False)

    def evaluate_embeddings(self, emb: dict[str, torch.Tensor]) -> dict[str, float]:
        """Zero-shot and retrieval scores on one evaluation split's embeddings."""
        retrieval = retrieval_metrics(emb["image"], emb["text"], emb["report_key"])  # the `test` retrieval task's numbers
        metrics = {k: float(v) for k, v in retrieval.items() if "R@" in k or k.endswith("_rank")}
        data = self.data_context
        prompts = data.prompts if data is not None else None
        if prompts:
            columns = [data.label_columns.index(c) for c in prompts]
            labels = emb["labels"][:, columns].cpu().numpy()
            prompt_emb = encode_prompts(self.model, data.tokenizer, prompts, self.device, data.max_length)
            try:
                result = zero_shot_classify(emb["image"], labels, prompt_emb, list(prompts))
                metrics["zero_shot_macro_f1"] = result["macro_f1"]
                metrics["zero_shot_accuracy"] = result["accuracy"]
            except ValueError as err:
                log.warning("zero-shot skipped: %s", err)
        return metrics

    # ---------------------------------------------------- exact resumption
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["medalign_rng_states"] = collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._initialised = True  # a checkpoint's weights win over init_from
        self._rng_to_restore = checkpoint.get("medalign_rng_states")
        state = checkpoint.get("state_dict") or {}
        for i, objective in enumerate(self.objectives):  # old checkpoints: heads kept at the module's top level
            for old, new in objective.legacy_state.items():
                for key in [k for k in state if k == old or (old.endswith(".") and k.startswith(old))]:
                    state[f"objectives.{i}.{new}{key[len(old):]}"] = state.pop(key)

    def count_run(self, batches_per_epoch: int) -> None:
        """Set ``total_steps`` from the trainer's limits before Lightning has counted them (Lightning's rule).

        On resume Lightning creates the train iterator before it counts the batches, and loader
        workers prefetch at once: a step-dependent draw (eCLIP's expert gate) then needs the run's
        length already. `on_train_start` replaces it by Lightning's count, which is the same number.
        """
        if self.total_steps is not None:
            return
        trainer = self.trainer
        per_epoch = math.ceil(batches_per_epoch / trainer.accumulate_grad_batches)
        epochs = -1 if trainer.max_epochs == -1 else max(trainer.max_epochs or 1, 1)
        bounds = [n for n in (trainer.max_steps, epochs * per_epoch) if n > 0]
        if bounds:
            self.total_steps = min(bounds)

    def on_train_start(self) -> None:
        if self._trainer is not None and np.isfinite(self.trainer.estimated_stepping_batches):
            self.total_steps = int(self.trainer.estimated_stepping_batches)
        if self._rng_to_restore is not None:
            set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None


def _batch_report_keys(batch: dict[str, Any]) -> torch.Tensor:
    """(B,) int64 report identity: keys of the batch's report strings, else of its unpadded token ids."""
    texts = batch.get("text")
    if texts is None:  # a collator without strings: identical token sequences are the same report
        ids, mask = batch["input_ids"].cpu(), batch["attention_mask"].cpu().bool()
        texts = [" ".join(map(str, row[keep].tolist())) for row, keep in zip(ids, mask)]
    return report_keys(list(texts))



def _resolve(model: ModelSpec | Mapping[str, Any] | None, objectives: list | None,
             legacy: Mapping[str, Any]) -> tuple[ModelSpec, list[Objective]]:
    """The spec and objectives from the arguments (objects or their plain form) and old flat keys."""
    migrated = migrate_model_args(legacy, source="ContrastiveModule arguments") if legacy else {}
    if set(migrated) - {"model", "objectives"}:
        raise TypeError(f"ContrastiveModule got unknown arguments {sorted(set(migrated) - {'model', 'objectives'})}")
    spec = model if isinstance(model, ModelSpec) else ModelSpec.from_hparams({"model": model or {}})
    objectives = [*(objectives or []), *migrated.get("objectives", [])]
    return replace(spec, **migrated.get("model", {})), [build_objective(o) for o in objectives]
