"""The pre-check names config mistakes before Lightning is imported, and never refuses what the parser accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from medalign.paths import CONFIG_DIR
from medalign.training import cli_errors
from medalign.training.cli import cli_main
from medalign.training.config_check import (
    MODULE_CLASS, TOP_LEVEL, ConfigKeyError, check_label_columns, init_parameters, legacy_keys, precheck, read_header,
)

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "lightning", "transformers", "timm", "pandas")
PROBE = """
import json, sys
from medalign.cli import main
try:
    main({argv!r})
except SystemExit as exit:
    code = exit.code
print(json.dumps(dict(code=code, heavy=sorted(m for m in {heavy!r} if m in sys.modules))))
"""


def _run(argv: list[str], cwd: Path) -> tuple[dict, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1", MEDALIGN_DEBUG="0")
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_key_sets_match_the_real_parser(monkeypatch, subcommand):
    """The `ast`-read keys equal LightningCLI's own, so a key the pre-check refuses, the parser refuses too."""
    seen = {}

    def capture(parser):
        seen["dests"] = [a.dest for a in parser._actions if a.dest]
        return []

    argv = [subcommand, "--trainer.no_such_key", "1"]
    monkeypatch.setattr(cli_errors, "_known_keys", capture)
    monkeypatch.setattr(sys, "argv", ["medalign", *argv])
    with pytest.raises(SystemExit):
        cli_main(argv)  # the subcommand's parser refuses the key before anything is built
    dests = seen["dests"]
    for group in ("trainer", "data"):
        real = {d.split(".")[1] for d in dests if d.startswith(group + ".") and d.count(".") == 1}
        assert init_parameters(group) == real, group
    top = {d.split(".")[0] for d in dests} - {"help"}
    assert top <= TOP_LEVEL and TOP_LEVEL - top <= {"verbose", "return_predictions"}  # the other subcommands' own
    model = {name for name in cli_errors._class_options(MODULE_CLASS) if "." not in name} - {"legacy"}
    assert init_parameters("model") == model


def test_legacy_keys_match_the_migration_table():
    from medalign.methods.legacy import LEGACY_KEYS

    assert legacy_keys() == LEGACY_KEYS


@pytest.mark.parametrize("config", sorted(p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("*.yaml")
                                          if p.parent.name not in ("eval", "benchmark") and p.name not in ("gap_sweep.yaml", "gap_sweep_paper.yaml")))
def test_every_shipped_config_passes(config, tmp_path, monkeypatch):
    """No false alarm on the shipped configs (missing real datasets are the only allowed complaint)."""
    monkeypatch.chdir(tmp_path)
    try:
        precheck(["fit", "--config", config])
    except FileNotFoundError as error:
        assert "manifest" in str(error)


def test_typo_in_a_yaml_names_file_line_and_guess(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  num_workers: 0\n  batchsize: 8\n")
    with pytest.raises(ConfigKeyError, match=rf"unknown config key data.batchsize \({typo}:3\); did you mean data.batch_size\?"):
        precheck(["fit", "--config", "demo.yaml", "--config", str(typo)])


def test_flag_typos_point_at_the_command_line(tmp_path):
    with pytest.raises(ConfigKeyError, match=r"model.init_args.lrr \(command line\); did you mean model.init_args.lr\?"):
        precheck(["fit", "--config", "demo.yaml", "--model.lrr", "0.1"])
    with pytest.raises(ConfigKeyError, match=r"tranier.max_epochs \(command line\); did you mean trainer.max_epochs\?"):
        precheck(["fit", "--config", "demo.yaml", "--tranier.max_epochs", "1"])
    with pytest.raises(ConfigKeyError, match=r"trainer.max_epohcs \(command line\); did you mean trainer.max_epochs\?"):
        precheck(["fit", "--config", "demo.yaml", "--trainer.max_epohcs", "1"])


def test_accepted_forms_pass(tmp_path, synthetic_dir):
    manifest = str(synthetic_dir / "manifest.csv")
    precheck(["fit", "--config", "demo.yaml", "--data.manifest", manifest, "--model.init_args.lr", "0.1",
              "--model.loss", "siglip", "--trainer.limit_train_batches=3", "--trainer.callbacks+=x.Y", "--ckpt_path", "last"])
    precheck(["fit", "--config", "demo.yaml", "--model.class_path", "other.Module", "--model.anything", "1"])
    precheck(["fit", "--config", "demo.yaml", "--trainer.max_epoch", "1", "--seed", "3"])  # argparse's prefixes
    precheck(["test", "--config", "demo.yaml", "--verbose", "false"])
    precheck(["predict", "--config", "demo.yaml", "--return_predictions", "false"])


def test_missing_manifest_unless_the_config_generates_it_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    precheck(["fit", "--config", "demo.yaml", "--trainer.max_epochs", "1"])  # data/synthetic: generated there
    with pytest.raises(FileNotFoundError, match="manifest data/synthtic/manifest.csv does not exist"):
        precheck(["fit", "--config", "demo.yaml", "--data.manifest", "data/synthtic/manifest.csv"])
    precheck(["fit", "--config", "demo.yaml", "--data.manifest", "elsewhere/m.csv",  # generated there on request
              "--data.synthetic.manifest", "elsewhere/m.csv"])


def test_label_name_checked_against_the_header(synthetic_dir):
    with pytest.raises(ValueError, match="'Edma' is not a column of .*; did you mean 'Edema'"):
        precheck(["fit", "--config", "demo.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv"),
                  "--data.label_columns", "[Atelectasis, Edma]"])


