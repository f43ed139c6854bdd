"""`gap-sweep` refuses bad λ, empty lists and sizes before any checkpoint loading or embedding."""

from __future__ import annotations

import pytest

from medalign.commands import gap_sweep


@pytest.mark.parametrize("args, match", [
    (["--lambdas", "[0, 1.5]"], r"lambdas \[1.5\] outside \[0, 1\]"),
    (["--lambdas", "[-0.2, 0.5]"], r"lambdas \[-0.2\] outside \[0, 1\]"),
    (["--lambdas", "[]"], "lambdas is empty"),
    (["--seeds", "[]"], "seeds is empty"),
    (["--batch_size", "0"], "batch_size must be ≥ 1, got 0"),
])  # fmt: skip
def test_bad_arguments_fail_before_any_work(monkeypatch, args, match):
    def no_work(*a, **k):  # pragma: no cover - reaching it is the failure
        raise AssertionError("gap-sweep started loading the encoder before validating its arguments")

    monkeypatch.setattr(gap_sweep, "_encoder", no_work)
    with pytest.raises(ValueError, match=match):
        gap_sweep.run(["--ckpt", "missing.ckpt", *args])


def test_good_arguments_pass():
    gap_sweep.validate_config(gap_sweep.GapSweepConfig(lambdas=[0.0, 0.5, 1.0], seeds=[42]))
