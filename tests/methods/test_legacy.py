"""Old configs and checkpoints (flat ``model.init_args.*`` keys) keep working through `medalign.methods.legacy`."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import yaml

from medalign.methods.legacy import comparable_hparams, migrate_cli_args, migrate_model_args
from medalign.models import ModelSpec
from medalign.training.module import ContrastiveModule
from medalign.training.resume import changed_settings

# `hyper_parameters` of a checkpoint written by `medalign fit --config demo.yaml --config methods/siglip.yaml
# --config methods/slip.yaml` before objectives were classes (copied from such a file, vocab_size shrunk).
OLD_HPARAMS = {
    "_class_path": "medalign.training.module.ContrastiveModule", "preset": "tiny", "vocab_size": 100, "image_model": None,
    "image_kwargs": None, "image_weights": None, "text_model": None, "text_config": None, "text_pooling": "cls",
    "embed_dim": None, "init_temperature": 0.1, "max_logit_scale": 100.0, "init_from": None, "lr": 0.0005,
    "weight_decay": 0.001, "betas": [0.9, 0.98], "eps": 1e-06, "warmup_fraction": 0.1, "min_lr_ratio": 0.0,
    "gradient_checkpointing": False, "channels_last": False, "compile": False, "compile_kwargs": None,
    "zero_shot_aggregation": "embedding", "open_clip_model": None, "open_clip_weights": None,
    "open_clip_text_config_dir": None, "loss": "siglip", "init_logit_bias": -10.0, "align_weight": 0.0,
    "centroid_uniformity_weight": 0.0, "centroid_uniformity_t": 2.0, "gap_warmup_fraction": 0.0, "dacl_weight": 0.0,
    "dacl_range": [0.9, 1.0], "m3mix_weight": 0.0, "m3mix_beta": 0.5, "mix_seed": 0, "image_freeze": "none",
    "text_freeze": "none", "slip_weight": 1.0, "slip_temperature": 0.1, "slip_dim": 128, "mlm_weight": 0.0,
    "mlm_probability": 0.15, "local_weight": 0.0, "local_method": "filip", "local_chunk_size": 64,
    "_instantiator": "lightning.pytorch.cli.instantiate_module",
}
OLD_EXTRA_KEYS = ["logit_bias", "slip_head.net.0.weight", "slip_head.net.0.bias", "slip_head.net.2.weight", "slip_head.net.2.bias"]


def test_old_flat_keys_map_to_spec_and_objectives_with_a_warning_naming_the_new_spelling():
    with pytest.warns(DeprecationWarning, match="medalign.methods.siglip.SigLIP") as record:
        new = migrate_model_args(OLD_HPARAMS)
    assert "medalign.methods.slip.SLIP" in str(record[0].message) and "zero_shot_aggregation was removed" in str(record[0].message)
    assert new["model"]["preset"] == "tiny" and new["model"]["init_temperature"] == 0.1 and "preset" not in new
    assert new["objectives"] == [
        {"class_path": "medalign.methods.siglip.SigLIP", "init_args": {"bias_init": -10.0}},
        {"class_path": "medalign.methods.slip.SLIP", "init_args": {"weight": 1.0, "temperature": 0.1, "dim": 128}},
    ]
    assert new["lr"] == 0.0005 and "loss" not in new and "local_method" not in new
    assert ModelSpec.from_hparams(OLD_HPARAMS) == ModelSpec.from_hparams(new) == ModelSpec(preset="tiny", vocab_size=100, init_temperature=0.1)


def _old_checkpoint() -> dict:
    """An old-layout checkpoint: flat hyper-parameters, SigLIP's bias and SLIP's head at the module's top level."""
    torch.manual_seed(0)
    new = ContrastiveModule(**{k: v for k, v in OLD_HPARAMS.items() if not k.startswith("_")})
    state = {}
    for key, value in new.state_dict().items():
        key = key.replace("objectives.0.logit_bias", "logit_bias").replace("objectives.1.head.", "slip_head.")
        state[key] = value.clone()
    state["logit_bias"] = torch.tensor(-7.25)
    return {"state_dict": state, "hyper_parameters": dict(OLD_HPARAMS), "pytorch-lightning_version": "2.6.6"}


def test_a_checkpoint_written_before_objectives_loads_with_its_heads(tmp_path):
    checkpoint = _old_checkpoint()
    assert sorted(k for k in checkpoint["state_dict"] if not k.startswith("model.")) == sorted(OLD_EXTRA_KEYS)
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = ContrastiveModule.load_from_checkpoint(tmp_path / "old.ckpt")  # Lightning's own loader, strict
    assert [type(o).__name__ for o in module.objectives] == ["SigLIP", "SLIP"]
    assert float(module.pair_objective.logit_bias) == -7.25
    torch.testing.assert_close(module.objectives[1].head.net[0].weight, checkpoint["state_dict"]["slip_head.net.0.weight"])
    assert module.hparams.model["init_temperature"] == 0.1 and "loss" not in module.hparams
    # a resume compares the old checkpoint's settings with the current form: nothing differs
    assert changed_settings(comparable_hparams(OLD_HPARAMS), comparable_hparams(dict(module.hparams))) == {}


def test_old_yaml_and_flags_are_rewritten_for_lightningcli(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"model": {"init_args": {"loss": "siglip", "init_temperature": 0.1, "lr": 1e-3}}}))
    other = tmp_path / "old_dacl.yaml"
    other.write_text(yaml.safe_dump({"model": {"init_args": {"dacl_weight": 0.5}}}))
    with pytest.warns(DeprecationWarning):
        args = migrate_cli_args(["fit", "--config", str(old), "--config", str(other), "--model.image_weights=w.safetensors",
                                 "--model.init_args.local_weight", "1", "--trainer.max_steps", "3"])
    first = yaml.safe_load(args[2])["model"]["init_args"]
    assert first == {"lr": 1e-3, "model": {"init_temperature": 0.1}, "objectives": [
        {"class_path": "medalign.methods.siglip.SigLIP", "init_args": {"bias_init": -10.0}}]}
    second = yaml.safe_load(args[4])["model"]["init_args"]  # later old configs extend the earlier ones, as before
    assert [o["class_path"].rsplit(".", 1)[1] for o in second["objectives"]] == ["SigLIP", "DACL"]
    assert args[5:7] == ["--model.init_args.model.image_weights", "w.safetensors"] and args[7:9] == ["--trainer.max_steps", "3"]
    flags = yaml.safe_load(args[10])
    assert args[9] == "--model.init_args.objectives" and [o["class_path"].rsplit(".", 1)[1] for o in flags] == ["SigLIP", "DACL", "FILIP"]
    new = migrate_cli_args(["fit", "--config", str(Path(__file__).parents[1] / "conf" / "tiny.yaml"), "--model.init_args.lr", "1"])
    assert new == ["fit", "--config", str(Path(__file__).parents[1] / "conf" / "tiny.yaml"), "--model.init_args.lr", "1"]
