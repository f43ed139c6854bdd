"""Every option of every argparse command has a description and states its default in ``-h``."""

from __future__ import annotations

import argparse

import pytest

from medalign.cli import command

COMMANDS = ["synth", "tokenizer", "saliency", "geometry", "export", "resize", "shard", "benchmark", "demo", "testbed-info"]


def _parser(name, monkeypatch):
    """The ArgumentParser a command builds (captured at its -h)."""
    seen = []
    original = argparse.ArgumentParser.parse_known_args

    def capture(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    with pytest.raises(SystemExit):
        command(name)(["-h"])
    return seen[0]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_described_with_its_default(name, monkeypatch, capsys):
    parser = _parser(name, monkeypatch)
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = formatter._expand_help(action) if action.help else ""
        where = f"medalign {name} {action.option_strings or action.dest}"
        assert text.strip(), f"{where}: no help text"
        if action.option_strings and not action.required and action.default not in (None, False):
            assert "default" in text, f"{where}: default {action.default!r} not shown: {text!r}"
    capsys.readouterr()


def test_gap_sweep_help_names_ckpt_and_defaults(capsys):
    with pytest.raises(SystemExit):
        command("gap-sweep")(["-h"])
    out = capsys.readouterr().out
    assert "--ckpt" in out and "default: [42, 43, 44, 45, 46]" in out
