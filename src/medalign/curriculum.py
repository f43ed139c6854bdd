"""Curriculum for expert annotations: the probability of using the expert sub-batch at a step.

eCLIP (Kumar & Marttinen, ECCV 2024, §3.2): a *cold start* without experts for the first 10%
of training, a *warm-up* raising the probability linearly from 0.05 to 0.5 over the next 30%,
a *cool-down* lowering it to 0.1 over the next 40% (the authors' released code goes down to
0.05), then constant at that floor. A pure function of training progress, so a resumed run
continues at exactly the same point.
"""

from __future__ import annotations

import math

import numpy as np

# The paper's schedule; every value is a keyword of `expert_probability`.
PAPER_SCHEDULE: dict[str, float] = {
    "cold_start": 0.1,  # share of training with p = 0 (also the priming phase)
    "warmup": 0.3,  # share of training rising linearly from `start` to `peak`
    "cooldown": 0.4,  # share of training falling linearly from `peak` to `floor`
    "start": 0.05,  # p at the first warm-up step
    "peak": 0.5,  # p at the end of the warm-up
    "floor": 0.1,  # p after the cool-down (released code: 0.05)
}


def validate_schedule(**schedule: float) -> dict[str, float]:
    """The full schedule (paper defaults filled in) after checking every value.

    Raises:
        ValueError: naming the unknown or out-of-range key.
    """
    unknown = sorted(set(schedule) - set(PAPER_SCHEDULE))
    if unknown:
        raise ValueError(f"unknown curriculum key(s) {unknown}; known: {sorted(PAPER_SCHEDULE)}")
    full = {**PAPER_SCHEDULE, **{k: float(v) for k, v in schedule.items()}}
    for key, value in full.items():
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"curriculum.{key} must be in [0, 1], got {value}")
    phases = full["cold_start"] + full["warmup"] + full["cooldown"]
    if phases > 1.0 + 1e-9:
        raise ValueError(
            f"curriculum phases cold_start + warmup + cooldown = {phases:g} exceed the whole run (1.0)"
        )
    return full


def expert_probability(progress: float, **schedule: float) -> float:
    """Probability p_curr of using the expert sub-batch at a given point of training.

    Args:
        progress: fraction of training done, ``global_step / total_steps`` (≥ 0; values
            above 1 are treated as the end of training).
        **schedule: overrides of `PAPER_SCHEDULE` (``cold_start``, ``warmup``, ``cooldown``,
            ``start``, ``peak``, ``floor``).

    Returns:
        p_curr in [0, 1].

    Raises:
        ValueError: for a negative or non-finite progress, or an invalid schedule.
    """
    if not math.isfinite(progress) or progress < 0:
        raise ValueError(f"progress must be a finite fraction ≥ 0, got {progress}")
    s = validate_schedule(**schedule)
    warm_start = s["cold_start"]
    cool_start = warm_start + s["warmup"]
    cool_end = cool_start + s["cooldown"]
    if progress < warm_start:
        return 0.0
    if progress < cool_start:  # warm-up; a zero-length warm-up is skipped by this test
        return s["start"] + (s["peak"] - s["start"]) * (progress - warm_start) / s["warmup"]
    if progress < cool_end:
        return s["peak"] + (s["floor"] - s["peak"]) * (progress - cool_start) / s["cooldown"]
    return s["floor"]


def expert_decision(seed: int, step: int, probability: float) -> bool:
    """The per-step Bernoulli(p_curr) draw, a pure function of (seed, step).

    Every DDP rank computes the same value without communicating, and a resumed run draws
    what the uninterrupted run drew; the global RNGs are neither read nor advanced.
    """
    if probability <= 0:
        return False
    if probability >= 1:
        return True
    return bool(np.random.default_rng([seed, step, 0]).random() < probability)
