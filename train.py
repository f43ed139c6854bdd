"""Train or evaluate with LightningCLI: `python train.py fit --config demo.yaml` (bare names resolve in configs/).

The same entry as the `medalign` console script: config mistakes reported before the heavy imports,
one-line user errors (`--debug` for tracebacks) and medalign's log lines (e.g. per-epoch summaries).
"""

from medalign.cli import main

if __name__ == "__main__":
    main()
