"""Run a benchmark grid cell by cell: resumable, one failure never stops the grid.

Each cell runs as two processes (``python -m medalign fit ...`` then ``test ...``), exactly the
command lines `Cell.commands` prints for a cluster. A cell's folder holds:

* ``cell.json`` — its key, config hash and code identity (written when it starts);
* ``log.txt`` — both processes' output;
* ``done.json`` — written after `test` succeeded: the hash, the code identity
  (`medalign.provenance.code_identity`: version, commit), the training manifest's SHA-256 and the
  results.json path;
* ``failed.json`` — the return code and the log's tail, when a process failed.

A finished cell (``done.json`` with the same hash) is skipped. A cell whose config or training
manifest changed is moved aside (``<folder>.stale-<old hash>``) and re-run. A cell finished by
another code version is ``outdated``: kept (and refused by ``--aggregate`` unless mixing is
allowed) unless ``rerun_outdated`` moves it aside like a stale one. An interrupted `fit` resumes
from its ``last.ckpt``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from medalign.benchmark.grid import Cell
from medalign.provenance import code_identity
from medalign.run_folder import RunFolder

log = logging.getLogger(__name__)


@dataclass
class CellOutcome:
    """What happened to one cell: ``done``, ``skipped`` (already done), or ``failed``."""

    key: str
    status: str
    seconds: float = 0.0
    error: str | None = None


def set_aside(folder: Path, old_hash: str) -> Path:
    """Move a cell folder whose settings changed to ``<name>.stale-<old_hash>`` (replacing an older one)."""
    aside = folder.with_name(f"{folder.name}.stale-{old_hash}")
    shutil.rmtree(aside, ignore_errors=True)
    folder.rename(aside)
    return aside


def start_cell(folder: Path, record: dict[str, Any]) -> None:
    """Open a cell folder for a (re)run: no failure marker, ``cell.json`` = `record` (its identity)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "failed.json").unlink(missing_ok=True)
    (folder / "cell.json").write_text(json.dumps(record, indent=2))


def manifest_hash(cell: Cell) -> str | None:
    """SHA-256 of the cell's training manifest (None when it names none or the file does not exist yet)."""
    if not cell.manifest or not Path(cell.manifest).is_file():
        return None
    from medalign.run_folder import file_sha256

    return file_sha256(cell.manifest)


def cell_status(cell: Cell, code_version: str | None = None) -> str:
    """``done``, ``outdated`` (done by another code version than `code_version`, when given),
    ``stale`` (another config or training manifest), ``partial`` or ``new``."""
    done = cell.folder / "done.json"
    if done.is_file():
        record = json.loads(done.read_text())
        if record.get("config_hash") != cell.config_hash:
            return "stale"
        recorded, current = record.get("manifest_sha256"), manifest_hash(cell)
        if recorded and current and recorded != current:
            return "stale"
        if code_version is not None and record.get("code", {}).get("code_version") != code_version:
            return "outdated"
        return "done"
    marker = cell.folder / "cell.json"
    if marker.is_file():
        return "partial" if json.loads(marker.read_text()).get("config_hash") == cell.config_hash else "stale"
    return "new"


def cell_identity(cell: Cell) -> dict:
    """What a finished cell's numbers depend on besides its seed: recorded in ``done.json``."""
    return {"config_hash": cell.config_hash, "code": code_identity(), "manifest": cell.manifest, "manifest_sha256": manifest_hash(cell)}


def latest_results(cell: Cell) -> Path | None:
    """The newest ``eval/<timestamp>/results.json`` of a cell."""
    found = RunFolder(cell.folder).eval_results()
    return found[-1] if found else None


def _default_launch(args: list[str], log_file: Path) -> int:
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    with log_file.open("a") as out:
        out.write(f"\n$ {' '.join(args)}\n")
        out.flush()
        return subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env).returncode


def run_cell(
    cell: Cell, launch: Callable[[list[str], Path], int] = _default_launch, python: str = sys.executable, rerun_outdated: bool = False,
) -> CellOutcome:
    """Run (or resume) one cell; never raises for a failing run (the outcome says so).

    A cell done by another code version is skipped (outcome ``outdated``) unless `rerun_outdated`.
    """
    status = cell_status(cell, code_identity()["code_version"])
    if status == "done":
        return CellOutcome(cell.key, "skipped")
    if status == "outdated" and not rerun_outdated:
        return CellOutcome(cell.key, "outdated")
    if status in ("stale", "outdated"):
        old = json.loads((cell.folder / "cell.json").read_text()).get("config_hash", "unknown")
        log.info("benchmark: %s changed config; old run moved to %s", cell.key, set_aside(cell.folder, old))
    start_cell(cell.folder, {"key": cell.key, "config_hash": cell.config_hash, "code": code_identity()})
    log_file = cell.folder / "log.txt"
    start = time.perf_counter()
    fit = list(cell.fit_args)
    last = RunFolder(cell.folder).last_checkpoint
    if last.is_file():  # an interrupted cell continues exactly where it stopped
        fit += ["--ckpt_path", str(last)]
    for stage, args in (("fit", fit), ("test", list(cell.test_args))):
        code = launch([python, "-m", "medalign", *args], log_file)
        if code != 0:
            tail = log_file.read_text(errors="replace")[-3000:] if log_file.is_file() else ""
            error = f"{stage} exited with code {code}"
            (cell.folder / "failed.json").write_text(json.dumps({"key": cell.key, "stage": stage, "code": code, "log_tail": tail}, indent=2))
            return CellOutcome(cell.key, "failed", time.perf_counter() - start, error)
    results = latest_results(cell)
    if results is None:
        error = "test wrote no results.json"
        (cell.folder / "failed.json").write_text(json.dumps({"key": cell.key, "stage": "test", "error": error}, indent=2))
        return CellOutcome(cell.key, "failed", time.perf_counter() - start, error)
    seconds = time.perf_counter() - start
    done = {"key": cell.key, **cell_identity(cell), "results": str(results.relative_to(cell.folder)), "seconds": seconds}
    (cell.folder / "done.json").write_text(json.dumps(done, indent=2))
    return CellOutcome(cell.key, "done", seconds)


def run_grid(
    cells: list[Cell], launch: Callable[[list[str], Path], int] = _default_launch, progress: bool = True, rerun_outdated: bool = False,
    callback: Callable[[int, int | None], None] | None = None,
) -> list[CellOutcome]:
    """Run every cell in order; failed cells are reported and the grid goes on.

    With `progress`, a line per cell as it starts (its log file, the grid's elapsed time and ETA) and as it ends
    (its outcome and time); `callback(done, total)` after each cell.
    """
    from medalign.progress import Progress, format_seconds

    outcomes = []
    with Progress(len(cells), "benchmark", None if progress else False, callback, log_every=float("inf"), unit="cell") as bar:
        for i, cell in enumerate(cells, 1):
            if progress:
                eta = bar.eta()
                log.info("benchmark: cell %d/%d %s started (follow %s); grid %s elapsed%s", i, len(cells), cell.key,
                         cell.folder / "log.txt", format_seconds(bar.elapsed), f", ETA {format_seconds(eta)}" if eta is not None else "")
            outcome = run_cell(cell, launch, rerun_outdated=rerun_outdated)
            if outcome.status == "failed":
                log.error("benchmark: cell %s failed (%s); see %s", cell.key, outcome.error, cell.folder / "log.txt")
            elif progress:
                log.info("benchmark: cell %d/%d %s %s in %s", i, len(cells), cell.key, outcome.status, format_seconds(outcome.seconds))
            outcomes.append(outcome)
            bar.update()
    return outcomes
