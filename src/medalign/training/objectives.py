"""The objective and transfer option groups of `ContrastiveModule` (docs/methods.md).

`ObjectiveMixin` holds the pair loss (`pair_loss`, ``loss: infonce|siglip``, with the DDP
gather) and everything the optional objectives need: validation of their config keys, the
heads and parameters they own, the frozen towers, and `objective_terms` — the weighted terms `training_step` adds to any method's `compute_losses` (so `ECLIPModule`
inherits them). Every term is off at its default and all compose.

Options (``model.init_args.*``):
    loss: pair loss, ``infonce`` (CLIP) or ``siglip`` (sigmoid loss, Zhai et al. 2023; set
        ``init_temperature: 0.1`` for SigLIP's logit scale 10).
    init_logit_bias: SigLIP's learnable bias at start; None (default): −log(global batch) at the
        first training step (`siglip_bias_init`; SigLIP's −10 is that rule at batch 32k); unused for ``infonce``.
    align_weight: weight of `align_true_pairs_loss` (gap-closing paper, 2026).
    centroid_uniformity_weight: weight of `centroid_uniformity_loss` over the global batch.
    centroid_uniformity_t: its kernel sharpness t (2).
    gap_warmup_fraction: both gap-closing weights ramp linearly from 0 over this share of training.
    dacl_weight: DACL term (Verma et al. 2021): pair loss of mixup images λ·x_i + (1−λ)·x_j.
    dacl_range: (low, high) of λ ~ U(low, high) (DACL's U(0.9, 1)).
    m3mix_weight: m²/m³-mix term (Oh et al. 2023): geodesic image–text mixtures as hard negatives.
    m3mix_beta: λ ~ Beta(β, β) of the mixtures, one per step.
    mix_seed: seed of the DACL, m³-mix and MLM draws (a function of (mix_seed, step, rank)).
    image_freeze: ``none``, ``all`` (LiT: locked image tower, eval mode, no optimizer state; its
        projection into the shared space still trains) or k: stem + first k blocks frozen.
    text_freeze: the same for the text tower (BERT: embeddings + first k layers).
    slip_weight: SLIP's image–image NT-Xent on two views (Mu et al. 2022); needs ``data.views: 2``.
    slip_temperature: its τ (0.1, SLIP's).
    slip_dim: output width of its MLP head (128).
    mlm_weight: masked-language term on the reports (BERT-family text towers only).
    mlm_probability: share of report tokens masked (0.15).
    local_weight: fine-grained token–patch term next to the global loss.
    local_method: ``filip`` (token-wise late interaction, Yao et al. 2022).
    local_chunk_size: images per chunk of the token-similarity computation (memory bound).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from medalign.losses import (
    align_true_pairs_loss, centroid_uniformity_loss, contrastive_loss, filip_loss, nt_xent_loss, siglip_bias_init,
    siglip_contrastive_loss,
)
from medalign.methods.dacl import dacl_mix
from medalign.methods.freeze import freeze_tower, keep_frozen_in_eval, parse_freeze
from medalign.methods.m3mix import m3mix_loss, m3mix_negatives
from medalign.methods.mlm import IGNORE, create_mlm_head, mask_tokens
from medalign.methods.slip import SlipHead
from medalign.models import DualEncoder, DualEncoderOutput
from medalign.optim import param_groups

LOCAL_METHODS = ("filip",)


class ObjectiveMixin:
    """Objective terms, their heads and tower freezing for a `ContrastiveModule` (see the module docstring)."""

    def configure_objectives(self) -> None:
        """Validate the options, freeze towers and build the heads; call after `self.model` exists."""
        hp = self.hparams
        check_objective(hp)
        # SigLIP's learnable bias; absent for InfoNCE so CLIP checkpoints keep their keys.
        start = -10.0 if hp.init_logit_bias is None else float(hp.init_logit_bias)  # None: set from the first batch
        self.logit_bias = torch.nn.Parameter(torch.tensor(start)) if hp.loss == "siglip" else None
        self._bias_from_batch = hp.loss == "siglip" and hp.init_logit_bias is None
        timm_bert = isinstance(self.model, DualEncoder)
        needs_towers = {"slip_weight": hp.slip_weight, "mlm_weight": hp.mlm_weight, "local_weight": hp.local_weight}
        needs_towers["text_freeze"] = parse_freeze(hp.text_freeze, "model.text_freeze") != "none"
        given = sorted(k for k, v in needs_towers.items() if v)
        if given and not timm_bert:
            raise ValueError(f"model.{given[0]} needs the timm/BERT towers, not preset: {hp.preset}; unset {given}")
        image_tower = self.model.image_encoder.backbone if timm_bert else self.model.clip.visual
        self._frozen = freeze_tower(image_tower, hp.image_freeze, "model.image_freeze")
        if timm_bert:
            self._frozen += freeze_tower(self.model.text_encoder.model, hp.text_freeze, "model.text_freeze")
        self.slip_head = SlipHead(self.model.image_encoder.num_features, out_dim=hp.slip_dim) if hp.slip_weight > 0 else None
        self.mlm_head = create_mlm_head(self.model.text_encoder.model) if hp.mlm_weight > 0 else None
        self._mlm_tokens: tuple[int, list[int], int] | None = None  # mask id, special ids, vocab size

    def train(self, mode: bool = True):
        """`nn.Module.train`, keeping frozen tower parts in eval mode (fixed BatchNorm, no dropout)."""
        super().train(mode)
        keep_frozen_in_eval(getattr(self, "_frozen", []))
        return self

    def objective_param_groups(self) -> list[dict]:
        """Optimizer groups of the parameters the objectives own (SigLIP bias, SLIP and MLM heads)."""
        groups = [{"params": [self.logit_bias], "weight_decay": 0.0}] if self.logit_bias is not None else []
        for head in (self.slip_head, self.mlm_head):
            if head is not None:
                groups += [g for g in param_groups(head.named_parameters(), self.hparams.weight_decay) if g["params"]]
        return groups

    @property
    def needs_tokens(self) -> bool:
        """Whether the training forward must return token embeddings (fine-grained term on)."""
        return self.hparams.local_weight > 0

    def set_mlm_tokenizer(self, tokenizer: Any) -> None:
        """Take the mask token, special ids and size of the data's tokenizer (called in `setup`)."""
        if self.mlm_head is None:
            return
        if getattr(tokenizer, "mask_token_id", None) is None:
            raise ValueError(f"model.mlm_weight needs a tokenizer with a mask token; {type(tokenizer).__name__} has none")
        self._mlm_tokens = (int(tokenizer.mask_token_id), list(tokenizer.all_special_ids), len(tokenizer))

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """All ranks' rows (world·B, ...) with gradients flowing back to each rank's own rows."""
        if self._trainer is None or self.trainer.world_size == 1:
            return x
        return self.all_gather(x, sync_grads=True).flatten(0, 1)

    def pair_loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        """InfoNCE (or SigLIP, ``loss: siglip``) of this rank's pairs against the global batch (docs/architecture.md, "DDP")."""
        rank = self._mix_rank()
        if self.hparams.loss == "siglip":
            text_all = self.gather(text_emb)
            if self._bias_from_batch and self.training and self.global_step == 0:  # fresh run; a resumed one keeps its bias
                with torch.no_grad():
                    self.logit_bias.fill_(siglip_bias_init(len(text_all)))
                self._bias_from_batch = False
            return siglip_contrastive_loss(image_emb, text_all, logit_scale, self.logit_bias, offset=rank * len(image_emb))
        return contrastive_loss(
            image_emb, text_emb, self.gather(image_emb), self.gather(text_emb), logit_scale, offset=rank * len(image_emb)
        )

    def objective_terms(self, batch: dict[str, Any], out: DualEncoderOutput) -> dict[str, torch.Tensor]:
        """The optional, weighted terms added to any method's `compute_losses` (docs/methods.md).

        Computed on the main batch's pairs (for eCLIP: not on the appended expert pairs).
        """
        hp, terms = self.hparams, {}
        image_emb, text_emb = out.image_emb, out.text_emb  # (B, D)
        offset = self._mix_rank() * len(image_emb)
        if hp.align_weight > 0 or hp.centroid_uniformity_weight > 0:
            ramp = self.gap_weight_factor()
            if hp.align_weight > 0:  # a mean over pairs: DDP's gradient averaging makes it the global mean
                terms["align_loss"] = hp.align_weight * ramp * align_true_pairs_loss(image_emb, text_emb)
            if hp.centroid_uniformity_weight > 0:  # over all global pairs i ≠ j: every rank computes it whole
                uniformity = centroid_uniformity_loss(self.gather(image_emb), self.gather(text_emb), hp.centroid_uniformity_t)
                terms["centroid_uniformity_loss"] = hp.centroid_uniformity_weight * ramp * uniformity
        if hp.dacl_weight > 0:
            mixed, _, _ = dacl_mix(batch["image"], self._draw_generator(0), tuple(hp.dacl_range))
            if hp.channels_last:
                mixed = mixed.contiguous(memory_format=torch.channels_last)
            mixed_emb = self.model.encode_image(mixed)  # (B, D): extra positives of their own reports
            terms["dacl_loss"] = hp.dacl_weight * self.pair_loss(mixed_emb, text_emb, out.logit_scale)
        if hp.m3mix_weight > 0:  # one λ per step, the same on every rank
            lam = float(np.random.default_rng([hp.mix_seed, self.global_step, 1]).beta(hp.m3mix_beta, hp.m3mix_beta))
            mixed_all = m3mix_negatives(self.gather(image_emb), self.gather(text_emb), lam)  # (N, D)
            terms["m3mix_loss"] = hp.m3mix_weight * m3mix_loss(image_emb, text_emb, mixed_all, out.logit_scale, offset)
        if hp.slip_weight > 0:
            terms["slip_loss"] = hp.slip_weight * self._slip_loss(batch, offset)
        if hp.mlm_weight > 0:
            terms["mlm_loss"] = hp.mlm_weight * self._mlm_loss(batch)
        if hp.local_weight > 0:
            terms["local_loss"] = hp.local_weight * self._local_loss(out, offset)
        return terms

    def _slip_loss(self, batch: dict[str, Any], offset: int) -> torch.Tensor:
        """NT-Xent of the two views' SLIP-head projections over the global batch."""
        if "image_view2" not in batch:
            raise ValueError("model.slip_weight > 0 needs a second view of each image: set data.views: 2")
        encoder = self.model.image_encoder
        z1 = self.slip_head(encoder(batch["image"]))  # (B, slip_dim)
        z2 = self.slip_head(encoder(batch["image_view2"]))
        return nt_xent_loss(z1, z2, self.hparams.slip_temperature, self.gather(z1), self.gather(z2), offset)

    def _mlm_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """BERT masked-token cross-entropy on the batch's reports (0 when no token was picked)."""
        if self._mlm_tokens is None:
            raise RuntimeError("model.mlm_weight > 0: call module.set_mlm_tokenizer(tokenizer) first (setup does)")
        mask_id, special, vocab = self._mlm_tokens
        ids, attention = batch["input_ids"], batch["attention_mask"]
        masked, labels = mask_tokens(ids, attention, special, mask_id, vocab, self._draw_generator(2), self.hparams.mlm_probability)
        hidden = self.model.text_encoder.model(input_ids=masked, attention_mask=attention).last_hidden_state  # (B, L, H)
        logits = self.mlm_head(hidden)  # (B, L, V)
        if not (labels != IGNORE).any():
            return logits.sum() * 0.0
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)

    def _local_loss(self, out: DualEncoderOutput, offset: int) -> torch.Tensor:
        """FILIP's token-wise InfoNCE; the text tokens of all ranks are padded to one length first."""
        if out.image_tokens is None:
            raise RuntimeError("model.local_weight > 0 but the forward returned no token embeddings")
        text_tokens, text_mask = out.text_tokens, out.text_token_mask
        image_all, text_all, mask_all = out.image_tokens, text_tokens, text_mask
        if self._trainer is not None and self.trainer.world_size > 1:
            length = int(self.all_gather(torch.tensor(text_tokens.shape[1], device=text_tokens.device)).max())
            pad = length - text_tokens.shape[1]
            text_all = self.gather(F.pad(text_tokens, (0, 0, 0, pad)))  # (N, L_max, D)
            mask_all = self.gather(F.pad(text_mask, (0, pad)))  # (N, L_max)
            image_all = self.gather(out.image_tokens)  # (N, P, D)
        return filip_loss(out.image_tokens, text_tokens, text_mask, out.logit_scale, image_all, text_all, mask_all,
                          offset, self.hparams.local_chunk_size)

    def _draw_generator(self, kind: int) -> torch.Generator:
        """CPU generator seeded by (mix_seed, step, kind, rank): resume-safe, different per rank."""
        rng = np.random.default_rng([self.hparams.mix_seed, self.global_step, kind, self._mix_rank()])
        return torch.Generator().manual_seed(int(rng.integers(2**62)))

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


