"""Identical expert/no-expert decisions on two gloo ranks whose global RNGs differ."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medalign.curriculum import expert_decision


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(rank)  # deliberately different global RNG state per rank
    torch.rand(rank + 1)
    mine = torch.tensor([expert_decision(7, step, 0.3) for step in range(500)], dtype=torch.int64)
    gathered = [torch.zeros_like(mine) for _ in range(2)]
    dist.all_gather(gathered, mine)
    if rank == 0:
        torch.save(torch.stack(gathered), out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_draw_identical_decisions(tmp_path):
    out = str(tmp_path / "decisions.pt")
    mp.spawn(_worker, args=(_free_port(), out), nprocs=2, join=True)
    both = torch.load(out)
    assert torch.equal(both[0], both[1])
    assert 0.2 < both[0].float().mean() < 0.4  # and they are real Bernoulli(0.3) draws
