"""`train.py test` end to end: a YAML suite on a tiny fitted checkpoint, results files, cached second run."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from medalign.training.cli import cli_main
from medalign.evaluation.encoders import MedAlignEncoder
from medalign.run_folder import file_sha256
from tests.helpers import TINY
from tests.helpers import fit_tiny as _fit
from tests.reference import brute_force_retrieval, f1_from_confusion


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _suite(tmp_path, manifest):
    prompts = tmp_path / "edema_binary.json"
    prompts.write_text(json.dumps({"Edema": ["pulmonary edema", "interstitial edema"], "No Edema": ["no edema", "clear lungs"]}))
    tasks = [
        {"type": "zero_shot", "aggregation": "max"},
        {"type": "binary_zero_shot", "name": "edema", "label": "Edema", "prompts": str(prompts)},
        {"type": "retrieval", "ks": [1, 5]},
        {"type": "linear_probe", "fractions": [0.1, 1.0]},
        {"type": "report_retrieval", "k": 3},
    ]
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump({"evaluation": {"tasks": tasks, "cache_dir": str(tmp_path / "cache"),
                                                   "output_dir": str(tmp_path / "eval"), "progress": False}}))
    return path


@pytest.mark.slow
def test_test_subcommand_runs_the_suite_and_second_run_hits_the_cache(tmp_path, synthetic_dir, monkeypatch):
    manifest = synthetic_dir / "manifest.csv"
    _fit(tmp_path, synthetic_dir, "--trainer.max_steps", "2")
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    calls = {"images": 0, "texts": 0}
    encode_images, encode_texts = MedAlignEncoder.encode_images, MedAlignEncoder.encode_texts

    def count_images(self, images):
        calls["images"] += 1
        return encode_images(self, images)

    def count_texts(self, texts):
        calls["texts"] += 1
        return encode_texts(self, texts)

    monkeypatch.setattr(MedAlignEncoder, "encode_images", count_images)
    monkeypatch.setattr(MedAlignEncoder, "encode_texts", count_texts)
    args = ["test", "--config", TINY, "--config", str(_suite(tmp_path, manifest)), "--data.manifest", str(manifest),
            "--trainer.logger", "false", "--ckpt_path", str(ckpt)]
    first = cli_main(args).evaluation_results
    assert calls["images"] > 0 and calls["texts"] > 0

    folders = sorted((tmp_path / "eval").iterdir())
    assert len(folders) == 1
    out = folders[0]
    saved = json.loads((out / "results.json").read_text())
    assert saved["checkpoint"] == str(ckpt) and saved["encoder"]["fingerprint"] == file_sha256(ckpt)
    tasks = {t["name"]: t for t in saved["tasks"]}
    assert list(tasks) == ["zero_shot", "edema", "retrieval", "linear_probe", "report_retrieval"]
    assert all(t["manifest_sha256"] == file_sha256(manifest) and t["n"] > 0 for t in tasks.values())
    n_test = tasks["retrieval"]["n"]
    # retrieval on the cached test-split embeddings, recomputed by the adversarial-sort brute force
    cached = [f.parent for f in (tmp_path / "cache").glob("*/image.npy")
              if json.loads((f.parent / "key.json").read_text())["split"] == "test"]
    assert len(cached) == 1
    want, _ = brute_force_retrieval(np.load(cached[0] / "image.npy"), np.load(cached[0] / "text.npy"),
                                    json.loads((cached[0] / "texts.json").read_text()), ks=(1, 5))
    for key, value in want.items():
        assert tasks["retrieval"]["metrics"][key] == pytest.approx(value, abs=1e-9), key
    zero_shot = tasks["zero_shot"]["metrics"]
    accuracy, macro_f1, _ = f1_from_confusion(zero_shot["confusion_matrix"])  # independent formula
    assert zero_shot["macro_f1"] == pytest.approx(macro_f1) and zero_shot["accuracy"] == pytest.approx(accuracy)
    assert set(tasks["linear_probe"]["metrics"]["sweep"]) == {"0.1", "1"}
    assert (out / tasks["linear_probe"]["files"]["plot"]).is_file()
    lines = (out / "report_retrieval.jsonl").read_text().splitlines()
    assert len(lines) == n_test and len(json.loads(lines[0])["reports"]) == 3
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"task", "dataset", "n", "metric", "value"} <= set(rows[0]) and any(r["metric"] == "i2t_R@5" for r in rows)
    assert "| retrieval | manifest.csv" in (out / "results.md").read_text()

    calls.update(images=0, texts=0)
    second = cli_main(args).evaluation_results
    assert calls == {"images": 0, "texts": 0}  # every embedding, prompts included, came from the cache
    assert json.dumps(second["tasks"]) == json.dumps(first["tasks"])  # (as text: NaN AUCs compare equal)
    assert len(list((tmp_path / "eval").iterdir())) == 2

    # no tasks configured: the default suite on the data's test split, results in the checkpoint's run folder
    # (<run>/eval/<timestamp>), whatever --trainer.default_root_dir says
    calls.update(images=0, texts=0)
    default = cli_main(["test", "--config", TINY, "--data.manifest", str(manifest), "--trainer.logger", "false",
                        "--trainer.default_root_dir", str(tmp_path / "root"), "--ckpt_path", str(ckpt),
                        "--evaluation.cache_dir", str(tmp_path / "cache"), "--evaluation.progress", "false"])
    names = [t["name"] for t in default.evaluation_results["tasks"]]
    assert names == ["zero_shot", "retrieval", "linear_probe"]
    assert calls == {"images": 0, "texts": 0}  # same checkpoint, manifest and prompts: all cached
    assert len(list((tmp_path / "eval").glob("*/results.json"))) == 3 and not (tmp_path / "root" / "eval").exists()



@pytest.mark.parametrize("name", ["eval/default.yaml", "eval/paper.yaml", "eval/open_clip.yaml", "eval/benchmark.yaml"])
def test_shipped_eval_configs_parse(name, synthetic_dir):
    from medalign.evaluation.suite import Task
    from medalign.paths import CONFIG_DIR

    cli = cli_main(["--config", TINY, "--config", name, "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    suite = cli.config_init["evaluation"]
    raw = yaml.safe_load((CONFIG_DIR / name).read_text())["evaluation"]
    if "tasks" in raw:
        assert all(isinstance(t, Task) for t in suite.tasks)
        assert [t.type for t in suite.tasks] == [t["type"] for t in raw["tasks"]]
    else:
        assert suite.encoder == "open_clip" and suite.tasks is None


def test_paper_config_runs_the_eclip_protocols(synthetic_dir):
    """eval/paper.yaml: the eCLIP paper's tasks (§4.1–4.4) with its values, each dataset prepared by a listed command."""
    import re

    from medalign.data.prompts import load_prompts
    from medalign.paths import CONFIG_DIR, resolve_config
    from medalign.prepare import ADAPTERS, nih
    from medalign.prepare.subsets import COMPETITION_5

    cli = cli_main(["--config", TINY, "--config", "eval/paper.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv")], run=False)
    tasks = {t.name: t for t in cli.config_init["evaluation"].tasks}
    zero_shot = {n: t for n, t in tasks.items() if t.type == "zero_shot"}
    assert set(zero_shot) == {"chexpert_5x200", "mimic_5x200", "cxr14_14x100"}
    assert all(t.aggregation == "embedding" for t in zero_shot.values())  # mean prompt embedding (§4.2)
    assert list(load_prompts(resolve_config(zero_shot["chexpert_5x200"].prompts, (".json",)))) == COMPETITION_5
    assert list(load_prompts(resolve_config(zero_shot["cxr14_14x100"].prompts, (".json",)))) == nih.FINDINGS
    assert tasks["rsna_pneumonia"].type == "binary_zero_shot" and tasks["rsna_pneumonia"].label == "Pneumonia"

    probes = {n: t for n, t in tasks.items() if t.type == "linear_probe"}
    assert set(probes) == {"cxr8_probe", "rsna_probe", "openi5_probe"}
    assert all(t.fractions == [0.01, 0.1, 1.0] and (t.train_split, t.split) == ("train", "test") for t in probes.values())
    chestx_ray8 = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax"]
    assert probes["cxr8_probe"].classes == chestx_ray8 and set(chestx_ray8) <= set(nih.LABELS)
    assert probes["openi5_probe"].classes == COMPETITION_5 and probes["openi5_probe"].blank == "zeros"
    assert all(t.repeats == 5 and t.C_grid for t in probes.values())

    retrieval, rag = tasks["openi_retrieval"], tasks["openi_report_generation"]
    assert retrieval.type == "retrieval" and retrieval.ks == [1, 5, 10] and "openi" in retrieval.manifest
    assert rag.type == "report_retrieval" and rag.k == 5 and (rag.split, rag.train_split) == ("test", "train")
    assert rag.train_manifest == rag.manifest  # corpus = the other Open-I reports

    text = (CONFIG_DIR / "eval" / "paper.yaml").read_text()
    assert "OpenI-5" in text and "gloria" in text  # OpenI-5's labels and the prompt set's source are stated
    outs = {out: name for name, out in re.findall(r"medalign prepare (\S+) .*--out (\S+)", text)}  # folder → adapter
    assert set(outs.values()) <= set(ADAPTERS)
    for task in tasks.values():
        assert str(Path(task.manifest).parent) in outs, f"{task.name}: {task.manifest} is not made by a listed prepare command"
    assert outs["data/chexpert_5x200"] == "chexpert-5x200" and outs["data/cxr14_14x100"] == "nih-14x100"
