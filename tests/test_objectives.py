"""The losses against values worked out by hand, and the queue path's gradients and bookkeeping."""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from objectives.avid import KeyQueue, info_nce, momentum_update
from objectives.rsp import rsp_loss, speed_classification_loss
from objectives.speednet import sped_up_targets, speed_accuracy, speed_loss


def test_speednet_bce_by_hand():
    logits, targets = torch.tensor([0.0, 2.0]), sped_up_targets(["normal", "sped_up"])
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # -log sigmoid(-0), -log sigmoid(2)
    assert speed_loss(logits, targets).item() == pytest.approx(expected)
    assert speed_accuracy(torch.tensor([-1.0, 3.0, 0.5]), torch.tensor([0.0, 1.0, 0.0])).item() == pytest.approx(2 / 3)


def test_rsp_triplet_by_hand():
    anchor = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    same = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # cosine 1, 0, 1/sqrt(2)
    other = torch.tensor([[0.0, 3.0], [5.0, 0.0], [1.0, 0.8]])  # cosine 0, 1, 1/sqrt(1.64)
    per_triplet = [max(0, 0.15 - (1 - 0)), max(0, 0.15 - (0 - 1)),
                   max(0, 0.15 - (1 / math.sqrt(2) - 1 / math.sqrt(1.64)))]  # 0, 1.15, 0.2238
    assert rsp_loss(anchor, same, other).item() == pytest.approx(sum(per_triplet) / 3, rel=1e-6)
    assert rsp_loss(anchor, same, other, scale=1 / 0.07).item() == pytest.approx(sum(per_triplet) / 3 / 0.07, rel=1e-6)


def test_speed_classification_by_hand():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    loss = speed_classification_loss(logits, torch.tensor([2.0, 1.0]), (1.0, 2.0))
    expected = (math.log(2) + math.log(1 + math.exp(-2))) / 2  # uniform; right class at +2
    assert loss.item() == pytest.approx(expected)


def test_info_nce_by_hand():
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    # logits (1, 0, -1) / 0.5 = (2, 0, -2); loss = -log softmax(...)[0]
    expected = math.log(math.exp(2) + 1 + math.exp(-2)) - 2
    assert info_nce(q, k, queue, tau=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_gradients_flow_to_queries_through_the_queue_path_not_to_keys():
    torch.manual_seed(0)
    q = torch.randn(4, 8, requires_grad=True)
    k = torch.randn(4, 8, requires_grad=True)
    queue = KeyQueue(dim=8, size=16)
    info_nce(q, k, queue.keys).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0 and k.grad is None
    first = q.grad.clone()
    q.grad = None
    queue.push(torch.randn(16, 8))  # other negatives: a different gradient for the same queries
    info_nce(q, k, queue.keys).backward()
    assert not torch.allclose(first, q.grad)


@given(st.integers(1, 40), st.integers(1, 40))
def test_queue_is_a_fifo_ring_of_unit_keys(first, second):
    queue = KeyQueue(dim=3, size=16)
    a, b = torch.randn(first, 3), torch.randn(second, 3)
    queue.push(a)
    queue.push(b)
    pushed = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    assert queue.ptr.item() == (first + second) % 16
    for n in range(min(16, first + second)):  # the newest keys, at their ring positions
        slot = (first + second - 1 - n) % 16
        assert torch.allclose(queue.keys[slot], pushed[-1 - n])
    assert torch.allclose(queue.keys.norm(dim=1), torch.ones(16))


def test_momentum_update_by_hand():
    online, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0), online.bias.fill_(1.0), target.weight.fill_(0.0), target.bias.fill_(2.0)
    momentum_update(online, target, m=0.9)
    assert torch.allclose(target.weight, torch.full((1, 2), 0.1)) and torch.allclose(target.bias, torch.tensor([1.9]))


def test_momentum_update_copies_buffers():
    """Buffers (batch-norm statistics, its step counter) are copied, not averaged, as documented."""
    online, target = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        online.running_mean.fill_(2.0), online.running_var.fill_(5.0), online.num_batches_tracked.fill_(7)
    momentum_update(online, target, m=0.9)
    assert torch.equal(target.running_mean, torch.full((3,), 2.0)) and torch.equal(target.running_var, torch.full((3,), 5.0))
    assert int(target.num_batches_tracked) == 7


def _push_on_rank(rank: int, world: int, init: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    queue = KeyQueue(dim=2, size=8)
    keys = torch.tensor([[1.0, float(rank)], [float(rank), 1.0]])
    queue.push(keys[: 2 - rank])  # each rank pushes its own keys, rank 1 fewer (a dropped sample)
    torch.save({"keys": queue.keys, "ptr": queue.ptr}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_keys_from_every_rank_enter_every_rank_queue_even_in_unequal_numbers(tmp_path):
    import torch.multiprocessing as mp

    init = f"file://{tmp_path}/rendezvous"
    mp.spawn(_push_on_rank, args=(2, init, str(tmp_path)), nprocs=2)
    states = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert torch.equal(states[0]["keys"], states[1]["keys"]) and states[0]["ptr"].item() == 3
    h = 2 ** -0.5
    assert torch.allclose(states[0]["keys"][:3], torch.tensor([[1.0, 0], [0, 1], [h, h]]))  # rank 0, rank 1
