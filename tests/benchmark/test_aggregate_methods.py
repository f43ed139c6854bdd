"""`benchmark --aggregate --methods ...`: tables and questions of a subset of a study's methods."""

from __future__ import annotations

from medalign.benchmark import expand_grid, load_benchmark_config, run_grid
from medalign.commands.benchmark import run
from tests.benchmark.test_aggregate import _launcher
from tests.benchmark.test_benchmark import _study


def test_aggregate_with_methods_tabulates_and_asks_only_about_those(tmp_path, capsys):
    study = _study(tmp_path, seeds=[0, 1, 2, 3, 4], fractions=[1.0], metrics=["zs.f1"], primary="zs.f1",
                   methods=[{"name": "a"}, {"name": "b"}, {"name": "c"}],
                   questions=[{"question": "b?", "baseline": "a", "method": "b", "metric": "zs.f1"},
                              {"question": "c?", "baseline": "a", "method": "c", "metric": "zs.f1"}])
    cells = [c for c in expand_grid(load_benchmark_config(study)) if c.method != "c"]  # c was never run
    run_grid(cells, _launcher, progress=False)

    whole = run(["--config", str(study), "--aggregate", "--no-plots"])
    assert {r["method"] for r in whole["summary"]} >= {"a", "b"}
    assert [q["question"] for q in whole["questions"]] == ["b?", "c?"]
    assert "| c |" in (tmp_path / "out" / "benchmark.md").read_text()

    subset = run(["--config", str(study), "--aggregate", "--no-plots", "--methods", "a", "b"])
    assert {r["method"] for r in subset["summary"]} == {"a", "b"}
    assert [q["question"] for q in subset["questions"]] == ["b?"]
    assert subset["questions"][0]["n"] == 5
    table = (tmp_path / "out" / "benchmark.md").read_text()
    assert "| c |" not in table and "c?" not in table
