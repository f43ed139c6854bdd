"""docs/reproduce.md stays runnable: its prepare lines parse, its configs resolve, its subcommands exist,
and every manifest a paper study or eval/paper.yaml reads is written by one of its prepare lines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from medalign.cli import EXTRA_COMMANDS
from medalign.paths import resolve_config

DOC = Path(__file__).parents[2] / "docs" / "reproduce.md"
STUDIES = ["benchmark/eclip_table1.yaml", "benchmark/eclip_table4.yaml", "benchmark/fig4_steps.yaml", "benchmark/cone_effect.yaml"]


def _commands(prefix: str) -> list[list[str]]:
    """Each command line of the doc starting with `prefix` (continuations joined, comments cut)."""
    text = DOC.read_text().replace("\\\n", " ")
    lines = [line.split("  #")[0].strip().strip("`") for line in text.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(prefix)]


def test_every_table_and_figure_of_both_papers_has_a_section():
    text = DOC.read_text()
    eclip, cone = text.split("## Cone effect")
    for name in ("**Table 1**", "**Table 2**", "**Table 3**", "**Table 4**", "**Fig. 4 top**", "**Fig. 4 bottom**"):
        assert name in eclip
    assert "**Table 1**" in cone and "**Fig. 3**" in cone


def test_prepare_lines_parse():
    from medalign.commands.prepare import build_parser

    lines = _commands("medalign prepare ")
    assert len(lines) >= 17
    for argv in lines:
        build_parser([argv[2]]).parse_args(argv[2:])  # unknown dataset or option → SystemExit


def test_configs_and_subcommands_exist():
    lines = _commands("medalign ") + _commands("python train.py ")
    assert len(lines) >= 25
    for argv in lines:
        command = argv[1] if argv[0] == "medalign" else argv[2]
        assert command in EXTRA_COMMANDS or command in ("fit", "test", "validate", "predict"), argv
        for i, arg in enumerate(argv[:-1]):
            if arg == "--config" and "<" not in argv[i + 1]:
                resolve_config(argv[i + 1])


def _manifests(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for value in node.values():
            found |= _manifests(value)
    elif isinstance(node, list):
        for value in node:
            found |= _manifests(value)
    elif isinstance(node, str):
        found |= set(re.findall(r"data/[\w.-]+/manifest\.csv", node))
    return found


@pytest.mark.parametrize("config", ["eval/paper.yaml", *STUDIES])
def test_every_manifest_the_papers_read_is_prepared_by_the_doc(config):
    written = {f"{argv[argv.index('--out') + 1]}/manifest.csv" for argv in _commands("medalign prepare ")}
    needed = _manifests(yaml.safe_load(resolve_config(config).read_text()))
    assert needed and needed <= written, f"{config} reads {sorted(needed - written)}, which no prepare line of {DOC.name} writes"
