"""`medalign export` on trained checkpoints: round trip on real data, `medalign test` on the folder, card, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from medalign.cli import command, main  # noqa: E402
from medalign.data.transforms import PairTransform, load_image  # noqa: E402
from medalign.evaluation.encoders import load_checkpoint_encoder  # noqa: E402
from medalign.export import export_checkpoint  # noqa: E402
from medalign.training.cli import cli_main  # noqa: E402
from tests.helpers import TINY, fit_tiny  # noqa: E402

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_dir):
    """A tiny CLIP checkpoint (3 steps) and its export (through the console command)."""
    root = tmp_path_factory.mktemp("export_run")
    fit_tiny(root, synthetic_dir, "--trainer.max_steps", "3")
    ckpt, out = root / "ckpt" / "last.ckpt", root / "exported"
    result = command("export")(["--ckpt", str(ckpt), "--out", str(out)])  # what `medalign export` runs
    return ckpt, out, result


def _test_split(synthetic_dir, n=24):
    manifest = pd.read_csv(synthetic_dir / "manifest.csv")
    rows = manifest[manifest["split"] == "test"].head(n)
    return [synthetic_dir / p for p in rows["image"]], rows["text"].astype(str).tolist()


def _assert_round_trip(ckpt, out, synthetic_dir, image_size=64, mean=None, std=None):
    """open_clip's plain load of `out` vs medalign's checkpoint encoder on test-split images and reports."""
    encoder = load_checkpoint_encoder(ckpt)
    clip, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{out}")  # no overrides: as a user loads it
    tokenize = open_clip.get_tokenizer(f"local-dir:{out}")
    clip.eval()
    paths, texts = _test_split(synthetic_dir)
    transform = PairTransform(image_size=image_size, **({"mean": mean, "std": std} if mean else {}))
    images = torch.stack([transform(load_image(p))[0] for p in paths])  # (B, 3, S, S): the same tensor for both
    with torch.no_grad():
        image = (F.normalize(clip.encode_image(images), dim=-1) - encoder.encode_images(images)).abs().max()
        text = (F.normalize(clip.encode_text(tokenize(texts)), dim=-1) - encoder.encode_texts(texts)).abs().max()
    assert float(image) <= ATOL and float(text) <= ATOL, (float(image), float(text))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert "model.logit_scale" in state or "model.clip.logit_scale" in state
    saved = state.get("model.logit_scale", state.get("model.clip.logit_scale"))
    assert float(clip.logit_scale.exp()) == pytest.approx(float(saved.exp()), rel=1e-7)
    return clip, tokenize, encoder, texts


def test_exported_folder_embeds_the_test_split_as_the_checkpoint(trained, synthetic_dir):
    ckpt, out, result = trained
    assert {"open_clip_config.json", "open_clip_model.safetensors", "config.json", "tokenizer.json", "README.md"} <= set(result["files"])
    assert not any(p.name.startswith(".") for p in out.parent.iterdir() if "export-tmp" in p.name)  # staging removed
    clip, tokenize, encoder, texts = _assert_round_trip(ckpt, out, synthetic_dir)
    # the same ids as medalign's tokenizer, padded to the data's max_length
    ours = encoder.tokenizer(texts, padding="max_length", truncation=True, max_length=32, return_tensors="pt")["input_ids"]
    assert torch.equal(tokenize(texts), ours)
    data = torch.load(ckpt, map_location="cpu", weights_only=True)["datamodule_hyper_parameters"]
    pre = clip.visual.preprocess_cfg
    assert tuple(pre["size"]) == (data["image_size"],) * 2 == (64, 64) and list(pre["mean"]) == list(data["mean"]) and list(pre["std"]) == list(data["std"])


def test_model_card_states_training_facts_and_limits(trained, synthetic_dir):
    ckpt, out, _ = trained
    card = (out / "README.md").read_text()
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    digest = hashlib.sha256((synthetic_dir / "manifest.csv").read_bytes()).hexdigest()
    assert f"optimizer steps: {saved['global_step']}," in card and saved["global_step"] == 3
    assert digest in card and "library_name: open_clip" in card
    assert "not for diagnosis" in card and "max_steps: 3" in card  # the run's resolved config.yaml
    assert "open_clip `VisionTransformer` (2 layers, width 128, 4 heads, patch 8" in card
    assert "resolves `text_cfg.hf_model_name` against the working directory" in card  # why a moved folder needs:
    assert "A moved, copied or downloaded folder needs `medalign.export.load_open_clip(DIR)`" in card


def test_medalign_test_gives_the_same_metrics_on_the_folder_as_on_the_checkpoint(trained, synthetic_dir, tmp_path):
    ckpt, out, _ = trained
    common = ["test", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"), "--trainer.logger", "false",
              "--evaluation.cache_dir", str(tmp_path / "cache"), "--evaluation.progress", "false"]
    on_ckpt = cli_main(common + ["--ckpt_path", str(ckpt), "--evaluation.output_dir", str(tmp_path / "a")]).evaluation_results
    on_folder = cli_main(common + ["--config", "eval/open_clip.yaml", "--evaluation.weights", str(out),
                                   "--evaluation.output_dir", str(tmp_path / "b")]).evaluation_results
    assert on_folder["encoder"]["settings"]["kind"] == "open_clip"  # really the folder, not the checkpoint again
    assert on_folder["encoder"]["fingerprint"] != on_ckpt["encoder"]["fingerprint"]
    from medalign.evaluation.results import rows

    a, b = rows(on_ckpt), rows(on_folder)
    assert [(r["task"], r["metric"], r["n"]) for r in a] == [(r["task"], r["metric"], r["n"]) for r in b] and len(a) > 5
    for x, y in zip(a, b):
        assert x["value"] == pytest.approx(y["value"], abs=1e-6, nan_ok=True), (x["task"], x["metric"])

    # the results go into the card of a re-export
    results = sorted((tmp_path / "a").rglob("results.json"))[0]
    export_checkpoint(ckpt, tmp_path / "with_results", results=results)
    card = (tmp_path / "with_results" / "README.md").read_text()
    assert "## Evaluation" in card and "| retrieval |" in card


def test_non_empty_out_is_refused_unless_forced_and_force_never_deletes_inputs(trained, tmp_path, capsys):
    ckpt, _, _ = trained
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="--out .*busy is not empty .*notes.txt.*pass --force"):
        command("export")(["--ckpt", str(ckpt), "--out", str(out)])
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="--force replaces only a folder `medalign export` wrote.*notes.txt"):
        command("export")(["--ckpt", str(ckpt), "--out", str(out), "--force"])
    assert (out / "notes.txt").read_text() == "keep me"
    out = tmp_path / "again"
    main(["export", "--ckpt", str(ckpt), "--out", str(out)])
    main(["export", "--ckpt", str(ckpt), "--out", str(out), "--force", "--hub-id", "someone/medalign-tiny"])  # its own files
    assert (out / "open_clip_model.safetensors").is_file() and not list(tmp_path.glob(".again.export-*"))
    assert "open_clip round trip (max abs difference)" in capsys.readouterr().out
    text_cfg = json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["text_cfg"]
    assert text_cfg["hf_model_name"] == text_cfg["hf_tokenizer_name"] == "someone/medalign-tiny"  # what hf-hub: loading reads

    inside = tmp_path / "run"
    (inside / "ckpt").mkdir(parents=True)
    shutil.copy(ckpt, inside / "ckpt" / "last.ckpt")
    with pytest.raises(ValueError, match="--force would delete .*last.ckpt, which lies inside --out"):
        export_checkpoint(inside / "ckpt" / "last.ckpt", inside, force=True)
    assert (inside / "ckpt" / "last.ckpt").is_file()
    with pytest.raises(FileNotFoundError, match="--ckpt .*missing.ckpt does not exist"):
        export_checkpoint(tmp_path / "missing.ckpt", tmp_path / "x")


@pytest.mark.slow
def test_eclip_checkpoint_exports_without_its_heatmap_processor(tmp_path, synthetic_dir):
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "3", config=TINY.replace("tiny.yaml", "tiny_eclip.yaml"))
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("processor.") for k in state)  # trained, saved, and not exported
    export_checkpoint(ckpt, tmp_path / "out")
    card = (tmp_path / "out" / "README.md").read_text()
    assert "training method: `eclip`; left out (training-only): `processor`" in card and "heatmap processor" in card
    _assert_round_trip(ckpt, tmp_path / "out", synthetic_dir)


@pytest.mark.slow
def test_model_fine_tuned_from_the_open_clip_preset_exports(tmp_path, synthetic_dir):
    """A BiomedCLIP-like start (open_clip ViT + HF BERT text tower) fine-tuned 3 steps, then exported."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, BertConfig

    start = tmp_path / "start"
    shutil.copytree(synthetic_dir / "tokenizer", start)
    BertConfig(vocab_size=len(AutoTokenizer.from_pretrained(start)), hidden_size=32, num_hidden_layers=1,
               num_attention_heads=2, intermediate_size=64).save_pretrained(start)
    text_cfg = {"hf_model_name": str(start), "hf_tokenizer_name": str(start), "hf_proj_type": "linear",
                "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": 32}
    vision_cfg = {"image_size": 64, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16}
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
    config = {"model_cfg": {"embed_dim": 16, "vision_cfg": vision_cfg, "text_cfg": text_cfg},
              "preprocess_cfg": {"mean": mean, "std": std}}
    (start / "open_clip_config.json").write_text(json.dumps(config))
    save_file(open_clip.create_model(f"local-dir:{start}", load_weights=False, pretrained_text=False).state_dict(), str(start / "open_clip_model.safetensors"))
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "3", "--model.preset", "open_clip",
             "--model.open_clip_model", str(start), "--data.tokenizer", f"open_clip:{start}",
             "--data.mean", json.dumps(mean), "--data.std", json.dumps(std))
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    export_checkpoint(ckpt, tmp_path / "out")
    paths, texts = _test_split(synthetic_dir, 8)
    images = torch.stack([PairTransform(image_size=64, mean=tuple(mean), std=tuple(std))(load_image(p))[0] for p in paths])
    encoder = load_checkpoint_encoder(ckpt)  # medalign's side, while the start folder (its architecture) exists
    want_image, want_text = encoder.encode_images(images), encoder.encode_texts(texts)
    shutil.rmtree(start)  # the export stands alone

    out = tmp_path / "out"
    text_cfg = json.loads((out / "open_clip_config.json").read_text())["model_cfg"]["text_cfg"]
    assert text_cfg["hf_model_name"] == str(out.resolve())
    clip = open_clip.create_model(f"local-dir:{out}").eval()
    ours = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in clip.state_dict().items():  # the fine-tuned weights, not the start's
        torch.testing.assert_close(value, ours[f"model.clip.{key}"], rtol=0, atol=0, msg=key)
    tokenize = open_clip.get_tokenizer(f"local-dir:{out}")
    with torch.no_grad():
        image = (F.normalize(clip.encode_image(images), dim=-1) - want_image).abs().max()
        text = (F.normalize(clip.encode_text(tokenize(texts)), dim=-1) - want_text).abs().max()
    assert float(image) <= ATOL and float(text) <= ATOL, (float(image), float(text))
