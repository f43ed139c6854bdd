"""Run several jobs on one pair of gloo ranks: one spawn (two fresh interpreters) for all of them.

Starting the two interpreters (torch, Lightning, medalign imported in each) costs far more than a
tiny model's training step, so the DDP-equivalence tests (``test_ddp.py``) send all their two-rank
runs through one pair instead of one ``ddp_spawn`` per ``fit``. Each rank initialises the gloo
process group itself and sets ``LOCAL_RANK`` / ``WORLD_SIZE``, so a ``Trainer(strategy="ddp",
devices=2)`` built inside a job runs as an externally launched rank of that group (Lightning
launches nothing and reuses the group) — the same DDPStrategy, gradient all-reduce and
DistributedSampler as under ``ddp_spawn``.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, jobs: dict[str, Callable[[], Any]], out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD_SIZE), NODE_RANK="0",
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(minutes=10))
    for name, job in jobs.items():
        try:
            result = job()
        except Exception as err:  # the whole pair stops (the other rank would wait in a collective); name the job
            raise RuntimeError(f"two-rank job {name!r} failed on rank {rank}") from err
        torch.save(result, Path(out_dir) / f"{name}.rank{rank}.pt")
        os.environ["WORLD_SIZE"] = str(WORLD_SIZE)  # Lightning's environment teardown deletes it
    dist.destroy_process_group()


def run_on_two_gloo_ranks(jobs: dict[str, Callable[[], Any]], out_dir: Path) -> dict[str, list[Any]]:
    """Run `jobs` in order on 2 spawned gloo ranks; returns each job's return value on rank 0 and rank 1.

    Jobs must be picklable (module-level functions or ``functools.partial`` of them) and call the
    same collectives on both ranks. A job that raises stops the pair; the error names the job.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    mp.start_processes(_worker, args=(_free_port(), jobs, str(out_dir)), nprocs=WORLD_SIZE, join=True,
                       start_method="spawn")
    return {name: [torch.load(out_dir / f"{name}.rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]
            for name in jobs}
