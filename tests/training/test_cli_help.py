"""`fit --help` says where the model's options are (`--model.help ContrastiveModule`)."""

from __future__ import annotations

import sys

import pytest

from medalign.training.cli import cli_main


@pytest.mark.slow
def test_fit_help_points_at_model_help(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "--model.help ContrastiveModule" in out and "--print_config" in out
