"""The cone-effect grid: the shipped study expands to 8 × 4 cells; dry-run names what each needs; a tiny run aggregates."""

from __future__ import annotations

import json

import pytest

from medalign.commands import cone_effect


def test_shipped_study_is_the_papers_grid():
    study = cone_effect.load_study("benchmark/cone_effect.yaml")
    cells = cone_effect.expand_cells(study)
    assert len(cells) == 8 * 4
    assert list(study["datasets"]) == ["MIMIC-CXR", "HAM10000", "BRSET", "mBRSET", "COCO-QA", "Fakeddit", "Recipes5k", "DAQUAR"]
    assert list(study["backbones"]) == ["CLIP", "SigLIP", "BioMedCLIP", "MedSigLIP"]
    assert study["seeds"] == [42, 43, 44, 45, 46] and study["lambdas"] == [round(0.1 * i, 1) for i in range(11)]
    text = cone_effect.dry_run(cells)
    assert text.count("MISSING") == 2 * 32 and "data/mbrset/manifest.csv" in text and "models/medsiglip-448" in text


def test_run_skip_and_aggregate_on_a_tiny_transformers_model(tmp_path, synthetic_dir, capsys):
    from tests.evaluation.test_hf_clip_encoder import _save

    folder = _save(tmp_path / "siglip", "siglip")
    study = {"out": str(tmp_path / "runs"), "sweep": "gap_sweep.yaml", "lambdas": [0.0, 1.0], "seeds": [0],
             "args": ["--probe.max_epochs", "2", "--probe.patience", "1", "--cache_dir", str(tmp_path / "cache"),
                      "--references", "false", "--pca_points", "20"],
             "datasets": {"synthetic": {"manifest": str(synthetic_dir / "manifest.csv"), "task": "multilabel",
                                        "label_columns": ["Edema", "Pleural Effusion"]},
                          "absent": {"manifest": str(tmp_path / "nope.csv"), "task": "multilabel", "label_columns": ["x"]}},
             "backbones": {"tiny": {"weights": str(folder)}}}  # fmt: skip
    config = tmp_path / "study.yaml"
    config.write_text(json.dumps(study))
    result = cone_effect.run(["--config", str(config), "--no-plots"])
    assert result["cells_done"] == 1 and result["cells"] == 2
    assert "SKIP absent × tiny: missing" in capsys.readouterr().out
    assert "| synthetic | " in (tmp_path / "runs" / "table1.md").read_text()
    cone_effect.run(["--config", str(config), "--no-plots"])
    assert "skip synthetic × tiny" in capsys.readouterr().out  # resumable: a finished cell is not rerun
    assert json.loads((tmp_path / "runs" / "fig3.json").read_text())["synthetic/tiny"]["lambdas"] == [0.0, 1.0]


def test_fig4_steps_study_expands_with_a_max_steps_axis():
    from medalign.benchmark import expand_grid, load_benchmark_config

    cfg = load_benchmark_config("benchmark/fig4_steps.yaml")
    cells = expand_grid(cfg)
    assert len(cells) == 8 * 3
    steps = {c.method: next(a for a in c.fit_args if a.startswith("--trainer.max_steps=")) for c in cells}
    assert steps["clip_1k"] == "--trainer.max_steps=1000" and steps["eclip_12k"] == "--trainer.max_steps=12000"
    assert any("eclip_swin.yaml" in a for c in cells if c.method.startswith("eclip") for a in c.fit_args)
