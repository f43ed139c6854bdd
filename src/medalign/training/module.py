"""`ContrastiveModule`: CLIP pretraining as a LightningModule.

The model returns embeddings; `compute_losses` returns named loss terms; this module sums
them, logs, schedules and evaluates. Method variants (eCLIP, baselines) extend
`compute_losses` and `param_groups`, nothing else.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import numpy as np
import torch

from medalign.evaluation.tasks.zero_shot import encode_prompts, zero_shot_classify
from medalign.losses import align_true_pairs_loss, centroid_uniformity_loss, contrastive_loss, siglip_contrastive_loss
from medalign.methods.dacl import dacl_mix
from medalign.methods.m3mix import m3mix_loss, m3mix_negatives
from medalign.metrics.retrieval import report_keys, retrieval_metrics
from medalign.models import DualEncoderOutput, ModelSpec, create_dual_encoder, load_weights
from medalign.rng import collect_rng_states, set_rng_states
from medalign.training.hazards import warn_reproduction_hazards
from medalign.optim import build_optimizer, param_groups, warmup_cosine

log = logging.getLogger(__name__)


class ContrastiveModule(L.LightningModule):
    """Dual-encoder contrastive training (CLIP; eCLIP paper §4.1 hyper-parameters by default).

    The architecture keys (``preset`` … ``gradient_checkpointing``, ``open_clip_*``) are the fields
    of one `medalign.models.ModelSpec`, which builds the model here and again from a checkpoint.

    Args:
        preset: model preset (``tiny``, ``swin_t``, ``vit_s``, ``vit_b``, or ``open_clip``).
        vocab_size: tokenizer size (linked from the data module).
        image_model: timm name overriding the preset's image tower.
        image_kwargs: extra `timm.create_model` kwargs.
        image_weights: local timm weights file for the image tower.
        text_model: local Hugging Face directory of a pretrained text tower (e.g. ClinicalBERT).
        text_config: `BertConfig` overrides for a randomly initialised text tower (e.g. dropout).
        text_pooling: ``cls`` or ``mean``.
        embed_dim: shared-space width (default: the preset's, 512).
        init_temperature: initial temperature (0.07).
        max_logit_scale: exp(logit_scale) is clamped to this after every step (100).
        init_from: checkpoint or weights file to initialise from (weights only; fresh optimizer,
            schedule and data order — use ``--ckpt_path`` to resume a run exactly).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (not on biases, norms and the logit scale).
        betas: AdamW betas.
        eps: AdamW epsilon.
        warmup_fraction: linear warmup share of the run before the cosine decay.
        min_lr_ratio: final learning rate as a fraction of `lr`.
        gradient_checkpointing: activation checkpointing in both towers.
        channels_last: channels-last memory format for the image tower (GPU speed-up).
        zero_shot_aggregation: how prompts combine into a class (``embedding``, ``logits``, ``max``).
        open_clip_model: with ``preset: open_clip``: open_clip architecture, model-config JSON or
            hf-hub-layout directory to fine-tune (docs/weights.md).
        open_clip_weights: its local weights file (default for a directory: the directory's own).
        open_clip_text_config_dir: local directory with its HF text tower's config.json.

        Objective (docs/methods.md; each term is off at its default, and all compose, also with
        `ECLIPModule`'s expert pairs):

        loss: pair loss, ``infonce`` (CLIP) or ``siglip`` (sigmoid loss, Zhai et al. 2023; set
            ``init_temperature: 0.1`` for SigLIP's logit scale 10).
        init_logit_bias: SigLIP's learnable bias at start (−10); unused for ``infonce``.
        align_weight: weight of `align_true_pairs_loss` (gap-closing paper, 2026).
        centroid_uniformity_weight: weight of `centroid_uniformity_loss` over the global batch.
        centroid_uniformity_t: its kernel sharpness t (2).
        gap_warmup_fraction: both gap-closing weights ramp linearly from 0 over this share of
            training (0 = full weight from the first step).
        dacl_weight: weight of the DACL term (Verma et al. 2021): the pair loss of mixup images
            λ·x_i + (1−λ)·x_j against their own reports; 0 = off.
        dacl_range: (low, high) of λ ~ U(low, high) (DACL's U(0.9, 1)).
        m3mix_weight: weight of the m²/m³-mix term (Oh et al. 2023): InfoNCE with geodesic
            image–text mixtures as hard negatives; the eCLIP paper fine-tunes a CLIP run with it
            (``init_from``); 0 = off.
        m3mix_beta: λ ~ Beta(β, β) of the mixtures, one per step (0.5, the authors' code).
        mix_seed: seed of the DACL and m³-mix draws (a function of (mix_seed, step, rank), so
            resume-safe).
    """

    def __init__(
        self,
        preset: str = "tiny",
        vocab_size: int | None = None,
        image_model: str | None = None,
        image_kwargs: dict[str, Any] | None = None,
        image_weights: str | None = None,
        text_model: str | None = None,
        text_config: dict[str, Any] | None = None,
        text_pooling: str = "cls",
        embed_dim: int | None = None,
        init_temperature: float = 0.07,
        max_logit_scale: float = 100.0,
        init_from: str | None = None,
        lr: float = 1e-4,
        weight_decay: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-6,
        warmup_fraction: float = 0.1,
        min_lr_ratio: float = 0.0,
        gradient_checkpointing: bool = False,
        channels_last: bool = False,
        zero_shot_aggregation: str = "embedding",
        open_clip_model: str | None = None,
        open_clip_weights: str | None = None,
        open_clip_text_config_dir: str | None = None,
        # objective: see the docstring's last group
        loss: str = "infonce",
        init_logit_bias: float = -10.0,
        align_weight: float = 0.0,
        centroid_uniformity_weight: float = 0.0,
        centroid_uniformity_t: float = 2.0,
        gap_warmup_fraction: float = 0.0,
        dacl_weight: float = 0.0,
        dacl_range: tuple[float, float] = (0.9, 1.0),
        m3mix_weight: float = 0.0,
        m3mix_beta: float = 0.5,
        mix_seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lr <= 0 or weight_decay < 0 or max_logit_scale <= 1:
            raise ValueError(f"need model.lr > 0 ({lr}), model.weight_decay ≥ 0 ({weight_decay}), model.max_logit_scale > 1 ({max_logit_scale})")
        self.model = create_dual_encoder(ModelSpec.from_hparams(self.hparams))
        if channels_last:
            self.model.image_encoder.to(memory_format=torch.channels_last)
        _check_objective(loss, align_weight, centroid_uniformity_weight, centroid_uniformity_t, gap_warmup_fraction,
                         dacl_weight, dacl_range, m3mix_weight, m3mix_beta)
        # SigLIP's learnable bias; absent for InfoNCE so CLIP checkpoints keep their keys.
        self.logit_bias = torch.nn.Parameter(torch.tensor(float(init_logit_bias))) if loss == "siglip" else None
        self._initialised = init_from is None
        self._rng_to_restore: dict | None = None
        self._eval_outputs: list[dict[str, torch.Tensor]] = []
        self._clock: tuple[float, int] | None = None
        self._logging_step = True

    # ----------------------------------------------------------------- set-up
    def setup(self, stage: str) -> None:
        if stage == "fit":  # paper presets without ImageNet/ClinicalBERT weights or at another global batch
            warn_reproduction_hazards(self.hparams, self.trainer)
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(self.model, "check_data") and datamodule is not None:  # open_clip: image size, tokenizer
            hp = datamodule.hparams
            self.model.check_data(hp.image_size, tuple(hp.mean), tuple(hp.std), datamodule.tokenizer)
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
        """Optimizer groups; subclasses add their own (e.g. the heatmap processor)."""
        groups = param_groups(self.model.named_parameters(), self.hparams.weight_decay)
        if self.logit_bias is not None:
            groups.append({"params": [self.logit_bias], "weight_decay": 0.0})
        return groups

    # --------------------------------------------------------------- training
    def forward(self, batch: dict[str, Any]) -> DualEncoderOutput:
        image = batch["image"]
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        return self.model(image, batch["input_ids"], batch["attention_mask"])

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """All ranks' rows (world·B, ...) with gradients flowing back to each rank's own rows."""
        if self._trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x, sync_grads=True).flatten(0, 1)

    def pair_loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        """InfoNCE (or SigLIP, ``loss: siglip``) of this rank's pairs against the global batch (docs/architecture.md, "DDP")."""
        rank = self._mix_rank()
        if self.hparams.loss == "siglip":
            return siglip_contrastive_loss(image_emb, self.gather(text_emb), logit_scale, self.logit_bias, offset=rank * len(image_emb))
        return contrastive_loss(
            image_emb, text_emb, self.gather(image_emb), self.gather(text_emb), logit_scale, offset=rank * len(image_emb)
        )

    def compute_losses(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """Named, already weighted loss terms whose sum is optimised."""
        name = "siglip_loss" if self.hparams.loss == "siglip" else "clip_loss"
        return {name: self.pair_loss(out.image_emb, out.text_emb, out.logit_scale)}

    def objective_terms(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """The optional, weighted terms added to any method's `compute_losses` (docs/methods.md).

        Computed on the main batch's pairs (for eCLIP: not on the appended expert pairs).
        """
        hp, terms = self.hparams, {}
        image_emb, text_emb = out.image_emb, out.text_emb  # (B, D)
        if hp.align_weight > 0 or hp.centroid_uniformity_weight > 0:
            ramp = self.gap_weight_factor()
            if hp.align_weight > 0:  # a mean over pairs: DDP's gradient averaging makes it the global mean
                terms["align_loss"] = hp.align_weight * ramp * align_true_pairs_loss(image_emb, text_emb)
            if hp.centroid_uniformity_weight > 0:  # over all global pairs i ≠ j: every rank computes it whole
                uniformity = centroid_uniformity_loss(self.gather(image_emb), self.gather(text_emb), hp.centroid_uniformity_t)
                terms["centroid_uniformity_loss"] = hp.centroid_uniformity_weight * ramp * uniformity
        if hp.dacl_weight > 0:
            rng = np.random.default_rng([hp.mix_seed, self.global_step, 0, self._mix_rank()])
            generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
            mixed, _, _ = dacl_mix(batch["image"], generator, tuple(hp.dacl_range))
            if hp.channels_last:
                mixed = mixed.contiguous(memory_format=torch.channels_last)
            mixed_emb = self.model.encode_image(mixed)  # (B, D): extra positives of their own reports
            terms["dacl_loss"] = hp.dacl_weight * self.pair_loss(mixed_emb, text_emb, out.logit_scale)
        if hp.m3mix_weight > 0:  # one λ per step, the same on every rank
            lam = float(np.random.default_rng([hp.mix_seed, self.global_step, 1]).beta(hp.m3mix_beta, hp.m3mix_beta))
            mixed_all = m3mix_negatives(self.gather(image_emb), self.gather(text_emb), lam)  # (N, D)
            offset = self._mix_rank() * len(image_emb)
            terms["m3mix_loss"] = hp.m3mix_weight * m3mix_loss(image_emb, text_emb, mixed_all, out.logit_scale, offset)
        return terms

    def gap_weight_factor(self) -> float:
        """Linear warm-up of the gap-closing weights: min(1, progress / gap_warmup_fraction)."""
        fraction = self.hparams.gap_warmup_fraction
        if fraction == 0 or self._trainer is None:
            return 1.0
        total = self.trainer.estimated_stepping_batches
        progress = self.global_step / max(total, 1) if np.isfinite(total) else 1.0
        return min(1.0, progress / fraction)

    def _mix_rank(self) -> int:
        """This process's rank (0 without a trainer, e.g. in a notebook)."""
        return self.trainer.global_rank if self._trainer is not None else 0

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        out = self(batch)
        terms = self.compute_losses(batch, out)
        terms.update(self.objective_terms(batch, out))
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
            if self.logit_bias is not None:
                logs["train/logit_bias"] = self.logit_bias.detach()
            logs["train/lr"] = self.trainer.optimizers[0].param_groups[0]["lr"]
            self.log_dict(logs, on_step=True, on_epoch=False, batch_size=len(out.image_emb))
        self.log("loss", loss.detach(), prog_bar=True, logger=False, batch_size=len(out.image_emb))
        return loss

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
        datamodule = getattr(self.trainer, "datamodule", None)
        prompts = getattr(datamodule, "prompts", None)
        if prompts:
            columns = [datamodule.label_columns.index(c) for c in prompts]
            labels = emb["labels"][:, columns].cpu().numpy()
            prompt_emb = encode_prompts(self.model, datamodule.tokenizer, prompts, self.device, datamodule.hparams.max_length)
            try:
                result = zero_shot_classify(emb["image"], labels, prompt_emb, list(prompts), self.hparams.zero_shot_aggregation)
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

    def on_train_start(self) -> None:
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


def _check_objective(
    loss: str, align_weight: float, centroid_weight: float, centroid_t: float, warmup: float,
    dacl_weight: float, dacl_range: tuple[float, float], m3mix_weight: float, m3mix_beta: float,
) -> None:
    """Validate the objective group of `ContrastiveModule`'s arguments, naming the config key."""
    if loss not in ("infonce", "siglip"):
        raise ValueError(f"model.loss must be 'infonce' or 'siglip', got {loss!r}")
    weights = {"align_weight": align_weight, "centroid_uniformity_weight": centroid_weight,
               "dacl_weight": dacl_weight, "m3mix_weight": m3mix_weight}
    for key, value in weights.items():
        if value < 0:
            raise ValueError(f"model.{key} must be ≥ 0 (0 = off), got {value}")
    if centroid_t <= 0 or m3mix_beta <= 0 or not 0 <= warmup < 1:
        raise ValueError(
            f"need model.centroid_uniformity_t > 0 ({centroid_t}), model.m3mix_beta > 0 ({m3mix_beta}) "
            f"and 0 ≤ model.gap_warmup_fraction < 1 ({warmup})"
        )
    if len(dacl_range) != 2 or not 0.5 <= dacl_range[0] <= dacl_range[1] <= 1:
        raise ValueError(f"model.dacl_range must be [low, high] with 0.5 ≤ low ≤ high ≤ 1, got {dacl_range}")
