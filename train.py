"""Train or evaluate with LightningCLI: `python train.py fit --config demo.yaml` (bare names resolve in configs/)."""

from medalign.training.cli import cli_main

if __name__ == "__main__":
    cli_main()
