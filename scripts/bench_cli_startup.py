"""Start-up time of `medalign` commands: help screens and the time to a user's first error.

Run from the repository root::

    python scripts/bench_cli_startup.py [--runs 5] [--baseline-src OLD_CHECKOUT/src] [--only fit]

Every command runs in fresh interpreters, `--runs` times, alternated with a bare ``python -c pass``
(and with the same command on `--baseline-src`, when given) so that both sides see the same machine
load; the table gives the medians, the ratio to the bare interpreter (or to the baseline), and the
heavy libraries the command loaded. The error commands run in an empty temporary folder, so the
demo config's data is not generated. Results: docs/performance.md, "CLI start-up".
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
TYPO_YAML = "data:\n  num_workers: 0\n  batchsize: 8\n"
# (label, argv, expected exit code)
COMMANDS: list[tuple[str, list[str], int]] = [
    ("help", ["--help"], 0),
    ("help", ["prepare", "--help"], 0),
    ("help", ["prepare", "mimic-cxr", "--help"], 0),
    ("help", ["synth", "-h"], 0),
    ("help", ["geometry", "-h"], 0),
    ("help", ["gap-sweep", "-h"], 0),
    ("help", ["demo", "-h"], 0),
    ("help", ["fit", "--help"], 0),
    ("error", ["fit", "--config", "demo.yaml", "--config", "typo.yaml"], 2),
    ("error", ["fit", "--config", "demo.yaml", "--trainer.max_epohcs", "1"], 2),
    ("error", ["fit", "--config", "demo.yaml", "--data.manifest", "data/synthtic/manifest.csv"], 1),
]
HEAVY = ("torch", "pandas", "lightning", "transformers", "timm")
CODE = "from medalign.cli import main; main()"
# the console script's code, plus a report of the heavy modules loaded (printed at exit)
PROBE = (
    "import atexit, sys\n"
    f"atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules) + '\\n'))\n"
    f"{CODE}\n"
)


def _env(src: Path) -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MEDALIGN_DEBUG="0", PYTHONPATH=str(src))


def seconds(code: str, args: list[str], src: Path, cwd: Path, expect: int) -> float:
    """Wall time of one fresh ``python -c code *args`` process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], env=_env(src), cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise RuntimeError(f"medalign {' '.join(args)} exited {done.returncode} (expected {expect}): {done.stderr[-2000:]}")
    return elapsed


def heavy_modules(args: list[str], src: Path, cwd: Path) -> str:
    """The heavy libraries `medalign *args` imports (one extra run)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=_env(src), cwd=cwd, capture_output=True, text=True)
    line = next((x for x in done.stderr.splitlines() if x.startswith("HEAVY=")), "HEAVY=?")
    return line.removeprefix("HEAVY=") or "—"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per command and side (median)")
    parser.add_argument("--src", type=Path, default=SRC, help="source folder to measure")
    parser.add_argument("--baseline-src", type=Path, default=None, help="an older checkout's src/, run alternately with --src")
    parser.add_argument("--only", default="", help="measure only commands whose text contains this")
    args = parser.parse_args()
    src = args.src.resolve()
    base = args.baseline_src.resolve() if args.baseline_src else None
    work = Path(tempfile.mkdtemp(prefix="bench_cli_"))
    (work / "typo.yaml").write_text(TYPO_YAML)
    print(f"{os.cpu_count()} CPUs, load average {_load()} at start; medians of {args.runs} alternated runs\n")
    head = "| command | median s | × bare python |"
    if base:
        head += " baseline median s | × baseline |"
    print(head + " heavy imports |" + (" heavy imports (baseline) |" if base else ""))
    print("|---|" + "---:|" * (4 if base else 2) + "---|" * (2 if base else 1))
    for label, command, expect in COMMANDS:
        if args.only not in " ".join(command):
            continue
        bare, ours, theirs = [], [], []
        for _ in range(args.runs):  # alternated, so a load spike hits every side alike
            bare.append(seconds("pass", [], src, work, 0))
            ours.append(seconds(CODE, command, src, work, expect))
            if base:
                theirs.append(seconds(CODE, command, base, work, expect))
        mine, ref = statistics.median(ours), statistics.median(bare)
        row = f"| `medalign {' '.join(command)}` ({label}) | {mine:.2f} | {mine / ref:.0f} |"
        if base:
            old = statistics.median(theirs)
            row += f" {old:.2f} | {mine / old:.3f} |"
        row += f" {heavy_modules(command, src, work)} |"
        if base:
            row += f" {heavy_modules(command, base, work)} |"
        print(row, flush=True)
    print(f"\nload average {_load()} at the end")


if __name__ == "__main__":
    main()
