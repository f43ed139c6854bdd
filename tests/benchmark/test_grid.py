"""Every random stream of a benchmark cell derives from the cell seed (checked on the resolved config)."""

from __future__ import annotations

import sys

import pytest

from medalign.benchmark import expand_grid, load_benchmark_config
from medalign.benchmark.grid import SEED_OPTIONS, seed_args
from medalign.training.cli import MedAlignCLI, cli_main
from tests.benchmark.test_benchmark import CONF, _study


@pytest.fixture
def _parse_only(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(MedAlignCLI, "instantiate_classes", lambda self: None)  # parse and validate types only


def _resolved(args: tuple[str, ...]) -> dict:
    args = list(args[1:])
    if "--ckpt_path" in args:
        i = args.index("--ckpt_path")
        del args[i : i + 2]
    return cli_main(args, run=False).config


def _streams(fit: dict, test: dict) -> dict[str, object]:
    """Each random stream's seed as the CLI resolved it (fit and test must agree on training ones)."""
    init = fit["model"]["init_args"]
    assert test["seed_everything"] == fit["seed_everything"] and test["data"]["seed"] == fit["data"]["seed"]
    probes = [t for t in test["evaluation"]["tasks"] if getattr(t, "type", None) == "linear_probe" or
              (isinstance(t, dict) and t.get("type") == "linear_probe")]
    return {
        "training": fit["seed_everything"], "data": fit["data"]["seed"],
        "expert": init.get("expert_seed"),  # expert draws, mixup λ and random heatmaps (eCLIP)
        "probe": [t["seed"] if isinstance(t, dict) else t.seed for t in probes],
    }


def test_two_cells_with_different_seeds_differ_in_every_stream(tmp_path, _parse_only):
    study = _study(tmp_path, seeds=[3, 7], fractions=[1.0], evaluation="eval/benchmark.yaml", questions=[], metrics=[],
                   methods=[{"name": "clip"},
                            {"name": "eclip", "configs": [str(CONF / "tiny_eclip.yaml")]},
                            {"name": "random", "configs": [str(CONF / "tiny_eclip.yaml"), "ablations/random_heatmaps.yaml"]}])
    cells = {(c.method, c.seed): c for c in expand_grid(load_benchmark_config(study))}
    for method in ("clip", "eclip", "random"):
        s3, s7 = (_streams(_resolved(cells[(method, s)].fit_args), _resolved(cells[(method, s)].test_args)) for s in (3, 7))
        assert s3["training"] == 3 and s7["training"] == 7
        for stream in ("training", "data", "probe"):
            assert s3[stream] != s7[stream], (method, stream)
        assert s3["probe"] == [3] and s7["probe"] == [7]
        if method == "clip":
            assert s3["expert"] is None  # CLIP has no expert stream
        else:
            assert (s3["expert"], s7["expert"]) == (3, 7), method
    # the probe seed override keeps the evaluation config's other tasks
    test = _resolved(cells[("eclip", 3)].test_args)
    assert [t["type"] if isinstance(t, dict) else t.type for t in test["evaluation"]["tasks"]] == ["zero_shot", "retrieval", "linear_probe"]


def test_seed_args_names_every_stream_once():
    both, test = seed_args(5, "medalign.training.eclip.ECLIPModule", [{"type": "zero_shot"}, {"type": "linear_probe", "seed": 0}])
    assert [both[i] for i in range(0, len(both), 2)] == list(SEED_OPTIONS.values())
    assert set(both[1::2]) == {"5"}
    assert test == ('--evaluation.tasks=[{"type": "zero_shot"}, {"type": "linear_probe", "seed": 5}]',)
    both, test = seed_args(5, "medalign.training.module.ContrastiveModule", None)
    assert SEED_OPTIONS["expert"] not in both and test == ()


def test_the_positive_control_study_parses_and_declares_its_primary_metric(_parse_only):
    cfg = load_benchmark_config("benchmark/eclip_positive_control.yaml")
    assert cfg.primary == "zero_shot.macro_f1" and len(cfg.seeds) >= 5
    assert len(cfg.methods) == 18 and len(expand_grid(cfg)) == 18 * len(cfg.seeds)  # 14 + 3 isolation arms + oracle control
    cells = {c.method: c for c in expand_grid(cfg) if c.seed == 1}
    isolation = {m: _resolved(cells[m].fit_args)["model"]["init_args"]
                 for m in ("eclip_inf_oracle", "eclip_inf_g25_no_mixup", "naive_inf_g25", "random_inf_oracle")}
    for oracle in ("eclip_inf_oracle", "random_inf_oracle"):
        assert isolation[oracle]["use_curriculum"] is False
        assert _resolved(cells[oracle].fit_args)["data"]["synthetic"]["heatmap_fraction"] == 1.0
    assert isolation["random_inf_oracle"]["random_heatmaps"] is True and not isolation["eclip_inf_oracle"].get("random_heatmaps")
    assert isolation["eclip_inf_g25_no_mixup"]["mixup_alpha"] == 0.0 and isolation["eclip_inf_g25_no_mixup"]["method"] == "eclip"
    assert isolation["naive_inf_g25"]["method"] == "naive"
    kinds = {"clip_inf": None, "eclip_inf_g25": False, "random_inf_g25": True, "template_inf_g25": False,
             "clip_red": None, "eclip_red_g5": False}
    for method, random_maps in kinds.items():
        fit, test = _resolved(cells[method].fit_args), _resolved(cells[method].test_args)
        init = fit["model"]["init_args"]
        assert fit["seed_everything"] == 1
        assert init.get("random_heatmaps") == random_maps, method
        assert test["trainer"]["callbacks"][0]["class_path"].endswith("EarlyStopping")
        assert fit["data"]["label_columns"][3] == "Nodule"  # the gaze test bed's classes
        if method.startswith("template"):
            assert fit["data"]["manifest"].endswith("manifest_template_gaze.csv") and fit["data"]["synthetic"] is None
            continue
        spec = fit["data"]["synthetic"]
        assert spec["source"] == "gaze" and spec["manifest"] == fit["data"]["manifest"]  # generated where it is read
        if "_red" in method:  # redundant: reports state every location, no distractors, no shortcut
            assert (spec["shortcut"], spec["distractors"], spec["location_omitted"]) == (0.0, 0.0, 0.0)
        else:                 # informative: the test bed's defaults
            assert not {"shortcut", "distractors", "location_omitted"} & set(spec)
        if method.endswith("g25"):
            assert spec["heatmap_fraction"] == 0.25

# Studies that reproduce a paper's grid keep the paper's seeds and have no single primary metric.
PAPER_GRIDS = {"eclip_table1", "eclip_table4", "fig4_steps", "cone_effect"}


def test_every_shipped_study_has_five_paired_seeds_and_a_declared_primary_metric():
    from medalign.paths import CONFIG_DIR

    studies = sorted(p.stem for p in (CONFIG_DIR / "benchmark").glob("*.yaml"))
    assert {"methods", "demo", "openi", "eclip_positive_control", "siglip_bias"} <= set(studies)
    for name in studies:
        if name in PAPER_GRIDS:
            continue
        cfg = load_benchmark_config(f"benchmark/{name}.yaml")
        assert len(set(cfg.seeds)) >= 5, f"{name}: {cfg.seeds}"
        assert cfg.primary in cfg.metrics, name
        assert all(q.metric in cfg.metrics for q in cfg.questions), name
        names = {m.name for m in cfg.methods}
        assert all({q.baseline, q.method} <= names for q in cfg.questions), name


def test_a_seed_subset_copy_of_a_study_names_the_same_cells(tmp_path):
    """docs/benchmark.md: copies of a study file that differ only in `seeds` split its grid without overlap."""
    import yaml

    from medalign.paths import CONFIG_DIR

    raw = yaml.safe_load((CONFIG_DIR / "benchmark" / "methods.yaml").read_text())
    whole = {c.key: c for c in expand_grid(load_benchmark_config("benchmark/methods.yaml"))}
    parts = []
    for seeds in ([0, 1, 2], [3, 4]):
        copy = tmp_path / f"methods_{seeds[0]}.yaml"
        copy.write_text(yaml.safe_dump({**raw, "seeds": seeds}))
        parts.append({c.key: c for c in expand_grid(load_benchmark_config(copy))})
    assert not set(parts[0]) & set(parts[1]) and set(parts[0]) | set(parts[1]) == set(whole)
    for part in parts:
        for key, cell in part.items():
            assert (cell.config_hash, cell.folder, cell.fit_args, cell.test_args) == (
                whole[key].config_hash, whole[key].folder, whole[key].fit_args, whole[key].test_args), key
