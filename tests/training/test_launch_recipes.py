"""The SLURM recipes (scripts/slurm/) and the torchrun lines of docs/gpu.md parse against the real CLI.

Each recipe's ``train.py`` command line goes through `MedAlignCLI`'s own parser (the classes are
not instantiated, nothing trains); its values are then checked against the launcher's: SLURM's
``--ntasks-per-node`` / ``--nodes`` / ``--gres`` (and Lightning's own `SLURMEnvironment` check
under those variables), or torchrun's ``--nproc_per_node`` / ``--nnodes`` (torch's own parser and
Lightning's `TorchElasticEnvironment` check).
"""

from __future__ import annotations

import re
import shlex
import string
import sys
from pathlib import Path

import pytest
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from torch.distributed.run import get_args_parser

from medalign.training import cli as cli_module
from medalign.training.checkpointing import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "scripts" / "slurm").glob("*.sbatch"))
PAPER_GLOBAL_BATCH = 512  # eCLIP §4.1
ENV = {"MANIFEST": "/data/mimic/manifest.csv", "BERT": "/models/Bio_ClinicalBERT"}  # the recipes' required inputs


def sbatch_directives(text: str) -> dict[str, str]:
    """``#SBATCH --key=value`` lines (comments stripped); flags without a value map to ''."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH"):
            option = line[len("#SBATCH"):].split("#")[0].strip()
            key, _, value = option.partition("=")
            found[key.lstrip("-")] = value
    return found


def shell_defaults(text: str, env: dict[str, str]) -> dict[str, str]:
    """Values of ``VAR=${VAR:-default}`` / ``VAR=${VAR:?message}`` lines: from `env`, else the default."""
    values = dict(env)
    for name, kind, default in re.findall(r"^(\w+)=\$\{\w+:([-?])(.*)\}$", text, flags=re.M):
        if name not in values:
            if kind == "?":
                raise KeyError(f"the recipe requires {name}; the test gives none")
            values[name] = default
    return values


def command_lines(text: str, program: str) -> list[list[str]]:
    """Every command starting with `program` (continuation lines joined), as shell words."""
    joined = re.sub(r"\\\n", " ", text)
    return [shlex.split(line.split("#")[0]) for line in joined.splitlines() if line.strip().startswith(program + " ")]


def parse_train_args(args: list[str], monkeypatch) -> dict:
    """The `fit` config the real CLI parser makes of `args` (nothing instantiated, nothing run)."""
    monkeypatch.setattr(cli_module.MedAlignCLI, "instantiate_classes", lambda self: None)
    monkeypatch.setattr(cli_module.MedAlignCLI, "_run_subcommand", lambda self, subcommand: None)
    monkeypatch.setattr(sys, "argv", ["train.py"])
    cli = cli_module.cli_main(args)  # parses `fit` and its arguments, then (patched) neither builds nor runs
    assert cli.subcommand == "fit"
    return cli.config["fit"]


def check_recipe(text: str, monkeypatch, env: dict[str, str] = ENV) -> dict:
    """Assert that an sbatch recipe is consistent with the command it runs; returns its parsed config."""
    directives = sbatch_directives(text)
    commands = command_lines(string.Template(text).safe_substitute(shell_defaults(text, env)), "srun")
    assert len(commands) == 1, "one srun line per recipe"
    words = commands[0]
    assert words[1:3] == ["python", "train.py"], f"expected `srun python train.py ...`, got {words[:3]}"
    config = parse_train_args(words[3:], monkeypatch)
    trainer, data = config["trainer"], config["data"]
    nodes, per_node = int(directives["nodes"]), int(directives["ntasks-per-node"])
    assert int(trainer["devices"]) == per_node, "trainer.devices must equal --ntasks-per-node"
    assert int(trainer["num_nodes"]) == nodes, "trainer.num_nodes must equal --nodes"
    assert directives["gres"] == f"gpu:{per_node}", "one GPU per task"
    assert trainer["strategy"] == "ddp" and trainer["accelerator"] == "gpu"
    assert data["num_workers"] < int(directives["cpus-per-task"])
    assert data["batch_size"] * per_node * nodes * trainer["accumulate_grad_batches"] == PAPER_GLOBAL_BATCH
    # pre-emption: SIGTERM before the limit, last.ckpt in a fixed folder, requeue on medalign's exit code
    assert re.fullmatch(r"TERM@\d+", directives["signal"]) and "requeue" in directives
    assert config["ckpt_path"] == "last" and config["checkpoint"]["dirpath"]
    assert re.search(rf'if \[ "\$code" -eq {PREEMPTED_EXIT_CODE} \]; then\s+scontrol requeue "\$SLURM_JOB_ID"', text)
    # Lightning's own check under the variables SLURM sets for this allocation
    slurm = {"SLURM_NTASKS": str(nodes * per_node), "SLURM_NTASKS_PER_NODE": str(per_node),
             "SLURM_NNODES": str(nodes), "SLURM_JOB_NAME": directives["job-name"]}
    for key, value in slurm.items():
        monkeypatch.setenv(key, value)
    SLURMEnvironment().validate_settings(num_devices=int(trainer["devices"]), num_nodes=int(trainer["num_nodes"]))
    return config


def test_there_are_recipes_for_one_and_two_nodes_of_eight_gpus():
    layouts = {(sbatch_directives(p.read_text())["nodes"], sbatch_directives(p.read_text())["ntasks-per-node"]) for p in RECIPES}
    assert {("1", "8"), ("2", "8")} <= layouts


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
@pytest.mark.parametrize("config", ["clip_swin.yaml", "eclip_swin.yaml"])
def test_recipe_parses_against_the_cli_and_agrees_with_slurm(recipe, config, monkeypatch):
    parsed = check_recipe(recipe.read_text(), monkeypatch, {**ENV, "CONFIG": config})
    assert parsed["data"]["manifest"] == ENV["MANIFEST"] and parsed["model"]["init_args"]["model"]["text_model"] == ENV["BERT"]


@pytest.mark.parametrize(
    "old, new, match",
    [
        ("--trainer.devices 8", "--trainer.devices 4", "trainer.devices must equal"),
        ("#SBATCH --requeue", "#SBATCH --no-requeue", ""),
        ("--ckpt_path last", "", ""),
    ],
)
def test_the_checker_catches_an_inconsistent_recipe(old, new, match, monkeypatch):
    text = RECIPES[0].read_text()
    assert old in text
    with pytest.raises(AssertionError, match=match):
        check_recipe(text.replace(old, new), monkeypatch)


def test_a_misspelled_flag_is_refused_by_the_parser(monkeypatch):
    text = RECIPES[0].read_text().replace("--trainer.num_nodes", "--trainer.nodes")  # (a prefix such as num_node would be accepted: argparse abbreviations)
    with pytest.raises(SystemExit):
        check_recipe(text, monkeypatch)


def test_the_torchrun_lines_of_docs_gpu_parse_and_agree(monkeypatch):
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "gpu.md").read_text(), flags=re.S)
    commands = command_lines("\n".join(blocks), "torchrun")
    assert len(commands) >= 2, "docs/gpu.md shows a single-node and a multi-node torchrun line"
    layouts = set()
    for words in commands:
        launch = get_args_parser().parse_args(words[1:])  # torch's own torchrun parser
        assert launch.training_script == "train.py"
        config = parse_train_args(launch.training_script_args, monkeypatch)
        trainer = config["trainer"]
        nnodes, per_node = int(str(launch.nnodes).split(":")[-1]), int(launch.nproc_per_node)
        assert int(trainer["devices"]) == per_node and int(trainer["num_nodes"]) == nnodes
        assert trainer["strategy"] == "ddp" and config["ckpt_path"] == "last"
        assert config["data"]["batch_size"] * per_node * nnodes == PAPER_GLOBAL_BATCH
        monkeypatch.setenv("WORLD_SIZE", str(per_node * nnodes))
        TorchElasticEnvironment().validate_settings(num_devices=per_node, num_nodes=nnodes)
        layouts.add((nnodes, per_node))
    assert {(1, 8), (2, 8)} <= layouts
