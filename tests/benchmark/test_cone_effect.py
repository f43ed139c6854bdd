"""The cone-effect study through `medalign benchmark`: the shipped 8 × 4 grid, a dry-run naming each
cell's manifest and weights folder (ok / MISSING), and a tiny grid (a transformers SigLIP folder and
an open_clip folder) that runs, resumes without work, reruns edited cells and aggregates Table 1 + Fig. 3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medalign.benchmark import cone_effect
from medalign.commands import benchmark

SHIPPED = "benchmark/cone_effect.yaml"
TINY_OPEN_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def test_shipped_study_is_the_papers_grid():
    study = cone_effect.load_study(SHIPPED)
    cells = cone_effect.expand_cells(study)
    assert len(cells) == 8 * 4
    assert list(study["datasets"]) == ["MIMIC-CXR", "HAM10000", "BRSET", "mBRSET", "COCO-QA", "Fakeddit", "Recipes5k", "DAQUAR"]
    assert list(study["backbones"]) == ["CLIP", "SigLIP", "BioMedCLIP", "MedSigLIP"]
    assert study["seeds"] == [42, 43, 44, 45, 46] and study["lambdas"] == [round(0.1 * i, 1) for i in range(11)]
    assert study["datasets"]["MIMIC-CXR"]["label_columns"] == ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    groups = [d["group"] for d in study["datasets"].values()]
    assert groups == ["Medical datasets"] * 4 + ["Natural datasets"] * 4  # the paper's Table 1 row blocks


def test_dry_run_lists_each_cells_dataset_and_weights_and_what_is_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the shipped relative paths: nothing exists here …
    (tmp_path / "models" / "medsiglip-448").mkdir(parents=True)  # … but the MedSigLIP folder
    result = benchmark.run(["--config", SHIPPED, "--dry-run"])
    text = capsys.readouterr().out
    assert len(result["cells"]) == 32 and not (tmp_path / "runs").exists()  # a dry run writes nothing
    blocks = text.split("\n\n# ")[1:]
    assert len(blocks) == 32
    for block, cell in zip(blocks, cone_effect.expand_cells(cone_effect.load_study(SHIPPED))):
        assert block.startswith(f"{cell.dataset} × {cell.backbone}: new")
        assert f"manifest: {cell.needs['manifest']} [MISSING]" in block
        state = "ok" if cell.backbone == "MedSigLIP" else "MISSING"
        assert f"weights: {cell.needs['weights']} [{state}]" in block
        assert "medalign gap-sweep --config gap_sweep_paper.yaml" in block
    # the natural references read their classes from prepare_report.json, which is missing too
    assert text.count("prepare_report: data/cocoqa/prepare_report.json [MISSING]") == 4
    assert "32 cells cannot run yet" in text and "  MISSING models/clip-vit-base-patch32" in text
    assert "  MISSING models/medsiglip-448" not in text


def test_only_and_the_alias(tmp_path, monkeypatch, capsys):
    from medalign.commands import cone_effect as alias

    monkeypatch.chdir(tmp_path)
    result = alias.run(["--config", SHIPPED, "--dry-run", "--only", "MedSigLIP"])
    assert result["cells"] == [f"{d}/MedSigLIP" for d in cone_effect.load_study(SHIPPED)["datasets"]]
    with pytest.raises(SystemExit, match="not datasets or backbones"):
        benchmark.run(["--config", SHIPPED, "--dry-run", "--only", "CheXpert"])
    with pytest.raises(SystemExit, match="use --only"):
        benchmark.run(["--config", SHIPPED, "--dry-run", "--methods", "clip"])


def _study(tmp_path: Path, **changes) -> dict:
    return {"kind": "cone_effect", "out": str(tmp_path / "runs"), "sweep": "gap_sweep.yaml", "lambdas": [0.0, 1.0], "seeds": [0],
            "args": ["--probe.max_epochs", "2", "--probe.patience", "1", "--cache_dir", str(tmp_path / "cache"),
                     "--references", "false", "--pca_points", "20", "--progress", "false"], **changes}  # fmt: skip


def test_study_errors_name_the_key(tmp_path, synthetic_dir):
    config = tmp_path / "study.yaml"
    datasets = {"x": {"manifest": "m.csv", "task": "multilabel", "label_columns": []}}
    config.write_text(json.dumps(_study(tmp_path, datasets=datasets, backbones={"b": {"weights": "w"}})))
    with pytest.raises(ValueError, match=r"datasets.x.label_columns must be a non-empty list .* 'from_report'"):
        cone_effect.load_study(config)
    config.write_text(json.dumps(_study(tmp_path, methods=[], datasets=datasets, backbones={"b": {"weights": "w"}})))
    with pytest.raises(ValueError, match=r"unknown keys \['methods'\]"):
        cone_effect.load_study(config)
    config.write_text(json.dumps({"kind": "cone-effect", "datasets": datasets}))
    with pytest.raises(SystemExit, match="kind 'cone-effect' is unknown"):
        benchmark.run(["--config", str(config), "--dry-run"])


def test_label_columns_from_the_prepare_report(tmp_path):
    manifest = tmp_path / "data" / "manifest.csv"
    study = _study(tmp_path, datasets={"q": {"manifest": str(manifest), "task": "multiclass", "label_columns": "from_report"}},
                   backbones={"b": {"weights": "w"}})
    (cell,) = cone_effect.expand_cells(study)
    assert cell.missing["prepare_report"] == str(tmp_path / "data" / "prepare_report.json")
    manifest.parent.mkdir()
    (manifest.parent / "prepare_report.json").write_text(json.dumps({"label_columns": ["red", "two"]}))
    (cell,) = cone_effect.expand_cells(study)
    assert cell.argv[cell.argv.index("--label_columns") + 1] == '["red", "two"]' and "prepare_report" not in cell.missing


def _open_clip_folder(folder: Path) -> Path:
    """open_clip's hf-hub layout (BiomedCLIP's): open_clip_config.json + open_clip_pytorch_model.bin."""
    open_clip = pytest.importorskip("open_clip")
    import torch

    folder.mkdir(parents=True)
    preprocess = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP, "preprocess_cfg": preprocess}))
    torch.manual_seed(0)
    model = open_clip.create_model(f"local-dir:{folder}", pretrained_image=False)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


@pytest.mark.slow
def test_tiny_grid_runs_resumes_and_aggregates(tmp_path, synthetic_dir, monkeypatch, capsys):
    from medalign.commands import gap_sweep
    from tests.evaluation.test_hf_clip_encoder import _save

    backbones = {"siglip": {"weights": str(_save(tmp_path / "siglip", "siglip"))},
                 "openclip": {"weights": str(_open_clip_folder(tmp_path / "openclip"))}}
    datasets = {"synthetic": {"manifest": str(synthetic_dir / "manifest.csv"), "task": "multilabel", "group": "Medical datasets",
                              "label_columns": ["Edema", "Pleural Effusion"]},
                "absent": {"manifest": str(tmp_path / "nope.csv"), "task": "multilabel", "label_columns": ["x"]}}
    config = tmp_path / "study.yaml"
    config.write_text(json.dumps(_study(tmp_path, datasets=datasets, backbones=backbones)))
    runs = tmp_path / "runs"

    result = benchmark.run(["--config", str(config)])
    out = capsys.readouterr().out
    assert [o["status"] for o in result["outcomes"]] == ["done", "done", "missing", "missing"]
    assert "2 run, 0 skipped (finished before), 2 waiting for inputs" in out and f"MISSING absent/siglip: missing {{'manifest'" in out
    for b in backbones:
        sweep = json.loads((runs / "synthetic" / b / "results.json").read_text())
        assert sweep["config"]["weights"] == backbones[b]["weights"] and sweep["result"]["lambdas"] == [0.0, 1.0]
        assert json.loads((runs / "synthetic" / b / "done.json").read_text())["config_hash"]
    table = (runs / "table1.md").read_text()
    r_text = {b: json.loads((runs / "synthetic" / b / "results.json").read_text())["result"]["geometry"][0]["R_text_test"]
              for b in backbones}  # fmt: skip
    assert "| Dataset | Text R siglip | Text R openclip | Image R siglip | Image R openclip |" in table
    assert "| **Medical datasets** |" in table and f"| synthetic | {r_text['siglip']:.3f} | {r_text['openclip']:.3f} |" in table
    assert "| absent | — | — | — | — |" in table
    assert (runs / "fig3_auc_vs_lambda.png").stat().st_size > 0
    curves = json.loads((runs / "fig3.json").read_text())
    assert set(curves) == {"synthetic/siglip", "synthetic/openclip"}
    for key, curve in curves.items():  # 2-epoch probes: the sweep's unconverged count is carried to Table 1's note
        n = json.loads((runs / key / "results.json").read_text())["result"]["n_unconverged"]
        assert curve["n_unconverged"] == n and (f"{key}: {n}" in table) == (n > 0)

    def no_work(argv):
        raise AssertionError(f"a finished cell ran again: {argv}")

    monkeypatch.setattr(gap_sweep, "run", no_work)
    again = benchmark.run(["--config", str(config), "--no-plots"])
    assert [o["status"] for o in again["outcomes"]] == ["skipped", "skipped", "missing", "missing"]
    assert benchmark.run(["--config", str(config), "--aggregate", "--no-plots"])["cells_done"] == 2

    # an edited λ grid makes both cells stale: the old runs are moved aside and the cells rerun
    ran = []

    def fake_sweep(argv):
        ran.append(argv)
        folder = Path(argv[argv.index("--output_dir") + 1])
        (folder / "results.json").write_text(next(folder.parent.glob(f"{folder.name}.stale-*/results.json")).read_text())

    monkeypatch.setattr(gap_sweep, "run", fake_sweep)
    config.write_text(json.dumps(_study(tmp_path, datasets=datasets, backbones=backbones, lambdas=[0.0, 0.5, 1.0])))
    assert "2 stale" in (benchmark.run(["--config", str(config), "--dry-run"]) and capsys.readouterr().out)
    benchmark.run(["--config", str(config), "--no-plots"])
    assert len(ran) == 2 and all(a[a.index("--lambdas") + 1] == "[0.0, 0.5, 1.0]" for a in ran)
    assert len(list((runs / "synthetic").glob("siglip.stale-*"))) == 1
    assert [o["status"] for o in benchmark.run(["--config", str(config), "--no-plots"])["outcomes"]][:2] == ["skipped"] * 2
