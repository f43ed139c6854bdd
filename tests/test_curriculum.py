"""The expert-probability curriculum (eCLIP §3.2) at and around every boundary, against np.interp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medalign.curriculum import PAPER_SCHEDULE, expert_probability, validate_schedule

EPS = 1e-9


def reference(progress: float, cold_start=0.1, warmup=0.3, cooldown=0.4, start=0.05, peak=0.5, floor=0.1) -> float:
    """Independent piecewise-linear reference: 0 before the cold start ends, np.interp after."""
    if progress < cold_start:
        return 0.0
    xs = [cold_start, cold_start + warmup, cold_start + warmup + cooldown]
    return float(np.interp(progress, xs, [start, peak, floor]))


@pytest.mark.parametrize(
    "progress, expected",
    [
        (0.0, 0.0), (0.1 - EPS, 0.0),  # cold start
        (0.1, 0.05), (0.1 + EPS, 0.05), (0.25, 0.275), (0.4 - EPS, 0.5),  # warm-up 0.05 → 0.5
        (0.4, 0.5), (0.6, 0.3), (0.8 - EPS, 0.1),  # cool-down 0.5 → 0.1
        (0.8, 0.1), (0.9, 0.1), (1.0, 0.1), (1.7, 0.1),  # floor
    ],
)
def test_paper_schedule_values_at_and_around_boundaries(progress, expected):
    assert expert_probability(progress) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "schedule",
    [
        {},
        {"floor": 0.05},  # the authors' released code
        {"cold_start": 0.0, "warmup": 0.5, "cooldown": 0.5, "start": 0.2, "peak": 1.0, "floor": 0.0},
        {"cold_start": 0.25, "warmup": 0.05, "cooldown": 0.1, "start": 0.3, "peak": 0.3, "floor": 0.9},
    ],
)
def test_matches_independent_interpolation_on_a_grid(schedule):
    full = {**PAPER_SCHEDULE, **schedule}
    for progress in np.linspace(0, 1, 1001):
        assert expert_probability(float(progress), **schedule) == pytest.approx(reference(float(progress), **full), abs=1e-9)


def test_only_the_end_of_the_cold_start_jumps():
    boundaries = {0.4: 0.5, 0.8: 0.1}
    for b, value in boundaries.items():
        assert expert_probability(b - 1e-7) == pytest.approx(value, abs=1e-5)
        assert expert_probability(b + 1e-7) == pytest.approx(value, abs=1e-5)
    assert expert_probability(0.1 - 1e-7) == 0.0 and expert_probability(0.1) == 0.05


def test_zero_length_phases_jump_straight_on():
    assert expert_probability(0.1, warmup=0.0) == 0.5  # no warm-up: peak at the end of the cold start
    assert expert_probability(0.4, cooldown=0.0) == 0.1  # no cool-down: floor right after the peak
    assert expert_probability(0.5, cold_start=1.0, warmup=0.0, cooldown=0.0) == 0.0  # experts never used


@pytest.mark.parametrize("progress", [-0.01, math.nan, math.inf])
def test_bad_progress_raises(progress):
    with pytest.raises(ValueError, match="progress"):
        expert_probability(progress)


@pytest.mark.parametrize(
    "schedule, match",
    [
        ({"peek": 0.5}, "unknown curriculum key"),
        ({"peak": 1.5}, "curriculum.peak"),
        ({"floor": -0.1}, "curriculum.floor"),
        ({"start": math.nan}, "curriculum.start"),
        ({"cold_start": 0.5, "warmup": 0.3, "cooldown": 0.4}, "exceed the whole run"),
    ],
)
def test_bad_schedule_raises_naming_the_key(schedule, match):
    with pytest.raises(ValueError, match=match):
        validate_schedule(**schedule)
    with pytest.raises(ValueError, match=match):
        expert_probability(0.5, **schedule)
