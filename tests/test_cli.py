"""`medalign` help is fast because it imports nothing heavy; the prepare registry loads adapters on use.

Wall-clock numbers are in docs/performance.md (scripts/bench_cli_startup.py); here the cause of
speed is checked directly — which libraries a help command loads — since timings on a shared
machine are not a reliable test.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medalign.prepare import ADAPTERS, REGISTRY, load_adapter
from medalign.prepare.subsets import SubsetAdapter

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "pandas", "numpy", "lightning", "transformers")

RUN_HELP = """
import contextlib, io, json, sys
from medalign.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main({argv!r})
    except SystemExit as exit:
        code = exit.code
print(json.dumps(dict(code=code, out=out.getvalue(), heavy=sorted(m for m in {heavy!r} if m in sys.modules))))
"""


def _help(*argv: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", RUN_HELP.format(argv=list(argv), heavy=HEAVY)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["prepare", "--help"], ["geometry", "-h"], ["demo", "-h"], ["gap-sweep", "-h"], ["resize", "-h"], ["shard", "-h"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    result = _help(*argv)
    assert result["code"] == 0
    assert result["heavy"] == []


def test_prepare_help_lists_every_dataset() -> None:
    out = _help("prepare", "--help")["out"]
    for name, spec in REGISTRY.items():
        assert name in out and spec.summary.split()[0] in out


@pytest.mark.parametrize(("dataset", "option"), [("mimic-cxr", "--views"), ("egd-cxr", "--sigma-fraction"), ("nih-14x100", "--per-class")])
def test_dataset_help_loads_only_its_adapter_without_torch(dataset: str, option: str) -> None:
    result = _help("prepare", dataset, "--help")
    assert result["code"] == 0
    assert option in result["out"]  # the adapter's own options are there
    assert "torch" not in result["heavy"] and "lightning" not in result["heavy"]


def test_registry_points_at_adapters() -> None:
    assert list(ADAPTERS) == list(REGISTRY) and len(ADAPTERS) == 17  # 12 + mbrset, recipes5k, daquar, coco-qa, fakeddit
    for name, spec in REGISTRY.items():
        adapter = load_adapter(name)
        assert callable(adapter.build) and callable(adapter.add_arguments)
        if spec.subset is None:
            assert adapter is importlib.import_module(spec.module)
            assert adapter.NAME == name  # the module's own name for itself
        else:
            assert isinstance(adapter, SubsetAdapter) and adapter.NAME == name
            assert adapter.base is importlib.import_module(spec.module)
            assert adapter.per_class == spec.subset.per_class and len(adapter.classes) >= 5
        assert ADAPTERS[name].NAME == name
    nih = load_adapter("nih-14x100")
    assert nih.classes == list(importlib.import_module("medalign.prepare.nih").FINDINGS)
    with pytest.raises(KeyError, match="known: mimic-cxr"):
        load_adapter("mimic")


def test_prepare_package_reexports_load_on_use() -> None:
    import medalign.prepare as prepare
    from medalign.prepare import base, subsets, writer

    assert prepare.write_manifest is writer.write_manifest and prepare.summary is writer.summary
    assert prepare.AdapterError is base.AdapterError and prepare.Prepared is base.Prepared
    assert prepare.single_label_subset is subsets.single_label_subset
    with pytest.raises(AttributeError, match="no_such"):
        prepare.no_such  # noqa: B018


def test_full_parser_has_every_adapter_option() -> None:
    from medalign.commands.prepare import build_parser

    args = build_parser().parse_args(["mimic-cxr", "--root", "r", "--out", "o", "--views", "all"])
    assert args.views == ["all"] and args.dataset == "mimic-cxr"
    with pytest.raises(SystemExit):  # without the adapter's options, --views is unknown
        build_parser([]).parse_args(["mimic-cxr", "--root", "r", "--out", "o", "--views", "all"])
    assert isinstance(build_parser(["chexpert"]), argparse.ArgumentParser)
