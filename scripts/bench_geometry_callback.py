"""Time GeometryCallback against the demo epoch it runs in (configs/demo.yaml, CPU).

    python scripts/bench_geometry_callback.py [--epochs 2] [--plot-every 1]

Prints, per epoch, the epoch's wall time (train + validation), the time spent inside the
callback's hooks (collecting rows, gathering, metrics, k-means, picture) and their ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--plot-every", type=int, default=1, help="1 = a picture every epoch (the worst case)")
    args = parser.parse_args()

    import lightning as L

    from medalign.training.callbacks import GeometryCallback
    from medalign.training.cli import cli_main

    class EpochClock(L.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._start = time.perf_counter()

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if not trainer.sanity_checking:
                self.seconds.append(time.perf_counter() - self._start)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        sys.argv = sys.argv[:1]
        cli = cli_main(
            [
                "--config", "demo.yaml",
                "--data.manifest", str(REPO / "data" / "synthetic" / "manifest.csv"),
                "--trainer.max_epochs", str(args.epochs),
                "--trainer.enable_progress_bar", "false",
                "--checkpoint.dirpath", str(Path(tmp) / "ckpt"),
            ],
            run=False,
        )
        geometry = next(c for c in cli.trainer.callbacks if isinstance(c, GeometryCallback))
        geometry.plot_every_n_epochs = args.plot_every
        clock = EpochClock()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        n_val = len(cli.datamodule.datasets["val"])

    print(f"demo config, {n_val} validation pairs, subset_size {geometry.subset_size}, picture every {args.plot_every} epoch(s)")
    print(f"{'epoch':>5} {'epoch s':>10} {'callback s':>11} {'ratio':>8}")
    for epoch, (total, spent) in enumerate(zip(clock.seconds, geometry.seconds)):
        print(f"{epoch:>5} {total:>10.2f} {spent:>11.3f} {spent / total:>8.2%}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
