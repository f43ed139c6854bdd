"""open_clip checkpoints from local files as the starting point of fine-tuning (CLIP and eCLIP).

A tiny open_clip architecture (a model-config JSON) with weights in a ``.bin`` file, and a
BiomedCLIP-like hf-hub-layout folder (HF BERT text tower, ``.safetensors``): the wrapper must
embed exactly as open_clip does, ``train.py fit`` must start from the file's weights, and
``train.py test`` must evaluate the fine-tuned checkpoint — without the original weights file.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from medalign.training.cli import cli_main  # noqa: E402
from medalign.data.tokenizer import load_tokenizer  # noqa: E402
from medalign.evaluation.encoders import MedAlignEncoder  # noqa: E402
from tests.reference import f1_from_confusion  # noqa: E402
from medalign.models import create_dual_encoder  # noqa: E402
from medalign.models.open_clip_tokenizer import OpenClipTokenizer  # noqa: E402
from medalign.models.open_clip_tower import OpenClipDualEncoder  # noqa: E402

CONF = Path(__file__).parents[1] / "conf"
TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 64, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # open_clip's defaults
TEXTS = ["Mild pulmonary edema!", "no acute findings. " * 20]  # the second overflows the context


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.fixture(scope="module")
def arch(tmp_path_factory):
    """(model-config JSON, weights .bin, the reference open_clip model)."""
    root = tmp_path_factory.mktemp("open_clip_arch")
    config = root / "medalign-finetune-tiny.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    reference = open_clip.create_model("medalign-finetune-tiny").eval()
    weights = root / "tiny.bin"
    torch.save(reference.state_dict(), weights)
    return config, weights, reference


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, synthetic_dir):
    """A BiomedCLIP-like folder whose config names its text tower by a (non-downloadable) hub id."""
    from transformers import AutoTokenizer, BertConfig

    folder = tmp_path_factory.mktemp("open_clip_dir") / "biomedclip-like"
    shutil.copytree(synthetic_dir / "tokenizer", folder)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(folder)
    text_cfg = {"hf_model_name": str(folder), "hf_tokenizer_name": str(folder), "hf_proj_type": "linear",
                "hf_pooler_type": "cls_pooler", "context_length": 24}
    model_cfg = {"embed_dim": 16, "vision_cfg": TINY["vision_cfg"], "text_cfg": text_cfg}
    config = {"model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    torch.manual_seed(1)
    reference = open_clip.create_model(f"local-dir:{folder}", pretrained_text=False, load_weights=False).eval()
    from safetensors.torch import save_file

    save_file(reference.state_dict(), str(folder / "open_clip_model.safetensors"))
    tokenize = open_clip.get_tokenizer(f"local-dir:{folder}")
    text_cfg.update(hf_model_name="microsoft/not-downloadable", hf_tokenizer_name="microsoft/not-downloadable")
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    return folder, reference, tokenize


def _assert_same_embeddings(model: OpenClipDualEncoder, reference, tokenizer: OpenClipTokenizer, tokenize) -> None:
    torch.manual_seed(0)
    images = torch.randn(3, 3, 64, 64)
    tokens = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    torch.testing.assert_close(tokens["input_ids"], tokenize(TEXTS), rtol=0, atol=0)  # the model's own ids
    with torch.no_grad():
        out = model.eval()(images, tokens["input_ids"], tokens["attention_mask"])
        torch.testing.assert_close(out.image_emb, F.normalize(reference.encode_image(images), dim=-1))
        torch.testing.assert_close(out.text_emb, F.normalize(reference.encode_text(tokenize(TEXTS)), dim=-1))
        torch.testing.assert_close(out.logit_scale, reference.logit_scale.exp())


def test_architecture_and_weights_file_embed_exactly_as_open_clip(arch):
    config, weights, reference = arch
    model = create_dual_encoder("open_clip", open_clip_model=str(config), open_clip_weights=str(weights))
    assert isinstance(model, OpenClipDualEncoder) and model.image_encoder is model.clip.visual
    assert model.preprocess == {"image_size": 64, "mean": MEAN, "std": STD}
    tokenizer = load_tokenizer(f"open_clip:{config}")
    assert isinstance(tokenizer, OpenClipTokenizer) and len(tokenizer) == 49408 and tokenizer.context_length == 32
    _assert_same_embeddings(model, reference, tokenizer, open_clip.get_tokenizer("medalign-finetune-tiny"))

    # the mask covers start … end-of-text; max_length truncates, keeps the end token and pads to the context
    eot = tokenizer.tokenizer.eot_token_id
    ids = open_clip.get_tokenizer("medalign-finetune-tiny")(TEXTS)
    ends = [ids[i].tolist().index(eot) for i in range(2)]  # first end-of-text position per text
    assert ends[1] == 31  # the long text was truncated to the context
    mask = tokenizer(TEXTS)["attention_mask"]
    assert [row.tolist() for row in mask] == [[int(j <= e) for j in range(32)] for e in ends]
    short = tokenizer(TEXTS, max_length=8)
    assert short["input_ids"].shape == (2, 32) and short["input_ids"][1, 7] == eot and short["input_ids"][1, 8:].eq(0).all()
    assert short["attention_mask"].sum(1).tolist() == [min(ends[0], 7) + 1, 8]

    # the trained logit scale is kept; clamping works on it
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
    model.clamp_logit_scale(100.0)
    assert float(model.clip.logit_scale) == pytest.approx(torch.log(torch.tensor(100.0)).item())


def test_hf_hub_layout_folder_with_hf_text_tower_embeds_exactly_as_open_clip(hf_folder):
    folder, reference, tokenize = hf_folder
    model = create_dual_encoder("open_clip", open_clip_model=str(folder))
    assert model.preprocess["mean"] == (0.5, 0.5, 0.5)
    tokenizer = load_tokenizer(f"open_clip:{folder}")
    assert tokenizer.context_length == 24 and len(tokenizer) == len(load_tokenizer(folder))
    _assert_same_embeddings(model, reference, tokenizer, tokenize)
    # the architecture alone (no weights) needs no weights file
    bare = create_dual_encoder("open_clip", open_clip_model=str(folder), open_clip_weights="gone.bin", open_clip_pretrained=False)
    assert not torch.equal(bare.clip.visual.conv1.weight, model.clip.visual.conv1.weight)


def test_data_that_does_not_fit_the_model_is_refused(arch, tokenizer):
    config, weights, _ = arch
    model = create_dual_encoder("open_clip", open_clip_model=str(config), open_clip_weights=str(weights))
    own = load_tokenizer(f"open_clip:{config}")
    model.check_data(64, MEAN, STD, own)
    with pytest.raises(ValueError, match="data.image_size is 224 .* takes 64"):
        model.check_data(224, MEAN, STD, own)
    with pytest.raises(ValueError, match="data.tokenizer: open_clip:"):
        model.check_data(64, MEAN, STD, tokenizer)  # the synthetic set's BERT tokenizer
    ids = tokenizer(["edema"], padding=True, return_tensors="pt")
    with pytest.raises(ValueError, match="takes 32 tokens per text"):
        model.encode_text(ids["input_ids"], ids["attention_mask"])
    with pytest.raises(ValueError, match="model.preset: open_clip"):
        create_dual_encoder("tiny", open_clip_model=str(config))
    with pytest.raises(ValueError, match=r"\['image_weights'\].*unset them"):
        create_dual_encoder("open_clip", open_clip_model=str(config), image_weights="x.pth")


def test_hub_ids_fail_fast_with_a_local_path_hint(arch, monkeypatch):
    import socket

    config, _, _ = arch

    def no_network(*args, **kwargs):  # fail fast = never try the network (no DNS retries), whatever the load
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(RuntimeError, match="offline: download it elsewhere and pass the local folder"):
        create_dual_encoder("open_clip", open_clip_model="hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    with pytest.raises(ValueError, match="unknown open_clip model .*hub ids are not downloaded"):
        create_dual_encoder("open_clip", open_clip_model="microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    with pytest.raises(FileNotFoundError, match="open_clip weights not found: openai"):
        create_dual_encoder("open_clip", open_clip_model=str(config), open_clip_weights="openai")  # a pretrained tag
    with pytest.raises(RuntimeError, match="offline"):
        load_tokenizer("open_clip:hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224")
    with pytest.raises(FileNotFoundError, match="--model.model.text_model /path/to/folder --data.tokenizer /path/to/folder"):
        create_dual_encoder("tiny", text_model="emilyalsentzer/Bio_ClinicalBERT")
    with pytest.raises(FileNotFoundError, match="hub ids are not downloaded"):
        load_tokenizer("emilyalsentzer/Bio_ClinicalBERT")


def _args(tmp_path, synthetic_dir, config, weights, conf="tiny.yaml"):
    return [
        "--config", str(CONF / conf),
        "--data.manifest", str(synthetic_dir / "manifest.csv"),
        "--data.tokenizer", f"open_clip:{config}",
        "--data.mean", json.dumps(MEAN), "--data.std", json.dumps(STD),
        "--model.preset", "open_clip",
        "--model.open_clip_model", str(config),
        "--model.open_clip_weights", str(weights),
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.logger", "false",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--checkpoint.monitor", "null",
    ]


@pytest.mark.slow
def test_fit_from_open_clip_weights_then_test_the_checkpoint(tmp_path, synthetic_dir, arch):
    config, weights, reference = arch
    local = tmp_path / "weights.bin"  # removed before the checkpoint is rebuilt: it must not be needed
    shutil.copy(weights, local)
    cli = cli_main(_args(tmp_path, synthetic_dir, config, local) + ["--trainer.max_steps", "3"], run=False)
    start = cli.model.model.clip.state_dict()
    for key, value in torch.load(weights, weights_only=True).items():  # training starts from the file's weights
        torch.testing.assert_close(start[key], value, rtol=0, atol=0, msg=key)
    before = {k: v.clone() for k, v in start.items()}
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step == 3
    trained = cli.model.model.clip.state_dict()
    assert not torch.equal(trained["visual.conv1.weight"], before["visual.conv1.weight"])
    assert not torch.equal(trained["token_embedding.weight"], before["token_embedding.weight"])
    ckpt = tmp_path / "ckpt" / "last.ckpt"

    result = cli_main(
        ["test", *_args(tmp_path, synthetic_dir, config, local), "--ckpt_path", str(ckpt),
         "--evaluation.cache_dir", str(tmp_path / "cache"), "--evaluation.output_dir", str(tmp_path / "eval"),
         "--evaluation.progress", "false"]
    ).evaluation_results
    tasks = {t["name"]: t for t in result["tasks"]}
    assert list(tasks) == ["zero_shot", "retrieval", "linear_probe"] and all(t["n"] > 0 for t in tasks.values())
    zero_shot = tasks["zero_shot"]["metrics"]
    accuracy, macro_f1, _ = f1_from_confusion(zero_shot["confusion_matrix"])  # independent formula
    assert zero_shot["macro_f1"] == pytest.approx(macro_f1) and zero_shot["accuracy"] == pytest.approx(accuracy)

    local.unlink()
    encoder = MedAlignEncoder.from_checkpoint(ckpt, load_tokenizer(f"open_clip:{config}"), max_length=32, image_size=64, mean=MEAN, std=STD)
    images, texts = torch.rand(2, 3, 64, 64), ["pleural effusion", "normal chest"]
    model = cli.model.model.eval()
    with torch.no_grad():
        tokens = cli.datamodule.tokenizer(texts, max_length=32)
        torch.testing.assert_close(encoder.encode_images(images), model.encode_image(images))
        torch.testing.assert_close(encoder.encode_texts(texts), model.encode_text(tokens["input_ids"], tokens["attention_mask"]))


@pytest.mark.slow
def test_eclip_fine_tunes_an_open_clip_model(tmp_path, synthetic_dir, arch):
    config, weights, _ = arch
    cli = cli_main(["fit", *_args(tmp_path, synthetic_dir, config, weights, "tiny_eclip.yaml"),
                    "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
                    "--model.use_curriculum", "false"])  # experts at every step
    assert cli.trainer.global_step == 2
    assert int(cli.model.expert_pairs_seen) > 0  # the expert images went through the open_clip image tower


@pytest.mark.parametrize("method", [[], ["--model.class_path", "medalign.training.eclip.ECLIPModule", "--data.expert_stream", "true"]])
def test_shipped_finetune_config_parses(synthetic_dir, arch, method):
    config, weights, _ = arch
    cli = cli_main(["--config", "finetune_open_clip.yaml", "--data.manifest", str(synthetic_dir / "manifest.csv"),
                    "--model.open_clip_model", str(config), "--model.open_clip_weights", str(weights),
                    "--data.tokenizer", f"open_clip:{config}", *method], run=False)
    assert isinstance(cli.model.model, OpenClipDualEncoder) and cli.model.hparams.lr == 1e-5
    assert type(cli.model).__name__ == ("ECLIPModule" if method else "ContrastiveModule")
    hp = cli.datamodule.hparams
    assert (hp.image_size, tuple(hp.mean), tuple(hp.std)) == (224, MEAN, STD)  # OpenAI CLIP / BiomedCLIP preprocessing
