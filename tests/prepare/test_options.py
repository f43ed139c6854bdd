"""Typed adapters: keyword options with defaults, argparse generated from the ``build`` signature."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Literal

import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.prepare import brset, chexpert, egd_cxr, ham10000, mimic, nih, openi, options, reflacx, rsna
from medalign.prepare.writer import write_manifest
from tests.prepare import fixtures

MODULES = [brset, chexpert, egd_cxr, ham10000, mimic, nih, openi, reflacx, rsna]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_generated_parser_matches_the_signature(module):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}
    params = {n: p for n, p in inspect.signature(module.build).parameters.items() if p.kind is p.KEYWORD_ONLY}
    assert set(actions) == set(params) and params
    for name, param in params.items():
        action = actions[name]
        assert action.option_strings == ["--" + name.replace("_", "-")]
        assert action.help, f"{module.NAME}.build documents no help for {name}"
        if param.default is inspect.Parameter.empty:
            assert action.required
        else:
            default = list(param.default) if isinstance(param.default, tuple) and action.nargs == "+" else param.default
            assert action.default == default and not action.required
    # Parsing no options gives the signature's defaults (required ones aside).
    required = [a for n, a in actions.items() if a.required]
    argv = [x for a in required for x in (a.option_strings[0], "m.csv")]
    parsed = options.from_namespace(module.build, parser.parse_args(argv))
    assert {k: v for k, v in parsed.items() if not actions[k].required} == {
        n: (list(p.default) if isinstance(p.default, tuple) and actions[n].nargs == "+" else p.default)
        for n, p in params.items() if p.default is not inspect.Parameter.empty
    }  # fmt: skip


def test_notebook_call_equals_the_command_line(tmp_path):
    root = fixtures.chexpert(tmp_path)
    cli = pd.read_csv(run(["chexpert", "--root", str(root), "--out", str(tmp_path / "a"), "--views", "all",
                           "--val-fraction", "0.5", "--seed", "3"]))  # fmt: skip
    prepared = chexpert.build(str(root), views="all", val_fraction=0.5, seed=3)
    notebook = pd.read_csv(write_manifest(prepared, tmp_path / "b"))
    pd.testing.assert_frame_equal(cli, notebook)
    assert len(notebook) == 12 and set(notebook["split"]) == {"train", "val"}
    with pytest.raises(TypeError, match="unexpected keyword argument 'frontal'"):
        chexpert.build(root, frontal=True)
    with pytest.raises(TypeError, match="takes keyword options"):
        chexpert.build(root, "all")


def test_types_map_to_arguments():
    def build(
        root: Path,
        *,
        flag: bool = False,
        mode: Literal["a", "b"] = "a",
        size: tuple[int, int] | None = None,
        names: list[str] = ("x", "y"),
        rate: float = 0.5,
        path: str,
    ):
        """Toy.

        Args:
            root: ignored.
            flag: a flag
                over two lines.
            mode: a mode.
        """

    parser = argparse.ArgumentParser()
    options.add_arguments(parser, build)
    ns = parser.parse_args(["--flag", "--size", "3", "4", "--names", "p", "--path", "q"])
    assert (ns.flag, ns.mode, ns.size, ns.names, ns.rate, ns.path) == (True, "a", [3, 4], ["p"], 0.5, "q")
    assert parser.parse_args(["--flag", "false", "--path", "q"]).flag is False
    assert parser.parse_args(["--path", "q"]).names == ["x", "y"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c", "--path", "q"])
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --path is required
    assert options.option_docs(build) == {"root": "ignored.", "flag": "a flag over two lines.", "mode": "a mode."}


def test_gaze_only_annotated_bare_flag_still_works(tmp_path):
    root = fixtures.mimic(tmp_path / "mimic")
    manifest = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "m")])
    egd = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1)])
    path = run(["egd-cxr", "--root", str(egd), "--manifest", str(manifest), "--out", str(tmp_path / "o"), "--only-annotated"])
    assert list(pd.read_csv(path)["id"]) == ["d1"]
    prepared = egd_cxr.build(egd, manifest=str(manifest), only_annotated=False)
    assert sorted(prepared.frame["id"]) == ["d1", "d3", "d6"] and list(prepared.heatmaps) == ["heatmaps/d1.npy"]
