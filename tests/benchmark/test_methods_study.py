"""The shipped methods study (``configs/benchmark/methods.yaml``): every method's cell parses with our
CLI, seeds reach the cells through ``${seed}``, and m³-mix fine-tunes the same seed's CLIP cell."""

from __future__ import annotations

import sys

import pytest

from medalign.benchmark import expand_grid, load_benchmark_config
from medalign.run_folder import RunFolder
from medalign.training.cli import MedAlignCLI, cli_main


@pytest.fixture(autouse=True)
def _parse_only(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(MedAlignCLI, "instantiate_classes", lambda self: None)  # parse and validate types only


def test_every_method_cell_parses_and_m3mix_starts_from_its_seeds_clip_cell():
    cfg = load_benchmark_config("benchmark/methods.yaml")
    cells = expand_grid(cfg)
    names = [m.name for m in cfg.methods]
    assert names[0] == "clip" and len(cells) == len(names) * len(cfg.seeds)
    assert {"clip", "eclip", "naive", "random_heatmaps", "dacl", "m3mix", "siglip", "gap_closing"} <= set(names)
    clip = {c.seed: c for c in cells if c.method == "clip"}
    for cell in (c for c in cells if c.seed == 1):
        init = cli_main(list(cell.fit_args[1:]), run=False).config["model"]["init_args"]
        assert init.get("expert_seed", 1) == 1, cell.key  # eCLIP expert draws follow the cell seed
        if cell.method == "m3mix":
            assert init["init_from"] == str(RunFolder(clip[1].folder).last_checkpoint)
    assert all("${" not in arg for c in cells for arg in c.fit_args + c.test_args)
