"""User mistakes are one line naming the key, file and fix; `--debug` brings the traceback back."""

from __future__ import annotations

import sys

import pytest

from medalign.cli import main
from medalign.models.image import ImageEncoder
from medalign.training.cli import cli_main


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv("MEDALIGN_DEBUG", "0")  # recorded, so the "1" a --debug run sets is undone afterwards


def test_yaml_key_typo_names_file_line_and_the_close_key(tmp_path, capsys, synthetic_dir):
    typo = tmp_path / "typo.yaml"
    typo.write_text("data:\n  num_workers: 0\n  batchsize: 8\n")
    args = ["--config", "demo.yaml", "--config", str(typo), "--data.manifest", str(synthetic_dir / "manifest.csv")]
    sys.argv = ["medalign", *args]
    with pytest.raises(SystemExit) as stop:
        cli_main(args, run=False)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert f"unknown config key data.batchsize ({typo}:3); did you mean data.batch_size?" in err
    assert "usage:" not in err and len(err.strip().splitlines()) == 2


def test_model_option_typo_suggests_the_option(tmp_path, capsys, synthetic_dir):
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  init_args:\n    lrr: 0.1\n")
    args = ["--config", "demo.yaml", "--config", str(typo), "--data.manifest", str(synthetic_dir / "manifest.csv")]
    sys.argv = ["medalign", *args]
    with pytest.raises(SystemExit):
        cli_main(args, run=False)
    assert "did you mean model.init_args.lr?" in capsys.readouterr().err


def test_missing_manifest_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", "demo.yaml", "--data.manifest", "data/synthtic/manifest.csv"]
    with pytest.raises(SystemExit) as stop:
        main(args)
    err = capsys.readouterr().err
    assert stop.value.code == 1 and "Traceback" not in err
    assert err.startswith("medalign fit: error: manifest data/synthtic/manifest.csv does not exist")
    with pytest.raises(FileNotFoundError, match="synthtic"):
        main([*args, "--debug"])


def test_hub_image_model_names_the_local_weights_option():
    with pytest.raises(ValueError, match="--model.image_weights"):
        ImageEncoder("hf-hub:timm/vit_base_patch16_224.augreg_in21k")


def test_a_misspelt_label_is_named_against_the_manifest_not_the_prompt_file(synthetic_dir):
    from medalign.training.datamodule import MedAlignDataModule

    labels = ["Atelectasis", "Cardiomegally", "Consolidation", "Edema", "Pleural Effusion"]
    with pytest.raises(ValueError, match=r"'Cardiomegally' is not a column of .*manifest.csv; did you mean 'Cardiomegaly'"):
        MedAlignDataModule(manifest=str(synthetic_dir / "manifest.csv"), label_columns=labels, prompts="prompts/chexpert5.json")
