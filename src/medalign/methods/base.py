"""`Objective`: one training method as a class — its typed config, any head, and its loss term(s).

A run lists its objectives in YAML (``model.init_args.objectives``, by ``class_path``) and
`ContrastiveModule` loops over them (docs/architecture.md, "Add a method"). Every objective may build heads once the model exists (`setup`), add optimizer groups
(`param_groups`), and return named, already weighted loss terms at each training step
(`terms`). One of them is the pair loss (`PairLoss`: CLIP's InfoNCE unless a SigLIP is listed);
the others add to it. No Lightning here: `StepContext` carries what a term needs from the
training loop (step, progress, rank, the DDP gather).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import torch
from torch import nn

from medalign.optim import param_groups


@dataclass
class StepContext:
    """What a term needs from the training loop besides the batch and the model's output.

    Attributes:
        model: the dual encoder (for extra forwards, e.g. DACL's mixed images).
        step: optimizer step.
        total_steps: optimizer steps of the run (None outside a fit or for an endless run).
        rank: this process's rank (its rows start at ``rank · B`` of the global batch).
        world_size: number of processes.
        gather: all ranks' rows (world·B, ...) with gradients flowing back to this rank's own.
        pair_loss: the run's pair loss of (image (B, D), text (B, D), logit scale) against the global batch.
        channels_last: whether images go to the image tower in channels-last memory format.
        run_seed: the run's seed (``seed_everything``): the default seed of an objective's draws, so
            that a study's seeds vary every random stream of a run.
    """

    model: nn.Module
    step: int = 0
    total_steps: int | None = None
    rank: int = 0
    world_size: int = 1
    gather: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    pair_loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    channels_last: bool = False
    run_seed: int = 0

    @property
    def progress(self) -> float:
        """Share of training done, in [0, 1]; 1 without a known run length."""
        return min(1.0, self.step / max(self.total_steps, 1)) if self.total_steps else 1.0

    def offset(self, batch: int) -> int:
        """Row of the global batch where this rank's `batch` rows start."""
        return self.rank * batch

    def seed(self, seed: int | None) -> int:
        """An objective's draw seed: its own when set, else the run's."""
        return self.run_seed if seed is None else seed

    def generator(self, seed: int | None, kind: int) -> torch.Generator:
        """CPU generator seeded by (seed or the run's, step, kind, rank): resume-safe, different per rank."""
        rng = np.random.default_rng([self.seed(seed), self.step, kind, self.rank])
        return torch.Generator().manual_seed(int(rng.integers(2**62)))


class Objective(nn.Module):
    """Base of a training objective; subclasses take their options as typed ``__init__`` arguments.

    Each ``__init__`` argument is kept as an attribute of the same name, so `config` can write
    the objective back as ``{class_path, init_args}`` (the form checkpoints store).

    Attributes:
        needs_tokens: the training forward must also return token embeddings (FILIP).
        legacy_state: old state-dict prefix → prefix inside this objective (old checkpoints).
    """

    needs_tokens: ClassVar[bool] = False
    legacy_state: ClassVar[dict[str, str]] = {}

    def setup(self, model: nn.Module) -> None:
        """Build heads or change the model (freeze); called once, after the model exists."""

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Take the data's tokenizer (called in the module's ``setup``)."""

    def param_groups(self, weight_decay: float, lr: float) -> list[dict]:
        """Optimizer groups of this objective's own parameters (heads), open_clip's decay rule."""
        return [g for g in param_groups(self.named_parameters(), weight_decay) if g["params"]]

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Named, already weighted loss terms of a training step (``<name>_loss``)."""
        return {}

    def step_logs(self) -> dict[str, torch.Tensor | float]:
        """Extra ``train/`` values on logging steps (e.g. SigLIP's bias)."""
        return {}

    def init_args(self) -> dict[str, Any]:
        """The ``__init__`` arguments this objective was built with (plain values)."""
        names = [n for n in inspect.signature(type(self).__init__).parameters if n != "self"]
        return {n: _plain(getattr(self, n)) for n in names}

    def config(self) -> dict[str, Any]:
        """``{class_path, init_args}``: how YAML and checkpoints name this objective."""
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": self.init_args()}


class PairLoss(Objective):
    """The image–text loss of the main pairs (CLIP's InfoNCE or SigLIP); a run has exactly one."""

    term: ClassVar[str] = "clip_loss"

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
             ctx: StepContext) -> torch.Tensor:
        """Loss of this rank's pairs (B, D) against the global batch."""
        raise NotImplementedError


def check_weight(value: float, key: str) -> None:
    """A term weight must be ≥ 0 (0 = off); the error names the config key."""
    if value < 0:
        raise ValueError(f"{key} must be ≥ 0 (0 = off), got {value}")


def check_positive(value: float, key: str) -> None:
    """An option that must be > 0; the error names the config key."""
    if value <= 0:
        raise ValueError(f"{key} must be > 0, got {value}")


def build_objective(spec: Objective | Mapping[str, Any]) -> Objective:
    """An objective from itself or from ``{class_path, init_args}`` (a checkpoint's form).

    Raises:
        ValueError: a class path that does not name an `Objective`.
    """
    if isinstance(spec, Objective):
        return spec
    if not isinstance(spec, Mapping) or "class_path" not in spec:
        raise ValueError(f"model.objectives entries must be {{class_path: ..., init_args: {{...}}}}, got {spec!r}")
    module_name, _, name = str(spec["class_path"]).rpartition(".")
    cls = getattr(importlib.import_module(module_name), name, None) if module_name else None
    if not (isinstance(cls, type) and issubclass(cls, Objective)):
        raise ValueError(f"model.objectives: {spec['class_path']!r} is not a medalign.methods.base.Objective subclass")
    return cls(**dict(spec.get("init_args") or {}))


def _plain(value: Any) -> Any:
    """Tuples as lists (as YAML gives them), everything else unchanged."""
    return list(value) if isinstance(value, tuple) else value
