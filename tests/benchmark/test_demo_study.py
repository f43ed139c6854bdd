"""The shipped demo study: every cell's `fit` / `test` command line parses with our CLI, and the
methods of the three questions get the options they are meant to have."""

from __future__ import annotations

import sys

import pytest

from medalign.benchmark import expand_grid, load_benchmark_config
from medalign.training.cli import MedAlignCLI, cli_main
from medalign.training.objectives import check_objective


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
    expected = {  # method → model.init_args that must hold
        "clip": {"image_freeze": "none", "slip_weight": 0.0, "local_weight": 0.0, "image_weights": None},
        "clip_transfer": {"image_freeze": "none", "image_weights": "runs/benchmark/standin/image_tower.safetensors"},
        "clip_locked_image": {"image_freeze": "all", "image_weights": "runs/benchmark/standin/image_tower.safetensors"},
        "slip": {"slip_weight": 1.0},
        "filip": {"local_weight": 1.0, "local_method": "filip"},
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
            check_objective(init)
            assert {k: init[k] for k in expected[cell.method]} == expected[cell.method], cell.key
            assert config["data"]["train_fraction"] == cell.fraction
        assert fit["data"]["views"] == (2 if cell.method == "slip" else 1)
        assert test["evaluation"]["output_dir"].endswith("eval")
