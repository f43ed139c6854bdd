"""`benchmark --aggregate`: paired CIs against scipy, quality flags, unconverged cells, code versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from medalign.benchmark import aggregate, expand_grid, load_benchmark_config, run_grid
from medalign.benchmark.aggregate import MixedCodeVersions
from medalign.benchmark.runner import cell_status
from medalign.provenance import code_identity
from tests.benchmark.test_benchmark import _study

# per (method, seed) zero-shot F1 and whether that cell's probe converged
F1 = {"a": [0.40, 0.42, 0.45, 0.41, 0.43], "b": [0.44, 0.47, 0.48, 0.46, 0.45]}
UNCONVERGED = {("b", 4)}


def _launcher(args: list[str], log_file: Path) -> int:
    stage = args[3]
    folder = Path(args[args.index("--trainer.default_root_dir") + 1]) if stage == "fit" else \
        Path(args[args.index("--evaluation.output_dir") + 1]).parent
    method, seed = folder.parts[-3], int(folder.parts[-1].removeprefix("seed"))
    if stage == "test":
        out = folder / "eval" / "20260101-000000"
        out.mkdir(parents=True, exist_ok=True)
        converged = (method, seed) not in UNCONVERGED
        auc = 0.9 if converged else 0.1  # an unconverged probe's number is garbage
        out.joinpath("results.json").write_text(json.dumps({"tasks": [
            {"name": "zs", "metrics": {"f1": F1[method][seed]}},
            {"name": "probe", "metrics": {"auc@1": auc, "converged@1": converged, "per_class_converged": {"x": converged},
                                          "solver": "lbfgs"}},
        ]}))
    return 0


def _run(tmp_path: Path):
    cfg = load_benchmark_config(_study(tmp_path, seeds=[0, 1, 2, 3, 4], fractions=[1.0], metrics=["zs.f1", "probe.auc@1"], primary="zs.f1",
                                       questions=[{"question": "b?", "baseline": "a", "method": "b", "metric": "zs.f1"},
                                                  {"question": "probe?", "baseline": "a", "method": "b", "metric": "probe.auc@1"}]))
    cells = expand_grid(cfg)
    run_grid(cells, _launcher, progress=False)
    return cfg, cells


def test_questions_report_the_paired_t_interval_p_value_and_reading(tmp_path):
    cfg, cells = _run(tmp_path)
    result = aggregate(cfg, cells, plots=False)
    q = next(x for x in result["questions"] if x["metric"] == "zs.f1")
    a, b = np.array(F1["a"]), np.array(F1["b"])
    d = b - a
    low, high = sps.t.interval(0.95, 4, loc=d.mean(), scale=sps.sem(d))
    assert (q["difference_mean"], q["low"], q["high"]) == pytest.approx((d.mean(), low, high))
    assert q["p_value"] == pytest.approx(sps.ttest_rel(b, a).pvalue)
    assert q["n"] == 5 and q["reading"] == "higher"
    row = next(r for r in result["summary"] if r["method"] == "a" and r["metric"] == "zs.f1")
    assert (row["low"], row["high"]) == pytest.approx(sps.t.interval(0.95, 4, loc=a.mean(), scale=sps.sem(a)))
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "Δ [95 % CI]" in md and "| higher |" in md and "±" not in md
    assert "Primary metric (pre-declared in the study file): `zs.f1`" in md
    # two questions make a family of two: Holm multiplies the smaller p by 2, the larger by 1 (kept monotone)
    probe = next(x for x in result["questions"] if x["metric"] == "probe.auc@1")
    ps = sorted([q["p_value"], probe["p_value"]])
    expected = {ps[0]: min(1, 2 * ps[0]), ps[1]: max(min(1, 2 * ps[0]), ps[1])}
    assert q["p_holm"] == pytest.approx(expected[q["p_value"]]) and probe["p_holm"] == pytest.approx(expected[probe["p_value"]])
    assert "| Holm p |" in md and "adjusted for the 2 comparisons" in md


def test_unconverged_cells_are_marked_and_left_out_unless_asked(tmp_path):
    cfg, cells = _run(tmp_path)
    result = aggregate(cfg, cells, plots=False)
    probe_b = next(r for r in result["summary"] if r["method"] == "b" and r["metric"] == "probe.auc@1")
    assert probe_b["n"] == 4 and probe_b["mean"] == pytest.approx(0.9) and probe_b["unconverged_seeds"] == [4]
    zs_b = next(r for r in result["summary"] if r["method"] == "b" and r["metric"] == "zs.f1")
    assert zs_b["n"] == 5  # only the unconverged task's metrics are left out
    q = next(x for x in result["questions"] if x["metric"] == "probe.auc@1")
    assert q["n"] == 4
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "⚠ 1 unconverged" in md
    assert "| b | 1 | probe.converged@1 | 4/5 true ⚠ |" in md and "| a | 1 | probe.converged@1 | 5/5 true |" in md
    assert "| probe.solver | lbfgs ×5 |" in md  # string flags reach the table too
    assert result["flags"]["b/fraction1/seed4"]["probe.per_class_converged.x"] is False
    included = aggregate(cfg, cells, plots=False, include_unconverged=True)
    probe_b = next(r for r in included["summary"] if r["method"] == "b" and r["metric"] == "probe.auc@1")
    assert probe_b["n"] == 5 and probe_b["mean"] == pytest.approx((4 * 0.9 + 0.1) / 5)


def test_cells_record_their_code_and_mixed_versions_are_refused(tmp_path):
    cfg, cells = _run(tmp_path)
    result = aggregate(cfg, cells, plots=False)
    ident = result["identity"][cells[0].key]
    assert ident["code"]["version"] == code_identity()["version"] and ident["config_hash"] == cells[0].config_hash
    assert list(result["code_versions"]) == [code_identity()["code_version"]]
    # one cell finished by another code version
    done = cells[0].folder / "done.json"
    record = json.loads(done.read_text())
    record["code"] = {**record["code"], "code_version": "0.0.1+deadbeef"}
    done.write_text(json.dumps(record))
    with pytest.raises(MixedCodeVersions, match="0.0.1\\+deadbeef: 1 cells"):
        aggregate(cfg, cells, plots=False)
    mixed = aggregate(cfg, cells, plots=False, allow_mixed=True)
    assert len(mixed["code_versions"]) == 2
    assert "Mixed code versions" in (tmp_path / "out" / "benchmark.md").read_text()
    # the runner keeps the outdated cell by default and re-runs it when asked
    assert cell_status(cells[0], code_identity()["code_version"]) == "outdated"
    assert [o.status for o in run_grid(cells[:1], _launcher, progress=False)] == ["outdated"]
    assert [o.status for o in run_grid(cells[:1], _launcher, progress=False, rerun_outdated=True)] == ["done"]
    assert cell_status(cells[0], code_identity()["code_version"]) == "done"


def test_a_changed_training_manifest_makes_a_cell_stale(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,text,split\n")
    cfg = load_benchmark_config(_study(tmp_path, seeds=[0], fractions=[1.0], args=[f"--data.manifest={manifest}"]))
    cells = expand_grid(cfg)
    assert cells[0].manifest == str(manifest)
    run_grid(cells, _launcher, progress=False)
    assert json.loads((cells[0].folder / "done.json").read_text())["manifest_sha256"]
    assert cell_status(cells[0]) == "done"
    manifest.write_text("image,text,split\na.png,b,train\n")
    assert cell_status(cells[0]) == "stale"
