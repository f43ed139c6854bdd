"""The shipped demo study: every cell's `fit` / `test` command line parses with our CLI, and the
methods of the three questions get the options they are meant to have."""

from __future__ import annotations

import sys

import pytest

from medalign.benchmark import expand_grid, load_benchmark_config
from medalign.training.cli import MedAlignCLI, cli_main


@pytest.fixture(autouse=True)
def _parse_only(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(MedAlignCLI, "instantiate_classes", lambda self: None)  # parse and validate types only


def _parse(args: tuple[str, ...]) -> dict:
    args = list(args[1:])  # run=False takes no subcommand
    if "--ckpt_path" in args:  # a `test`-only argument
        i = args.index("--ckpt_path")
        del args[i : i + 2]
    return cli_main(args, run=False).config


def test_every_demo_cell_parses_and_sets_its_method():
    cfg = load_benchmark_config("benchmark/demo.yaml")
    cells = expand_grid(cfg)
    assert len(cells) == len(cfg.methods) * len(cfg.seeds) * len(cfg.fractions)
    weights = "runs/benchmark/standin/image_tower.safetensors"
    expected = {  # method → (its objectives with their settings, model.image_weights)
        "clip": ([], None),
        "clip_transfer": ([], weights),
        "clip_locked_image": ([("Freeze", {"image": "lock", "text": "none"})], weights),  # LiT: tower and projection
        "slip": ([("SLIP", {"weight": 1.0, "temperature": 0.1, "dim": 128})], None),
        "filip": ([("FILIP", {"weight": 1.0, "chunk_size": 64})], None),
    }
    assert {c.method for c in cells} == set(expected)
    seen = set()
    for cell in cells:
        if (cell.method, cell.fraction) in seen:  # seeds differ only in numbers; parse one per method and fraction
            continue
        seen.add((cell.method, cell.fraction))
        fit, test = _parse(cell.fit_args), _parse(cell.test_args)
        for config in (fit, test):
            init = config["model"]["init_args"]
            objectives = [(o.class_path.rsplit(".", 1)[1], dict(vars(o.init_args))) for o in init["objectives"] or []]
            assert (objectives, init["model"]["image_weights"]) == expected[cell.method], cell.key
            assert config["data"]["train_fraction"] == cell.fraction
        assert fit["data"]["views"] == (2 if cell.method == "slip" else 1)
        assert test["evaluation"]["output_dir"].endswith("eval")
