"""SigLIP's bias starts at its prior for the batch: −log N (docs/methods.md, "SigLIP at small batch")."""

from __future__ import annotations

import math
import sys

import pytest
from medalign.losses import siglip_bias_init


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_bias_rule_is_siglips_prior():
    assert siglip_bias_init(32) == pytest.approx(-math.log(32))
    assert siglip_bias_init(32768) == pytest.approx(-10.397, abs=1e-3)  # the paper's −10 at batch 32k
    with pytest.raises(ValueError, match="at least 2"):
        siglip_bias_init(1)
