"""The shipped paper studies expand to the paper's grids: eCLIP Table 1 (3 towers × 6 rows × 3 seeds)
and Fig. 4's training-steps axis; every config they layer exists and fine-tunes start from their CLIP cell."""

from __future__ import annotations

import yaml

from medalign.benchmark import expand_grid, load_benchmark_config
from medalign.paths import resolve_config


def _paper_tasks() -> set[str]:
    return {t["name"] for t in yaml.safe_load(resolve_config("eval/paper.yaml").read_text())["evaluation"]["tasks"]}


def test_eclip_table1_study_is_the_papers_grid():
    cfg = load_benchmark_config("benchmark/eclip_table1.yaml")
    rows = ["clip", "naive", "dacl", "m3mix", "eclip", "eclip_p"]
    assert [m.name for m in cfg.methods] == [f"{r}_{t}" for t in ("swin", "vit_s", "vit_b") for r in rows]
    assert cfg.seeds == [0, 1, 2] and cfg.fractions == [1.0] and cfg.evaluation == "eval/paper.yaml"
    tasks = {m.split(".")[0] for m in cfg.metrics}
    assert tasks == {"chexpert_5x200", "mimic_5x200", "rsna_pneumonia", "cxr14_14x100", "openi_retrieval"} <= _paper_tasks()
    cells = expand_grid(cfg)  # resolves every layered config: a missing file raises here
    assert len(cells) == 18 * 3
    order = [c.key for c in cells]
    for c in cells:
        init = [a for a in c.fit_args if a.startswith("--model.init_args.init_from=")]
        if c.method.startswith(("m3mix", "eclip_p")):  # fine-tunes of the CLIP cell of the same tower and seed
            tower = c.method.split("_", 2)[-1] if c.method.startswith("eclip_p") else c.method.split("_", 1)[1]
            clip = f"clip_{tower}/fraction1/seed{c.seed}"
            assert init == [f"--model.init_args.init_from={cfg.out}/{clip}/checkpoints/last.ckpt"]
            assert order.index(clip) < order.index(c.key)  # the CLIP cell runs first
        else:
            assert not init
        assert "--data.tokenizer=models/Bio_ClinicalBERT" in c.fit_args  # the paper's text tower, not BERT from scratch


def test_fig4_steps_study_trains_the_papers_text_tower():
    cfg = load_benchmark_config("benchmark/fig4_steps.yaml")
    for cell in expand_grid(cfg):
        assert "--data.tokenizer=models/Bio_ClinicalBERT" in cell.fit_args
        assert "--model.init_args.model.text_model=models/Bio_ClinicalBERT" in cell.fit_args


def test_fig4_steps_axis_expands_methods_and_questions():
    cfg = load_benchmark_config("benchmark/fig4_steps.yaml")
    assert cfg.steps == [1000, 2000, 5000, 12000]
    assert [m.name for m in cfg.methods] == [f"{m}_steps{n}" for m in ("clip", "eclip") for n in cfg.steps]
    assert [(m.series, m.steps) for m in cfg.methods][:2] == [("clip", 1000), ("clip", 2000)]
    cells = expand_grid(cfg)
    assert len(cells) == 8 * 3
    for c in cells:
        steps = [a for a in c.fit_args if a.startswith("--trainer.max_steps=")]
        assert steps == [f"--trainer.max_steps={c.method.rsplit('steps', 1)[1]}"]  # once, after every config and arg
        assert ("--config" in c.fit_args and "eclip_swin.yaml" in c.fit_args) == c.method.startswith("eclip")
    assert [(q.baseline, q.method) for q in cfg.questions] == [(f"clip_steps{n}", f"eclip_steps{n}") for n in cfg.steps]


def test_steps_axis_errors_and_the_steps_plot(tmp_path, monkeypatch):
    import json

    import pytest

    from medalign.benchmark import plots
    from tests.evaluation.plots.checks import capture, legend_hidden_marks, written

    study = {"name": "s", "base": "demo.yaml", "methods": [{"name": "a"}, {"name": "b"}], "steps": [10, 10]}
    (tmp_path / "s.yaml").write_text(json.dumps(study))
    with pytest.raises(ValueError, match="steps must be distinct positive step counts"):
        load_benchmark_config(tmp_path / "s.yaml")
    (tmp_path / "s.yaml").write_text(json.dumps({**study, "steps": [100, 10]}))
    cfg = load_benchmark_config(tmp_path / "s.yaml")
    summary = [{"method": m.name, "fraction": 1.0, "metric": "zero_shot.macro_f1", "sd": 0.01,
                "mean": 0.1 * m.steps ** 0.5 + (m.series == "b")} for m in cfg.methods]
    figures = capture(monkeypatch, plots)
    assert written(plots.plot_steps_lines(summary, cfg, ["zero_shot.macro_f1"], tmp_path / "steps.png"))
    (fig,) = figures
    lines = [line for line in fig.axes[0].get_lines() if line.get_marker() == "o"]
    assert [list(line.get_xdata()) for line in lines] == [[10, 100], [10, 100]]  # one line per method, steps sorted
    assert [float(line.get_ydata()[1]) for line in lines] == pytest.approx([1.0, 2.0])
    assert legend_hidden_marks(fig) == 0


def test_eclip_table4_study_has_one_method_per_row_config():
    cfg = load_benchmark_config("benchmark/eclip_table4.yaml")
    rows = sorted(p.stem for p in resolve_config("table4/base.yaml").parent.glob("*.yaml"))
    assert sorted(m.name for m in cfg.methods) == rows
    assert all(m.configs == (f"table4/{m.name}.yaml",) for m in cfg.methods)
    assert len(expand_grid(cfg)) == len(rows) * 3 and cfg.base == "eclip_swin.yaml"
    assert {m.split(".")[0] for m in cfg.metrics} <= _paper_tasks()
