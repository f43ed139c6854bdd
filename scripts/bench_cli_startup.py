"""Start-up time of `medalign` help commands: median of N fresh interpreters each, vs bare ``python -c pass``.

Run from the repository root (``python scripts/bench_cli_startup.py [--runs 5]``); prints a Markdown
table (docs/performance.md, "CLI start-up") with the median wall time, its ratio to a bare
interpreter, and which heavy libraries the command loaded. The target is < 2 s for
``medalign --help`` and ``medalign prepare --help`` (issue 10).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = [
    ["--help"],
    ["prepare", "--help"],
    ["prepare", "mimic-cxr", "--help"],
    ["prepare", "egd-cxr", "--help"],
    ["synth", "-h"],
    ["geometry", "-h"],
    ["gap-sweep", "-h"],
    ["demo", "-h"],
]
HEAVY = ("torch", "pandas", "lightning")
# the console script's code, plus a report of the heavy modules loaded (printed at exit, after --help)
PROBE = (
    "import atexit, sys\n"
    f"atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules) + '\\n'))\n"
    "from medalign.cli import main\n"
    "main()\n"
)


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.setdefault("PYTHONPATH", str(SRC))
    return env


def median_seconds(code: str, args: list[str], runs: int) -> float:
    """Median wall time of `runs` fresh ``python -c code *args`` processes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, *args], env=_env(), capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"medalign {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return statistics.median(times)


def heavy_modules(args: list[str]) -> str:
    """The heavy libraries `medalign *args` imports (one extra run)."""
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=_env(), capture_output=True, text=True)
    line = next((x for x in done.stderr.splitlines() if x.startswith("HEAVY=")), "HEAVY=?")
    return line.removeprefix("HEAVY=") or "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per command (median)")
    parser.add_argument("--src", type=Path, default=SRC, help="source folder to measure (e.g. an older checkout's src/)")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(args.src.resolve()), os.environ.get("PYTHONPATH", "")) if p)
    bare = median_seconds("pass", [], args.runs)
    print(f"bare `python -c pass`: {bare:.3f} s (median of {args.runs}); {os.cpu_count()} CPUs\n")
    print("| command | median s | × bare python | heavy imports |")
    print("|---|---:|---:|---|")
    for command in COMMANDS:
        seconds = median_seconds("from medalign.cli import main; main()", command, args.runs)
        print(f"| `medalign {' '.join(command)}` | {seconds:.2f} | {seconds / bare:.1f} | {heavy_modules(command)} |", flush=True)


if __name__ == "__main__":
    main()
