"""The paper configs at full size on CPU: Swin-T / ViT-B/16 at 224 px and a BERT-base text folder.

A paper config that breaks at full size (a shape, the processor at 224 px, bf16-mixed, a
loaded BERT folder) is caught here instead of on a GPU allocation. The towers are randomly
initialised — the image tower with ``image_weights`` unset, the text tower from a folder laid
out like Bio_ClinicalBERT (``config.json``, weights and tokenizer files, built here with
``save_pretrained``) — so nothing is downloaded. Batch 2, two optimizer steps (for eCLIP each with
priming and an expert pair in it), one validation batch: ≈ 1–1.5 CPU-minutes per config, but
several wall-clock minutes on shared cores; timings and peak memory are in docs/gpu.md. The validation's
zero-shot prompts are two per class instead of the shipped file's 666 (all BERT-base forwards at full
size: they were half of each run's time); the shipped prompt file is checked by the tiny runs.
"""

from __future__ import annotations

import sys

import pytest
from transformers import BertConfig, BertModel

from medalign.models.presets import get_preset
from medalign.training.cli import cli_main

BIO_CLINICAL_BERT_VOCAB = 28996  # Bio_ClinicalBERT's (cased BERT-base) vocabulary
EXPERTS_AT_ONCE = "{cold_start: 0.0, warmup: 0.0, cooldown: 0.0, floor: 1.0}"  # p = 1 from the first step


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.fixture(scope="module")
def clinical_bert(tmp_path_factory, synthetic_dir):
    """A randomly initialised BERT-base folder with its tokenizer, laid out like Bio_ClinicalBERT."""
    import pandas as pd

    from medalign.data.tokenizer import train_wordpiece_tokenizer

    folder = tmp_path_factory.mktemp("models") / "Bio_ClinicalBERT"
    reports = pd.read_csv(synthetic_dir / "manifest.csv", keep_default_na=False)["text"]
    train_wordpiece_tokenizer(reports, folder, vocab_size=BIO_CLINICAL_BERT_VOCAB)
    config = BertConfig(vocab_size=BIO_CLINICAL_BERT_VOCAB, max_position_embeddings=512, **get_preset("swin_t").text_config)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def two_prompts_per_class(tmp_path_factory):
    """A prompt file with two prompts per label of the paper configs (encoded by the full-size text tower)."""
    import json

    labels = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    path = tmp_path_factory.mktemp("prompts") / "two_per_class.json"
    path.write_text(json.dumps({label: [label.lower(), f"mild {label.lower()}"] for label in labels}))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("config", ["eclip_swin.yaml", "clip_vit_b.yaml"])
def test_paper_config_trains_at_full_size_on_cpu(tmp_path, synthetic_dir, clinical_bert, two_prompts_per_class, config):
    eclip = config.startswith("eclip")  # steps that prime the processor and append the expert pair
    extra = ["--model.init_args.curriculum", EXPERTS_AT_ONCE, "--model.init_args.priming_fraction", "1.0"] if eclip else []
    cli = cli_main([
        "fit", "--config", config, *extra,
        "--data.manifest", str(synthetic_dir / "manifest.csv"),
        "--data.tokenizer", str(clinical_bert), "--model.init_args.model.text_model", str(clinical_bert),
        "--data.prompts", str(two_prompts_per_class),
        "--data.batch_size", "2", "--data.num_workers", "0",
        "--trainer.accelerator", "cpu", "--trainer.devices", "1",
        "--trainer.max_steps", "2", "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
        "--trainer.num_sanity_val_steps", "0", "--trainer.logger", "false", "--trainer.log_every_n_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path),
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "null",
        "--checkpoint.save_top_k", "0", "--checkpoint.save_last", "false",
    ])
    trainer, module = cli.trainer, cli.model
    assert trainer.global_step == 2 and trainer.precision == "bf16-mixed"
    assert module.hparams.model["preset"] == ("swin_t" if "swin" in config else "vit_b")
    assert cli.datamodule.hparams.image_size == 224 and cli.datamodule.hparams.max_length == 256
    assert module.model.text_encoder.model.config.hidden_size == 768
    assert module.model.text_encoder.model.config.num_hidden_layers == 12
    assert "val/loss" in trainer.callback_metrics
    assert len(cli.datamodule.prompts["Atelectasis"]) == 2  # the zero-shot prompts went through the full-size tower
    if eclip:
        assert cli.datamodule.expert_batch_size == 1  # half the batch of 2
        assert int(module.expert_pairs_seen) == 2 and module.priming_active(0)  # an expert pair appended each step, priming on
        assert trainer.callback_metrics["train/priming_loss"] > 0
