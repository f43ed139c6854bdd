"""The package as users get it: the library/training split, the public API, and the built wheel."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import medalign

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
LIGHTNING = ("lightning", "pytorch_lightning", "lightning_fabric")


def _python(code: str, *, pythonpath: Path | str = SRC, cwd: Path | None = None, flags: tuple[str, ...] = ()) -> str:
    """stdout of `code` in a fresh interpreter that sees only `pythonpath` ahead of site-packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDALIGN_CONFIG_DIR")}
    env.update(PYTHONPATH=str(pythonpath), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, *flags, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


# --------------------------------------------------------------------------- library vs training layer

WALK_LIBRARY = """
import importlib, json, pkgutil, sys
import medalign
LIGHTNING = {lightning!r}
imported, culprits = [], {{}}
for info in pkgutil.walk_packages(medalign.__path__, "medalign."):
    if info.name.split(".")[1] in ("training", "commands"):  # the Lightning layer
        continue
    before = {{m.split(".")[0] for m in sys.modules}}
    importlib.import_module(info.name)
    new = {{m.split(".")[0] for m in sys.modules}} - before
    if new & set(LIGHTNING):
        culprits[info.name] = sorted(new & set(LIGHTNING))
    imported.append(info.name)
library = sorted({{m.split(".")[0] for m in sys.modules}} & set(LIGHTNING))
importlib.import_module("medalign.training.module")  # control: the training layer does load it
training = sorted({{m.split(".")[0] for m in sys.modules}} & set(LIGHTNING))
print(json.dumps(dict(imported=imported, culprits=culprits, library=library, training=training)))
"""


@pytest.mark.slow
def test_library_modules_do_not_import_lightning() -> None:
    out = json.loads(_python(WALK_LIBRARY.format(lightning=LIGHTNING)).strip().splitlines()[-1])
    assert out["culprits"] == {}, f"library modules that import Lightning: {out['culprits']}"
    assert out["library"] == []
    # the walk saw the whole library (new modules join automatically) and the check can fail
    files = {p.relative_to(SRC).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
             for p in (SRC / "medalign").rglob("*.py")}  # fmt: skip
    expected = {m for m in files if m.split(".")[1:2] not in (["training"], ["commands"])}
    assert set(out["imported"]) == expected - {"medalign"}
    assert "lightning" in out["training"]


# --------------------------------------------------------------------------- public API

REQUIRED = [
    "clip_loss", "contrastive_loss", "alignment", "uniformity", "modality_gap", "mean_resultant_length",
    "lambda_shift", "expert_probability", "create_dual_encoder", "DualEncoder", "read_manifest", "Manifest",
    "generate_synthetic",
]  # fmt: skip


def test_every_public_name_resolves_to_its_definition() -> None:
    assert set(REQUIRED) <= set(medalign.__all__)
    assert len(set(medalign.__all__)) == len(medalign.__all__)
    for name in medalign.__all__:
        value = getattr(medalign, name)
        # defined in the library (not re-exported from torch etc.) under the public name
        assert value.__name__ == name, name
        assert value.__module__.startswith("medalign.") and not value.__module__.startswith("medalign.training"), name
        assert getattr(importlib.import_module(value.__module__), name) is value
    assert set(medalign.__all__) <= set(dir(medalign))
    namespace: dict = {}
    exec("from medalign import *", namespace)
    assert set(medalign.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no_such_name"):
        medalign.no_such_name  # noqa: B018


def test_import_medalign_loads_no_heavy_library() -> None:
    code = "import sys, medalign, medalign.cli, medalign.paths, medalign.prepare; print(sorted(m for m in ('torch', 'numpy', 'pandas', 'lightning') if m in sys.modules))"
    assert _python(code).strip() == "[]"


# --------------------------------------------------------------------------- the wheel


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the project (the checkout gets no build/ or egg-info)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(SRC, project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project), "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "BuildBackendWarning" not in log and "SetuptoolsDeprecationWarning" not in log, "the build backend warns about pyproject: " + log[-2000:]
    (wheel,) = (tmp_path / "dist").glob("medalign-*.whl")
    return wheel


def test_wheel_ships_configs_prompts_and_py_typed(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    source = SRC / "medalign"
    for pattern in ("configs/*.yaml", "configs/eval/*.yaml", "configs/ablations/*.yaml", "configs/prompts/*.json", "py.typed"):
        files = sorted(source.glob(pattern))
        assert files, pattern
        missing = [f"medalign/{f.relative_to(source).as_posix()}" for f in files if f"medalign/{f.relative_to(source).as_posix()}" not in names]
        assert not missing, f"not in the wheel: {missing}"
    assert "medalign/paths.py" in names and "medalign/training/module.py" in names

    # the installed layout alone (no site-packages, no source checkout, an empty working folder)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "work"
    work.mkdir()
    code = (
        "import json, medalign, medalign.paths as p\n"
        "print(json.dumps([medalign.__file__, *(str(p.resolve_config(n)) for n in ('demo', 'eval/paper', 'ablations/cnn.yaml')),"
        " str(p.resolve_config('prompts/chexpert5.json', suffixes=()))]))"
    )  # fmt: skip
    package, *configs = json.loads(_python(code, pythonpath=site, cwd=work, flags=("-S",)))
    assert Path(package).is_relative_to(site)
    for resolved, shipped in zip(configs, ("demo.yaml", "eval/paper.yaml", "ablations/cnn.yaml", "prompts/chexpert5.json")):
        assert Path(resolved) == site / "medalign" / "configs" / shipped
        assert Path(resolved).read_bytes() == (source / "configs" / shipped).read_bytes()
