"""`medalign benchmark`: grid expansion, resume-skip, failed cells, aggregation by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from medalign.benchmark import aggregate, expand_grid, load_benchmark_config, run_grid
from medalign.benchmark.aggregate import collect_results, summarise
from medalign.benchmark.runner import cell_status

CONF = Path(__file__).resolve().parents[1] / "conf"


def _study(tmp_path: Path, **changes) -> Path:
    study = {
        "name": "t", "base": str(CONF / "tiny.yaml"), "out": str(tmp_path / "out"),
        "seeds": [0, 1, 2], "fractions": [0.5, 1.0], "args": ["--trainer.max_epochs=1"],
        "methods": [{"name": "a"}, {"name": "b", "args": ["--model.init_args.lr", "0.01"]}],
        "metrics": ["zs.f1"],
        "questions": [{"question": "b over a?", "baseline": "a", "method": "b", "metric": "zs.f1"}],
        **changes,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    return path


# Per-cell fake metric: a known function of (method, fraction, seed), so means are checkable by hand.
VALUES = {("a", 0.5): [0.1, 0.2, 0.3], ("a", 1.0): [0.4, 0.5, 0.9], ("b", 0.5): [0.2, 0.4, 0.3], ("b", 1.0): [0.5, 0.5, 0.5]}


def _fake_launcher(fail: set[str] = frozenset(), calls: list | None = None):
    """Pretends to be `fit` / `test`: `test` writes a results.json with the cell's known value."""

    def launch(args: list[str], log_file: Path) -> int:
        stage = args[3]  # python -m medalign <stage>
        folder = Path(args[args.index("--trainer.default_root_dir") + 1]) if stage == "fit" else \
            Path(args[args.index("--evaluation.output_dir") + 1]).parent
        method, fraction, seed = folder.parts[-3], float(folder.parts[-2].removeprefix("fraction")), int(folder.parts[-1].removeprefix("seed"))
        if calls is not None:
            calls.append((stage, method, fraction, seed))
        if f"{method}/{fraction:g}/{seed}" in fail and stage == "fit":
            log_file.write_text("Traceback: boom\n")
            return 1
        if stage == "test":
            out = folder / "eval" / "20260101-000000"
            out.mkdir(parents=True, exist_ok=True)
            value = VALUES[(method, fraction)][seed]
            out.joinpath("results.json").write_text(json.dumps(
                {"tasks": [{"name": "zs", "metrics": {"f1": value, "sweep": {"x": 1.0}}}]}))
        return 0

    return launch


def test_grid_expands_methods_fractions_seeds_with_their_overrides(tmp_path):
    cfg = load_benchmark_config(_study(tmp_path))
    cells = expand_grid(cfg)
    assert len(cells) == 2 * 2 * 3
    assert len({c.folder for c in cells}) == 12 and len({c.config_hash for c in cells}) == 12
    b = next(c for c in cells if c.method == "b" and c.seed == 2 and c.fraction == 0.5)
    fit = list(b.fit_args)
    assert fit[0] == "fit" and fit[fit.index("--model.init_args.lr") + 1] == "0.01"
    assert fit[fit.index("--seed_everything") + 1] == "2" and fit[fit.index("--data.train_fraction") + 1] == "0.5"
    # the shared args come before the method's, so a method can override them
    assert fit.index("--trainer.max_epochs=1") < fit.index("--model.init_args.lr")
    assert b.test_args[-1].endswith("seed2/checkpoints/last.ckpt")
    assert b.commands()[0].split()[1:4] == ["-m", "medalign", "fit"]


