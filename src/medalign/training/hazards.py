"""Reproduction hazards: settings under which a paper config cannot reproduce the paper's numbers.

The eCLIP paper (Kumar & Marttinen, ECCV 2024, §4.1) trains its Swin-T / ViT-S / ViT-B towers
from ImageNet weights with a ClinicalBERT text tower, at an effective batch of 512. A paper
config run without those weights, or on a different number of GPUs, trains something else
silently; `warn_reproduction_hazards` says so loudly at the start of `fit`, with the fix.

The expert sub-batch M is not stated in the paper (Algorithm 1 appends one expert pair per
annotated pair of the minibatch, so M ≤ N there); the authors' released code draws half the
batch, M = N/2, which is our rule (`paper_expert_batch_size`): an expert step appends half the
global batch of expert pairs (256 at the paper's 512). A different ratio is a hazard.
"""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

PAPER_PRESETS = ("swin_t", "vit_s", "vit_b")  # the architectures of the eCLIP paper's tables
PAPER_GLOBAL_BATCH = 512  # "an effective batch size of 512" (§4.1)
EXPERT_BATCH_RATIO = 0.5  # expert pairs per main pair at an expert step (released code; the paper does not say)


def paper_expert_batch_size(batch_size: int) -> int:
    """The per-device expert sub-batch M for a per-device main batch N: N/2 (at least 1).

    Every device and every accumulated micro-batch appends its own M pairs, so the global ratio
    of expert to main pairs at an expert step is M/N as well.
    """
    return max(int(batch_size * EXPERT_BATCH_RATIO), 1)


def find_reproduction_hazards(
    preset: str,
    image_weights: str | None,
    text_model: str | None,
    init_from: str | None,
    batch_size: int | None,
    devices: int,
    num_nodes: int = 1,
    accumulate_grad_batches: int = 1,
    expert_batch_size: int | None = None,
) -> list[str]:
    """The hazards of one run, each a sentence with what to change; empty when none or not a paper preset.

    Args:
        preset: ``model.preset``; only the paper's architectures (`PAPER_PRESETS`) are checked.
        image_weights: ``model.image_weights`` (local ImageNet weights of the image tower).
        text_model: ``model.text_model`` (local ClinicalBERT directory).
        init_from: ``model.init_from``; when set, the towers come from that checkpoint.
        batch_size: per-device main batch ``data.batch_size`` (None: unknown, not checked).
        devices: devices per node of the trainer.
        num_nodes: ``trainer.num_nodes``.
        accumulate_grad_batches: ``trainer.accumulate_grad_batches``.
        expert_batch_size: per-device expert sub-batch in use (None: no expert stream, not checked).
    """
    if preset not in PAPER_PRESETS:
        return []
    hazards = []
    if init_from is None:
        if image_weights is None:
            hazards.append(
                f"the {preset} image tower is randomly initialised: the paper starts from ImageNet weights. "
                "Pass a local timm weights file with --model.image_weights /path/to/weights.safetensors (docs/weights.md)."
            )
        if text_model is None:
            hazards.append(
                "the text tower is a randomly initialised BERT-base: the paper uses ClinicalBERT. "
                "Pass --model.text_model /models/Bio_ClinicalBERT --data.tokenizer /models/Bio_ClinicalBERT."
            )
    if batch_size is not None:
        global_batch = batch_size * devices * num_nodes * accumulate_grad_batches
        if global_batch != PAPER_GLOBAL_BATCH:
            hazards.append(
                f"global batch = data.batch_size {batch_size} × devices {devices} × nodes {num_nodes} × "
                f"accumulate_grad_batches {accumulate_grad_batches} = {global_batch}, the paper's is {PAPER_GLOBAL_BATCH}: "
                + _batch_fix(batch_size, devices * num_nodes)
            )
        if expert_batch_size is not None and expert_batch_size != paper_expert_batch_size(batch_size):
            steps = devices * num_nodes * accumulate_grad_batches
            hazards.append(
                f"expert sub-batch = data.expert_batch_size {expert_batch_size} per device: {expert_batch_size * steps} expert "
                f"pairs per expert step against a global batch of {global_batch} ({expert_batch_size / batch_size:g}× the batch); "
                f"the rule followed here (the authors' released code; the paper does not state it) is half the batch: "
                f"set --data.expert_batch_size null (= data.batch_size // 2 = {paper_expert_batch_size(batch_size)})."
            )
    return hazards


def _batch_fix(batch_size: int, processes: int) -> str:
    """What to change to reach the paper's global batch."""
    per_step = batch_size * processes
    if PAPER_GLOBAL_BATCH % per_step == 0:
        return f"set --trainer.accumulate_grad_batches {PAPER_GLOBAL_BATCH // per_step} (or use more devices)."
    if PAPER_GLOBAL_BATCH % processes == 0:
        return f"set --data.batch_size {PAPER_GLOBAL_BATCH // processes} with --trainer.accumulate_grad_batches 1."
    return f"choose devices × nodes dividing {PAPER_GLOBAL_BATCH} and data.batch_size × accumulate_grad_batches to match."


def warn_reproduction_hazards(hparams: Any, trainer: Any) -> list[str]:
    """Log every hazard of this fit as a warning (rank zero) and return them.

    Args:
        hparams: the module's hyper-parameters (``model``: ``preset``, ``image_weights``, ``text_model``; ``init_from``).
        trainer: the Lightning trainer (devices, nodes, accumulation, data module's batch and expert sizes).
    """
    datamodule = getattr(trainer, "datamodule", None)
    data = getattr(datamodule, "hparams", None)
    batch_size = getattr(data, "batch_size", None)
    expert = getattr(datamodule, "expert_batch_size", None) if getattr(data, "expert_stream", False) else None
    spec = {**hparams, **(hparams.get("model") or {})}  # the ModelSpec fields (flat in old checkpoints)
    hazards = find_reproduction_hazards(
        spec.get("preset", "tiny"),
        spec.get("image_weights"),
        spec.get("text_model"),
        hparams.get("init_from"),
        batch_size,
        trainer.num_devices,
        trainer.num_nodes,
        trainer.accumulate_grad_batches,
        expert_batch_size=expert,
    )
    for hazard in hazards:
        _warn(f"REPRODUCTION HAZARD (this run will not reproduce the eCLIP paper's numbers): {hazard}")
    return hazards


@rank_zero_only
def _warn(message: str) -> None:
    log.warning(message)
