"""`ECLIPModule`: CLIP with expert annotations (eCLIP, Kumar & Marttinen, ECCV 2024), by config.

One class serves the method and its baselines and ablations (``model.method``):

* ``eclip``  — Algorithm 1: at a step drawn with probability p_curr (the curriculum), the
  expert sub-batch (I, H, T) gives I^E = processor(I, H), I^λ = λ·I + (1−λ)·I^E with
  λ ~ Beta(α, α), and the pairs (f(I^λ), g(T)) are appended to the main pairs for ONE InfoNCE
  over N + M pairs; during the cold start the processor is primed towards identity with
  MSE(I, processor(I, 1)) and L = (1 − w_p)·L_clip + w_p·L_priming (§3.2).
* ``naive`` — the annotated pairs (I, T) appended at every step as they are (p = 1, λ = 0,
  no processor, no priming).
* ``clip``  — no experts: exactly `ContrastiveModule` (same loss and gradients).

Table 4 of the paper, row by row, is in ``configs/table4/`` (docs/eclip.md).

Every parameter is in the graph at every step, so plain DDP (``strategy: ddp``) works: on a
step where the heatmap processor does not run, a zero-weighted term over its parameters keeps
it in the graph, and its zero gradients are dropped before the optimizer step, so AdamW skips
it exactly as on one process.

Only `compute_losses` and `param_groups` carry the method; `training_step` and
`on_train_batch_end` merely unpack the ``{"main", "expert"}`` batch of the data module's
expert stream (``data.expert_stream: true``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medalign.curriculum import expert_decision, expert_probability, validate_schedule
from medalign.losses import contrastive_loss
from medalign.methods.clip import CLIP
from medalign.methods.duplicate_mask import same_pair_mask
from medalign.methods.random_heatmaps import random_smooth_heatmaps
from medalign.models import DualEncoderOutput, create_heatmap_processor
from medalign.models.image import running_stats_frozen
from medalign.training.module import ContrastiveModule
from medalign.optim import param_groups

METHODS = ("eclip", "naive", "clip")


class ECLIPModule(ContrastiveModule):
    """eCLIP, the naive expert baseline, CLIP and the paper's Table 4 ablations.

    Args:
        method: ``eclip``, ``naive`` or ``clip`` (see the module docstring).
        processor: heatmap processor for ``eclip``: ``mha`` (paper), ``mask`` (⊙) or ``cnn``.
        processor_kwargs: `create_heatmap_processor` keywords (``in_channels`` 3,
            ``patch_size`` 16, ``width`` 256, ``num_heads`` 8).
        mixup_alpha: α of λ ~ Beta(α, α) (paper 0.3, released code 0.2); 0 = no mixup (λ = 0,
            the expert image I^E is used as it is).
        mixup_per_sample: one λ per expert sample (True) or one per sub-batch.
        use_curriculum: p_curr from `medalign.curriculum.expert_probability`; False = experts
            at every step (p = 1).
        curriculum: overrides of the schedule (``cold_start``, ``warmup``, ``cooldown``,
            ``start``, ``peak``, ``floor``); e.g. ``{floor: 0.05}`` for the released code.
        priming_weight: w_p (paper 0.1, released code 0.3); 0 = no priming.
        priming_fraction: share of training with priming; None (default) = the curriculum's
            cold start (paper: "a priming phase that coincides with the cold start").
        random_heatmaps: the control: random smooth heatmaps replace the expert ones.
        mask_duplicate_positive: drop a report's other copy (same manifest row) from its negatives.
        processor_lr_scale: processor learning rate as a multiple of ``lr`` (released code: 2).
        expert_seed: seed of the Bernoulli draws (a function of (expert_seed, step)), λ and
            random heatmaps (of (expert_seed, step, micro-batch, manifest row)): resume-safe,
            and independent of the number of processes.
        **kwargs: `ContrastiveModule` arguments (model, objectives, lr, …).
    """

    def __init__(
        self,
        method: str = "eclip",
        processor: str = "mha",
        processor_kwargs: dict[str, Any] | None = None,
        mixup_alpha: float = 0.3,
        mixup_per_sample: bool = True,
        use_curriculum: bool = True,
        curriculum: dict[str, float] | None = None,
        priming_weight: float = 0.1,
        priming_fraction: float | None = None,
        random_heatmaps: bool = False,
        mask_duplicate_positive: bool = False,
        processor_lr_scale: float = 2.0,
        expert_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if method not in METHODS:
            raise ValueError(f"model.method must be one of {METHODS}, got {method!r}")
        if mask_duplicate_positive and not isinstance(self.pair_objective, CLIP):
            raise ValueError("model.mask_duplicate_positive masks InfoNCE negatives; it cannot be combined with the "
                             f"{type(self.pair_objective).__name__} objective (remove one of them)")
        if mixup_alpha < 0 or not 0 <= priming_weight < 1 or not 0 <= (priming_fraction or 0) <= 1 or processor_lr_scale <= 0:
            raise ValueError(
                f"need model.mixup_alpha ≥ 0 ({mixup_alpha}), 0 ≤ model.priming_weight < 1 ({priming_weight}), "
                f"0 ≤ model.priming_fraction ≤ 1 ({priming_fraction}), model.processor_lr_scale > 0 ({processor_lr_scale})"
            )
        self.schedule = validate_schedule(**(curriculum or {}))
        self.priming_end = self.schedule["cold_start"] if priming_fraction is None else priming_fraction
        self.processor = (
            create_heatmap_processor(processor, **(processor_kwargs or {})) if method == "eclip" else None
        )
        # Global count of expert pairs trained on; a buffer so checkpoints carry it.
        self.register_buffer("expert_pairs_seen", torch.zeros((), dtype=torch.long))
        self._micro = 0  # micro-batch within the optimizer step (gradient accumulation)
        self._processor_ran = False  # in any micro-batch of the current optimizer step

    # ----------------------------------------------------------- schedule
    def on_train_start(self) -> None:
        if not np.isfinite(self.trainer.estimated_stepping_batches):
            raise ValueError("eCLIP's curriculum needs a finite run: set trainer.max_steps or trainer.max_epochs")
        super().on_train_start()

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.hparams.method != "clip" and datamodule is not None and not getattr(datamodule.hparams, "expert_stream", True):
            raise ValueError(f"model.method {self.hparams.method!r} needs expert pairs: set data.expert_stream: true")

    def expert_probability_at(self, step: int) -> float:
        """p_curr at `step`: the curriculum for ``eclip``, 1 for ``naive``, 0 for ``clip``."""
        if self.hparams.method == "clip":
            return 0.0
        if self.hparams.method == "naive" or not self.hparams.use_curriculum:
            return 1.0
        return expert_probability(self.progress(step), **self.schedule)

    def expert_used_at(self, step: int) -> bool:
        """The curriculum's draw at `step`; the data module loads expert images only for these steps."""
        return expert_decision(self.hparams.expert_seed, step, self.expert_probability_at(step))

    def priming_active(self, step: int) -> bool:
        """Priming runs during its phase, for a processor with parameters, when w_p > 0."""
        trainable = self.processor is not None and any(p.requires_grad for p in self.processor.parameters())
        return trainable and self.hparams.priming_weight > 0 and self.progress(step) < self.priming_end

    # ------------------------------------------------------------- losses
    def compute_losses(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """CLIP InfoNCE over main (+ expert) pairs and, in the priming phase, the priming MSE.

        Args:
            batch: the main batch; ``batch["expert"]`` is the expert sub-batch (or absent).
            out: the dual encoder's output on the main batch.
        """
        hp, step = self.hparams, self.global_step
        used = self.expert_used_at(step)  # one draw per optimizer step
        image_emb, text_emb, ids = out.image_emb, out.text_emb, batch["index"]
        if used:
            expert = batch.get("expert")
            if expert is None:  # no expert stream, or its loader skipped a step this module uses
                raise ValueError(f"model.method {hp.method!r} drew an expert step at global step {step} but the batch has no "
                                 "expert sub-batch: set data.expert_stream: true (or the data module's step count is off)")
            expert_image = self.expert_embeddings(expert, step)  # (M, D)
            expert_text = self.model.encode_text(expert["input_ids"], expert["attention_mask"])  # (M, D)
            image_emb = torch.cat([image_emb, expert_image])  # (N + M, D)
            text_emb = torch.cat([text_emb, expert_text])
            ids = torch.cat([ids, expert["index"]])
            with torch.no_grad():
                world = self.trainer.world_size if self._trainer is not None else 1
                self.expert_pairs_seen += len(expert_image) * world
        if hp.mask_duplicate_positive:
            offset = self.step_context().offset(len(image_emb))
            mask = same_pair_mask(ids, self.gather(ids), offset)  # (N + M, world·(N + M))
            clip = contrastive_loss(
                image_emb, text_emb, self.gather(image_emb), self.gather(text_emb), out.logit_scale, offset, mask
            )
        else:
            clip = self.pair_loss(image_emb, text_emb, out.logit_scale)
        priming = self.priming_active(step)
        if self.processor is not None and not used and not priming:
            clip = clip + self._idle_processor_term()
        if not priming:
            return {"clip_loss": clip}
        self._processor_ran = True
        image = batch["image"]
        reconstruction = self.processor(image, torch.ones_like(image[:, :1]))  # all-ones heatmap
        priming_mse = F.mse_loss(reconstruction, image)
        w = hp.priming_weight
        return {"clip_loss": (1 - w) * clip, "priming_loss": w * priming_mse}

    def _idle_processor_term(self) -> torch.Tensor:
        """0 · Σ θ over the processor's trainable parameters: keeps them in the autograd graph.

        Plain DDP (``find_unused_parameters=False``) requires every parameter to receive a
        gradient at every backward; this costs one sum per parameter tensor, not a forward.
        `on_before_optimizer_step` drops the resulting zero gradients.
        """
        params = [p for p in self.processor.parameters() if p.requires_grad]
        if not params:
            return torch.zeros((), device=self.device)
        return torch.stack([p.sum() for p in params]).sum() * 0.0

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Drop the processor's gradients if it did not run in this optimizer step.

        They are exact zeros from `_idle_processor_term`; left in place, AdamW would still move
        the processor by its momentum and weight decay, unlike a step where it had no gradient.
        """
        if self.processor is not None and not self._processor_ran:
            for p in self.processor.parameters():
                p.grad = None
        self._processor_ran = False

    def expert_embeddings(self, expert: dict[str, Any], step: int) -> torch.Tensor:
        """v^λ = f(λ·I + (1−λ)·processor(I, H)) for the expert sub-batch, (M, D).

        The expert views do not update the image tower's BatchNorm running statistics (they still
        normalise with their own batch statistics): evaluation normalises plain images with those
        statistics, and the processed views' are not theirs. Measured on `tiny_cnn` (a ResNet):
        without mixup, the expert forwards had moved the running means so far that the test F1 of
        a trained model was 0.07 as saved and 0.36 with the statistics re-estimated on plain train
        images (docs/eclip_positive_control.md). Swin-T and ViT towers have no BatchNorm.
        """
        image, heatmap = expert["image"], expert["heatmap"]
        if self.processor is not None:
            rows = [int(r) for r in expert["index"].tolist()]
            if self.hparams.random_heatmaps:
                heatmap = self._random_heatmaps(rows, step, tuple(image.shape[-2:]))
                heatmap = heatmap.to(device=image.device, dtype=image.dtype)
            processed = self.processor(image, heatmap)  # I^E (M, C, H, W)
            self._processor_ran = True
            lam = self._mixup_lambdas(rows, step).to(device=image.device, dtype=image.dtype)
            image = lam * image + (1 - lam) * processed  # I^λ
        if self.hparams.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        with running_stats_frozen(self.model.image_encoder):
            return self.model.encode_image(image)

    def _draw_key(self, step: int, kind: int, *rest: int) -> list[int]:
        """Seed of a per-sample draw: (expert_seed, step, micro-batch, kind, ...) — no rank.

        Keyed by the manifest row rather than by rank and position, so one process on N + M
        pairs and several processes sharing them draw the same λ and heatmap for each sample;
        each micro-batch of an accumulated step has its own key.
        """
        return [self.hparams.expert_seed, step, self._micro, kind, *rest]

    def _mixup_lambdas(self, rows: list[int], step: int) -> torch.Tensor:
        """λ (M, 1, 1, 1): Beta(α, α) per sample or one per sub-batch; zeros when α = 0 (no mixup)."""
        alpha, count = self.hparams.mixup_alpha, len(rows)
        if alpha == 0:
            return torch.zeros(count, 1, 1, 1)
        if self.hparams.mixup_per_sample:
            draws = [np.random.default_rng(self._draw_key(step, 1, row)).beta(alpha, alpha) for row in rows]
        else:
            draws = [float(np.random.default_rng(self._draw_key(step, 1)).beta(alpha, alpha))] * count
        return torch.as_tensor(draws, dtype=torch.float32).reshape(count, 1, 1, 1)

    def _random_heatmaps(self, rows: list[int], step: int, size: tuple[int, int]) -> torch.Tensor:
        """The control's heatmaps (M, 1, H, W), one seeded draw per sample."""
        maps = []
        for row in rows:
            seed = int(np.random.default_rng(self._draw_key(step, 2, row)).integers(2**62))
            maps.append(random_smooth_heatmaps(1, size, torch.Generator().manual_seed(seed)))
        return torch.cat(maps)

    # ----------------------------------------------------------- optimizer
    def param_groups(self) -> list[dict]:
        """The towers' groups plus the processor's at ``processor_lr_scale × lr``."""
        groups = super().param_groups()
        if self.processor is not None:
            lr = self.hparams.lr * self.hparams.processor_lr_scale
            for group in param_groups(self.processor.named_parameters(), self.hparams.weight_decay):
                if group["params"]:
                    groups.append({**group, "lr": lr})
        return groups

    # --------------------------------------- the {"main", "expert"} batch
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if "main" in batch:  # the data module's expert stream is on
            batch = {**batch["main"], "expert": batch.get("expert")}
        accumulate = self.trainer.accumulate_grad_batches if self._trainer is not None else 1
        self._micro = batch_idx % accumulate  # Lightning accumulates over consecutive batch indices of an epoch
        return super().training_step(batch, batch_idx)

    def step_logs(self, terms: dict[str, torch.Tensor]) -> dict[str, float | torch.Tensor]:
        """The curriculum's state at this step (recomputed: the draw is a pure function of the step)."""
        hp, step = self.hparams, self.global_step
        p_curr = self.expert_probability_at(step)
        logs: dict[str, float | torch.Tensor] = {
            "p_curr": p_curr,
            "expert_used": float(expert_decision(hp.expert_seed, step, p_curr)),
            "expert_pairs_seen": self.expert_pairs_seen.detach().float(),
        }
        if "priming_loss" in terms and hp.priming_weight > 0:
            logs["priming_mse"] = terms["priming_loss"].detach() / hp.priming_weight
        return logs

    def on_train_batch_end(self, outputs: Any, batch: dict[str, Any], batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch["main"] if "main" in batch else batch, batch_idx)