def test_editing_a_config_file_changes_the_hash(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text((CONF / "tiny.yaml").read_text())
    cfg = load_benchmark_config(_study(tmp_path, base=str(base)))
    before = [c.config_hash for c in expand_grid(cfg)]
    base.write_text(base.read_text() + "\n# edited\n")
    after = [c.config_hash for c in expand_grid(cfg)]
    assert all(x != y for x, y in zip(before, after))


@pytest.mark.parametrize("bad, message", [
    ({"fractions": [0.0]}, "fractions must be in"),
    ({"seeds": [1, 1]}, "distinct"),
    ({"methods": [{"name": "a"}, {"name": "a"}]}, "unique"),
    ({"questions": [{"question": "?", "baseline": "a", "method": "zzz", "metric": "m"}]}, "unknown methods \\['zzz'\\]"),
    ({"typo": 1}, "unknown keys \\['typo'\\]"),
    ({"primary": "zz.x"}, "primary metric 'zz.x' must be one of metrics"),
])
def test_bad_study_configs_name_the_key(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        load_benchmark_config(_study(tmp_path, **bad))


def test_finished_cells_are_skipped_and_failed_cells_do_not_stop_the_grid(tmp_path):
    cfg = load_benchmark_config(_study(tmp_path))
    cells = expand_grid(cfg)
    calls: list = []
    outcomes = run_grid(cells, _fake_launcher(fail={"b/1/1"}, calls=calls), progress=False)
    assert [o.status for o in outcomes].count("failed") == 1
    assert [o.status for o in outcomes].count("done") == 11
    failed = next(c for c in cells if c.key == "b/fraction1/seed1")
    assert json.loads((failed.folder / "failed.json").read_text())["stage"] == "fit"
    assert ("test", "b", 1.0, 1) not in calls  # no test after a failed fit
    # second run: only the failed cell runs again
    calls.clear()
    outcomes = run_grid(cells, _fake_launcher(calls=calls), progress=False)
    assert sorted({c[1:] for c in calls}) == [("b", 1.0, 1)]
    assert [o.status for o in outcomes].count("skipped") == 11
    assert all(cell_status(c) == "done" for c in cells)


def test_a_changed_cell_reruns_and_the_old_run_is_kept_aside(tmp_path):
    cfg = load_benchmark_config(_study(tmp_path, seeds=[0], fractions=[1.0]))
    run_grid(expand_grid(cfg), _fake_launcher(), progress=False)
    changed = load_benchmark_config(_study(tmp_path, seeds=[0], fractions=[1.0], args=["--trainer.max_epochs=2"]))
    calls: list = []
    run_grid(expand_grid(changed), _fake_launcher(calls=calls), progress=False)
    assert len(calls) == 4  # fit + test for both methods
    assert list((tmp_path / "out" / "a" / "fraction1").glob("seed0.stale-*"))


def test_aggregation_matches_hand_computed_means_sds_and_paired_differences(tmp_path):
    cfg = load_benchmark_config(_study(tmp_path))
    cells = expand_grid(cfg)
    run_grid(cells, _fake_launcher(fail={"a/0.5/2"}), progress=False)
    result = aggregate(cfg, cells, plots=True)
    rows = {(r["method"], r["fraction"]): r for r in result["summary"] if r["metric"] == "zs.f1"}
    # a at 0.5: seed 2 failed → values 0.1, 0.2: mean 0.15, sd sqrt(((0.05)^2 * 2) / 1)
    assert rows[("a", 0.5)]["n"] == 2 and rows[("a", 0.5)]["mean"] == pytest.approx(0.15)
    assert rows[("a", 0.5)]["sd"] == pytest.approx(math.sqrt(0.005))
    # a at 1.0: 0.4, 0.5, 0.9 → mean 0.6, sd sqrt((0.04 + 0.01 + 0.09) / 2) = sqrt(0.07)
    assert rows[("a", 1.0)]["mean"] == pytest.approx(0.6) and rows[("a", 1.0)]["sd"] == pytest.approx(math.sqrt(0.07))
    assert rows[("b", 1.0)]["sd"] == pytest.approx(0.0)
    assert not any(r["metric"].startswith("zs.sweep") for r in result["summary"])
    q = {x["fraction"]: x for x in result["questions"]}
    # paired b − a at 1.0: 0.1, 0.0, −0.4 → mean −0.1, sd sqrt((0.04 + 0.01 + 0.09)/2)
    assert q[1.0]["difference_mean"] == pytest.approx(-0.1) and q[1.0]["difference_sd"] == pytest.approx(math.sqrt(0.07))
    assert q[0.5]["n"] == 2  # the failed seed has no pair
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "a/fraction0.5/seed2`: failed" in md and "11 of 12 finished" in md
    # mean 0.6, t-based 95 % CI 0.6 ± t(0.975, 2)·sqrt(0.07)/sqrt(3) = 0.6 ± 0.657
    assert "0.600 [-0.057, 1.257] (n=3)" in md
    assert q[1.0]["reading"] == "no detectable difference" and q[0.5]["reading"] == "too few seeds (< 3)"
    csv_lines = (tmp_path / "out" / "benchmark.csv").read_text().splitlines()
    assert csv_lines[0] == "method,fraction,metric,mean,low,high,sd,n,values,unconverged_seeds" and len(csv_lines) == 1 + 4
    assert all(Path(p).is_file() for p in result["plots"])
    assert {Path(p).name for p in result["plots"]} == {"benchmark_bars.png", "benchmark_fractions.png", "benchmark_questions.png"}


def test_collect_ignores_cells_without_results(tmp_path):
    cfg = load_benchmark_config(_study(tmp_path))
    cells = expand_grid(cfg)
    metrics, status = collect_results(cells)
    assert metrics == {} and set(status.values()) == {"missing"}
    assert summarise(cells, metrics) == []


@pytest.mark.slow
def test_a_real_cell_trains_tests_and_aggregates(tmp_path, synthetic_dir):
    study = _study(
        tmp_path, seeds=[0], fractions=[0.5], methods=[{"name": "clip"}], questions=[], metrics=[],
        evaluation=None,
        args=["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
              f"--data.manifest={synthetic_dir / 'manifest.csv'}", "--evaluation.tasks=[{type: retrieval}]"],
    )
    cfg = load_benchmark_config(study)
    cells = expand_grid(cfg)
    outcomes = run_grid(cells, progress=False)
    assert [o.status for o in outcomes] == ["done"], (cells[0].folder / "log.txt").read_text()[-2000:]
    result = aggregate(cfg, cells, plots=False)
    names = {r["metric"] for r in result["summary"]}
    assert {"retrieval.i2t_R@1", "retrieval.i2t_median_rank"} <= names
    assert (cells[0].folder / "checkpoints" / "last.ckpt").is_file()