def test_header_reader_agrees_with_pandas(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text('\ufeffimage,"report, text",Pleural Effusion\na.png,"x, y",1\n', encoding="utf-8")
    assert read_header(path) == list(pd.read_csv(path, nrows=0).columns) == ["image", "report, text", "Pleural Effusion"]
    check_label_columns(path, ["Pleural Effusion"])


@pytest.mark.parametrize("argv, expected", [
    (["--tranier.max_epochs", "1"], "did you mean trainer.max_epochs?"),
    (["--data.manifest", "data/synthtic/manifest.csv"], "manifest data/synthtic/manifest.csv does not exist"),
])
def test_errors_come_before_any_heavy_import(tmp_path, argv, expected):
    result, err = _run(["fit", "--config", "demo.yaml", *argv], tmp_path)
    assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 2
    assert result["code"] in (1, 2) and result["heavy"] == []


@pytest.mark.parametrize("flag, value, error, match", [
    ("--model.init_args.model.text_model", "emilyalsentzer/Bio_ClinicalBERT", FileNotFoundError, "not a local folder with a config.json"),
    ("--model.model.image_model", "hf-hub:timm/vit_base_patch16_224.augreg_in21k", ValueError, "--model.init_args.model.image_weights"),
    ("--model.image_weights", "missing.pth", FileNotFoundError, "image tower weights not found: missing.pth"),
    ("--ckpt_path", "runs/nope.ckpt", FileNotFoundError, "checkpoint not found: runs/nope.ckpt"),
])
def test_tower_and_checkpoint_files_are_checked_early(tmp_path, monkeypatch, flag, value, error, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        precheck(["fit", "--config", "demo.yaml", flag, value])


def test_tower_rules_agree_with_the_encoders(tmp_path):
    """What the pre-check refuses, the towers refuse too; a local folder with config.json passes both checks' gate."""
    from medalign.models.image import ImageEncoder
    from medalign.models.text import TextEncoder
    from medalign.training.config_check import check_towers

    with pytest.raises(FileNotFoundError):
        TextEncoder(pretrained_dir="emilyalsentzer/Bio_ClinicalBERT")
    with pytest.raises(ValueError):
        ImageEncoder("hf-hub:timm/vit_base_patch16_224.augreg_in21k")
    (tmp_path / "config.json").write_text("{}")
    check_towers({"text_model": str(tmp_path), "image_model": "vit_base_patch16_224", "image_weights": None})


def test_missing_tokenizer_is_named_with_the_command_that_builds_it(tmp_path, synthetic_dir):
    from medalign.data.tokenizer import load_tokenizer

    manifest = tmp_path / "manifest.csv"
    manifest.write_text((synthetic_dir / "manifest.csv").read_text())  # no tokenizer/ beside it
    with pytest.raises(FileNotFoundError, match="tokenizer MANIFEST --out DIR") as early:
        precheck(["fit", "--config", "demo.yaml", "--data.manifest", str(manifest)])
    with pytest.raises(FileNotFoundError, match="tokenizer MANIFEST --out DIR") as late:
        load_tokenizer(tmp_path / "tokenizer")
    assert str(tmp_path / "tokenizer") in str(early.value) and str(tmp_path / "tokenizer") in str(late.value)
    precheck(["fit", "--config", "demo.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv")])


def test_invalid_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  batch_size: 8\n   num_workers: 0\n")
    with pytest.raises(ValueError, match=rf"config {bad} is not valid YAML: .*line 3"):
        precheck(["fit", "--config", "demo.yaml", "--config", str(bad)])
