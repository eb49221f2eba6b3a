"""RSPNet's module (models/rspnet.py): gradients and loss terms, BN grouping, the ablations, the momentum
key encoder, and the key queue (its gradients, its ring, its keys from every rank)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from models import build_backbone
from models.rspnet import KeyQueue, RSPNet, _groups, momentum_update
from objectives.avid import info_nce
from pipeline.batches import Batch


@given(videos=st.integers(1, 64), groups=st.integers(1, 8), rows=st.sampled_from([1, 3]))
def test_bn_groups_cover_the_batch_in_whole_videos_of_two_or_more(videos, groups, rows):
    sizes = _groups(videos, groups, rows)
    assert sum(sizes) == videos * rows and all(s % rows == 0 for s in sizes)
    assert len(sizes) == 1 or all(s >= 2 * rows for s in sizes)
    assert len(sizes) <= groups


def _triplets(n: int, T: int = 4, side: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    video = torch.randn(3 * n, 3, T, side, side, generator=g)
    batch = Batch.of_roles(video, ["anchor", "positive", "negative"] * n, speeds=[1.0, 1.0, 2.0] * n)
    return video, batch


def _tiny_rspnet(**kw) -> RSPNet:
    torch.manual_seed(0)
    return RSPNet(build_backbone("r3d10", width=4), queue_size=32, dim=16, **kw)


def test_rspnet_gradients_reach_online_encoder_and_heads_not_keys_and_queue_fills():
    model = _tiny_rspnet()
    video, batch = _triplets(4)
    ptr = int(model.queue.ptr)
    out = model(video, batch)
    out["loss"].backward()
    assert set(out) == {"loss", "loss_m", "loss_a", "rsp_acc", "avid_acc"}
    assert out["loss"].item() == pytest.approx((out["loss_m"] + out["loss_a"]).item())
    assert all(p.grad is not None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.g_m.parameters()) and all(
        p.grad is not None for p in model.g_a.parameters()
    )
    assert all(p.grad is None for p in model.key_backbone.parameters())
    assert int(model.queue.ptr) == ptr + 4


def test_momentum_split_over_accumulated_micro_batches_moves_keys_once_by_m():
    """G forward passes at m ** (1 / G), online weights unchanged in between (gradient
    accumulation), leave the key encoder where one update by m would."""
    model = _tiny_rspnet(momentum=0.9, micro_batches=3)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))  # the online encoder moves away from its momentum copy
    before = [p.clone() for p in model.key_backbone.parameters()]
    online = [p.clone() for p in model.backbone.parameters()]
    video, batch = _triplets(2)
    for _ in range(3):
        model(video, batch)
    for k0, o, k in zip(before, online, model.key_backbone.parameters()):
        assert torch.allclose(k, 0.9 * k0 + 0.1 * o, atol=1e-6)


def test_rspnet_grouped_and_shuffled_forward_is_exact_bookkeeping():
    """With BN on running statistics (eval mode) grouping cannot change any value: so the keys
    computed through the shuffled groups equal the keys computed in one batch, row for row."""
    grouped, single = _tiny_rspnet(bn_groups=4), _tiny_rspnet(bn_groups=1)
    single.load_state_dict(grouped.state_dict())
    grouped.eval(), single.eval()
    video, batch = _triplets(8)
    a, b = grouped(video, batch), single(video, batch)
    assert torch.allclose(grouped.queue.keys, single.queue.keys, atol=1e-5)
    for key in a:
        assert a[key].item() == pytest.approx(b[key].item(), abs=1e-5)


@pytest.mark.parametrize("motion,appearance", [("sp", "avid"), ("rsp", "vid"), ("rsp", "none"), ("none", "avid")])
def test_rspnet_ablations_of_table_1(motion, appearance):
    model = _tiny_rspnet(motion=motion, appearance=appearance)
    video, batch = _triplets(4)
    out = model(video, batch)
    out["loss"].backward()
    assert ("loss_m" in out) == (motion != "none") and ("loss_a" in out) == (appearance != "none")
    assert ("sp_acc" in out) == (motion == "sp")
    assert math.isfinite(out["loss"].item())


def test_rspnet_rejects_batches_that_are_not_triplets():
    model = _tiny_rspnet()
    video, batch = _triplets(2)
    batch.role = ["normal", "sped_up"] * 3
    with pytest.raises(ValueError, match="triplets"):
        model(video, batch)


# --- the momentum encoder and the key queue -------------------------------------------------------


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
    assert torch.equal(target.running_mean, torch.full((3,), 2.0)) and torch.equal(
        target.running_var, torch.full((3,), 5.0)
    )
    assert int(target.num_batches_tracked) == 7


# --- A-VID as released: both other clips are positives -------------------------------------------


def _nce_by_hand(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor, tau: float) -> torch.Tensor:
    q, k = nn.functional.normalize(q, dim=1), nn.functional.normalize(k, dim=1)
    positive = (q * k).sum(1) / tau
    return (torch.logsumexp(torch.cat([positive[:, None], q @ negatives.t() / tau], 1), 1) - positive).mean()


def test_avid_sums_an_infonce_term_for_c_j_and_for_c_k_and_queues_c_k():
    """The released MoCoDiffLossTwoFc: ce(logits1) + ce(logits2), c_j's and c_k's keys both positives
    of c_i against the queue; c_k's key enqueued. Checked against a computation from the parts."""
    model = _tiny_rspnet(motion="none", appearance="avid", bn_groups=1)
    video, batch = _triplets(4)
    negatives = model.queue.keys.clone()
    out = model(video, batch)
    with torch.no_grad():
        q = model.g_a(model.backbone(video[0::3]))
        keys = model.key_g_a(model.key_backbone(torch.cat([video[1::3], video[2::3]])))
        k_j, k_k = keys[:4], keys[4:]
    expected = _nce_by_hand(q, k_j, negatives, model.tau) + _nce_by_hand(q, k_k, negatives, model.tau)
    assert out["loss_a"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert torch.allclose(model.queue.keys[:4], nn.functional.normalize(k_k, dim=1), atol=1e-5)


def test_avid_coin_option_takes_one_of_c_j_and_c_k_per_video():
    model = _tiny_rspnet(motion="none", appearance="avid", bn_groups=1, avid_positives="coin")
    video, batch = _triplets(4)
    negatives = model.queue.keys.clone()
    out = model(video, batch)
    with torch.no_grad():
        q = model.g_a(model.backbone(video[0::3]))
        keys = model.key_g_a(model.key_backbone(torch.cat([video[1::3], video[2::3]]))).view(2, 4, -1)
    terms = [
        [_nce_by_hand(q[i : i + 1], keys[c, i : i + 1], negatives, model.tau).item() for c in (0, 1)] for i in range(4)
    ]
    choices = itertools.product((0, 1), repeat=4)
    # each video's term is its c_j's or its c_k's (the coin's pick), one term, not their sum
    assert any(
        out["loss_a"].item() == pytest.approx(np.mean([t[c] for t, c in zip(terms, pick)]), rel=1e-4)
        for pick in choices
    )
    assert int(model.queue.ptr) == 4  # one key per video queued


def test_rsp_refuses_triplets_whose_speeds_are_not_rsp_labels():
    """A plan drawing each clip's speed on its own (mode "avid") must not feed RSP silently."""
    model = _tiny_rspnet()
    video, _ = _triplets(2)
    wrong = Batch.of_roles(video, ["anchor", "positive", "negative"] * 2, speeds=[1.0, 2.0, 2.0, 1.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="c_j at c_i's speed"):
        model(video, wrong)
