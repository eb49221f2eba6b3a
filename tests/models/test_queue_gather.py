"""The queue's gather across ranks: one fixed-size collective, every rank's rows in rank order."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models.rspnet import _gather_ranks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mine = torch.arange(6, dtype=torch.float32).reshape(3, 2) + 100 * rank
        results[rank] = _gather_ranks(mine)
    finally:
        dist.destroy_process_group()


def test_every_rank_gets_every_ranks_rows_in_rank_order():
    world = 2
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(world, _free_port(), results), nprocs=world)
        gathered = [results[r] for r in range(world)]
    expected = torch.cat([torch.arange(6, dtype=torch.float32).reshape(3, 2) + 100 * r for r in range(world)])
    for got in gathered:
        assert torch.equal(got, expected)


def test_alone_the_rows_are_returned_as_they_are():
    x = torch.randn(4, 3)
    assert _gather_ranks(x) is x