def check_objective(hp: Mapping[str, Any]) -> None:
    """Validate the objective group of `ContrastiveModule`'s arguments, naming the config key."""
    if hp["loss"] not in ("infonce", "siglip"):
        raise ValueError(f"model.loss must be 'infonce' or 'siglip', got {hp['loss']!r}")
    for key in ("align_weight", "centroid_uniformity_weight", "dacl_weight", "m3mix_weight", "slip_weight", "mlm_weight", "local_weight"):
        if hp[key] < 0:
            raise ValueError(f"model.{key} must be ≥ 0 (0 = off), got {hp[key]}")
    for key in ("centroid_uniformity_t", "m3mix_beta", "slip_temperature", "slip_dim", "local_chunk_size"):
        if hp[key] <= 0:
            raise ValueError(f"model.{key} must be > 0, got {hp[key]}")
    if not 0 <= hp["gap_warmup_fraction"] < 1 or not 0 < hp["mlm_probability"] < 1:
        raise ValueError(f"need 0 ≤ model.gap_warmup_fraction < 1 ({hp['gap_warmup_fraction']}) "
                         f"and 0 < model.mlm_probability < 1 ({hp['mlm_probability']})")
    low_high = tuple(hp["dacl_range"])
    if len(low_high) != 2 or not 0.5 <= low_high[0] <= low_high[1] <= 1:
        raise ValueError(f"model.dacl_range must be [low, high] with 0.5 ≤ low ≤ high ≤ 1, got {low_high}")
    if hp["local_method"] not in LOCAL_METHODS:
        raise ValueError(f"model.local_method must be one of {list(LOCAL_METHODS)}, got {hp['local_method']!r} "
                         "(GLoRIA-style word–region attention is not implemented yet)")
    parse_freeze(hp["image_freeze"], "model.image_freeze")
    parse_freeze(hp["text_freeze"], "model.text_freeze")
