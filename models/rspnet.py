"""RSPNet as one trainable module (Chen et al., AAAI 2021, section 3 and algorithm 1).

One encoder f feeds two heads: g_m for relative speed perception (RSP) and g_a for appearance-focused
video instance discrimination (A-VID); L = L_m + lambda L_a. Each batch holds, per video, the
loader's ``rspnet`` triplet: anchor c_i, positive c_j at the same speed, negative c_k at another
(rows 3n, 3n+1, 3n+2 of the video tensor; ``pipeline.plans.rspnet_plan``).

Only the anchor goes through the online encoder f. c_j and c_k go through a momentum copy of f and
of the heads (MoCo's key encoder), with no gradient, as in the authors' released code
(``moco/builder_diffspeed_diffloss.py``: q from the query encoder, both RSP keys from the key
encoder, the ranking loss on similarities over the temperature, see ``objectives.rsp``). It also
makes a step about half the work of pushing all three clips through f with gradients.

A-VID's positives are other clips of the same video whatever their speed (the paper's speed
augmentation). As in the released code (``MoCoDiffLossTwoFc``: ``logits1``, ``logits2``), both c_j (same
speed) and c_k (other speed) are positives of c_i, in two InfoNCE terms that are summed, and c_k's key
joins the queue (``avid_positives="both"``). ``avid_positives="coin"`` instead takes c_j or c_k by a
fair coin per video, one term, and enqueues that key: half the task's weight against the paper. The
``vid`` ablation always takes c_j alone (same speed: no speed augmentation). The enqueued keys are the
negatives of later batches (MoCo).

BatchNorm without shuffle-BN. MoCo shuffles keys across GPUs so that a query and its key are never
normalised with the same batch statistics, which would otherwise let the network match them by
those statistics. This module does the same inside one process: queries go through f in
``bn_groups`` contiguous groups of videos, keys through the key encoder in groups of a random
permutation, so a key shares its BN batch with its query only by chance (about 1 / bn_groups of the
videos, as on bn_groups GPUs). It needs no collective, so it works unchanged on one process or many
(each rank groups its own batch); ``bn_groups=1`` turns it off.

Every random choice (coin, permutation) is drawn from the batch's (seed, epoch, step, rank), so a
resumed run repeats them exactly.

The momentum update (``momentum_update``) and the key queue (``KeyQueue``, gathered across ranks so all
ranks hold the same negatives) live here with the encoders, as in MoCo's ``builder.py``; the losses
are pure functions in ``objectives``.

Ablations of the paper's table 1: ``motion`` "rsp" | "sp" (classify each clip's speed) | "none";
``appearance`` "avid" | "vid" | "none".
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from models.base import Backbone
from models.heads import projection_head
from objectives.avid import info_nce
from objectives.rsp import ranked_right, rsp_loss, speed_classification_loss

ROLES = ("anchor", "positive", "negative")


class RSPNet(nn.Module):
    def __init__(
        self,
        backbone: Backbone,
        *,
        motion: str = "rsp",
        appearance: str = "avid",
        speeds: tuple[float, ...] = (1.0, 2.0),
        dim: int = 128,
        head_hidden: int | None = None,
        queue_size: int = 16384,
        momentum: float = 0.999,
        tau: float = 0.07,
        gamma: float = 0.15,
        lam: float = 1.0,
        bn_groups: int = 2,
        seed: int = 0,
        micro_batches: int = 1,
        rsp_scale: float | None = None,
        avid_positives: str = "both",
    ):
        super().__init__()
        if motion not in ("rsp", "sp", "none") or appearance not in ("avid", "vid", "none"):
            raise ValueError(f"motion must be rsp|sp|none and appearance avid|vid|none, got {motion!r}, {appearance!r}")
        if motion == "none" and appearance == "none":
            raise ValueError("RSPNet needs at least one of the motion and appearance tasks")
        if avid_positives not in ("both", "coin"):
            raise ValueError(f"avid_positives must be both|coin, got {avid_positives!r}")
        self.avid_positives = avid_positives
        self.backbone = backbone
        self.motion, self.appearance = motion, appearance
        self.speeds, self.tau, self.gamma, self.lam = tuple(float(s) for s in speeds), tau, gamma, lam
        self.bn_groups, self.seed = bn_groups, seed
        # L_m's weight: 1 / tau by default, as the released code ranks similarities over tau;
        # 1.0 gives the paper's equation with lambda = 1 (see objectives.rsp).
        self.rsp_scale = 1 / tau if rsp_scale is None else rsp_scale
        # With gradient accumulation the online weights stay fixed over an optimiser step's
        # ``micro_batches`` forward passes: m ** (1 / micro_batches) per pass moves the key encoder
        # exactly as m once per step would.
        self.momentum_per_forward = momentum ** (1 / micro_batches)
        c = backbone.out_channels
        if motion == "rsp":
            self.g_m = projection_head(c, dim, head_hidden)
        elif motion == "sp":
            self.g_m = nn.Linear(c, len(self.speeds))
        if appearance != "none":
            self.g_a = projection_head(c, dim, head_hidden)
            self.queue = KeyQueue(dim, queue_size, seed)
        # Which clips of a triplet the momentum encoder embeds (1 = c_j, 2 = c_k), and its heads.
        self.key_offsets = [1, 2] if motion == "rsp" or appearance == "avid" else [1]
        if self.uses_keys:
            self.key_backbone = copy.deepcopy(backbone).requires_grad_(False)
        if motion == "rsp":
            self.key_g_m = copy.deepcopy(self.g_m).requires_grad_(False)
        if appearance != "none":
            self.key_g_a = copy.deepcopy(self.g_a).requires_grad_(False)

    @property
    def uses_keys(self) -> bool:
        return self.motion == "rsp" or self.appearance != "none"

    def forward(self, video: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """(3B, C, T, H, W) clips and their batch dict -> {"loss", and the task metrics}."""
        roles = batch.role
        if len(roles) % 3 or any(r != ROLES[i % 3] for i, r in enumerate(roles)):
            raise ValueError("RSPNet needs the rspnet plan's anchor/positive/negative triplets, in order")
        videos = len(roles) // 3
        if self.motion == "rsp":
            _check_rsp_speeds(batch.speed)
        rng = np.random.default_rng([self.seed, int(batch.epoch), int(batch.step), _rank(), 0xA51D])
        # SP classifies every clip; RSP and A-VID only embed the anchor online, the rest are keys.
        online = video if self.motion == "sp" else video[0::3]
        x = _grouped(self.backbone, online, _groups(videos, self.bn_groups, len(online) // videos))
        x_i = x[0::3] if self.motion == "sp" else x
        keys = self._key_features(video, videos, rng) if self.uses_keys else None
        out: dict[str, torch.Tensor] = {}
        losses = []
        if self.motion == "rsp":
            m_i = self.g_m(x_i)
            with torch.no_grad():
                m_j, m_k = self.key_g_m(keys[:, 0]), self.key_g_m(keys[:, 1])
            out["loss_m"] = rsp_loss(m_i, m_j, m_k, self.gamma, scale=self.rsp_scale)
            out["rsp_acc"] = ranked_right(m_i, m_j, m_k).float().mean()
            losses.append(out["loss_m"])
        elif self.motion == "sp":
            logits = self.g_m(x)
            speeds = batch.speed.to(logits.device)
            out["loss_m"] = speed_classification_loss(logits, speeds, self.speeds)
            classes = torch.tensor(self.speeds, device=logits.device)
            out["sp_acc"] = (classes[logits.argmax(1)] == speeds).float().mean()
            losses.append(out["loss_m"])
        if self.appearance != "none":
            out.update(self._instance_discrimination(x_i, keys, rng))
            losses.append(self.lam * out["loss_a"])
        out["loss"] = sum(losses)
        return out

    @torch.no_grad()
    def _key_features(self, video: torch.Tensor, videos: int, rng: np.random.Generator) -> torch.Tensor:
        """Momentum-encoder features (B, len(key_offsets), C) of each video's c_j (and c_k), computed
        in BN groups of a seeded permutation of those clips."""
        for online, key in self._momentum_pairs():
            momentum_update(online, key, self.momentum_per_forward)
        per_video = len(self.key_offsets)
        rows = (3 * np.arange(videos)[:, None] + np.array(self.key_offsets)[None, :]).reshape(-1)
        perm = rng.permutation(len(rows))
        shuffled = _grouped(
            self.key_backbone,
            video[_on_device(rows[perm], video.device)],
            _groups(videos, self.bn_groups, per_video),
        )
        return shuffled[_on_device(np.argsort(perm), video.device)].view(videos, per_video, -1)

    def _momentum_pairs(self):
        yield self.backbone, self.key_backbone
        if self.motion == "rsp":
            yield self.g_m, self.key_g_m
        if self.appearance != "none":
            yield self.g_a, self.key_g_a

    def _instance_discrimination(
        self, x_i: torch.Tensor, keys: torch.Tensor, rng: np.random.Generator
    ) -> dict[str, torch.Tensor]:
        q = self.g_a(x_i)
        videos = len(x_i)
        if self.appearance == "avid" and self.avid_positives == "both":
            picks = [np.zeros(videos, int), np.ones(videos, int)]  # c_j, then c_k (whose key is queued)
        elif self.appearance == "avid":
            picks = [rng.integers(0, 2, size=videos)]  # c_j or c_k by a fair coin
        else:
            picks = [np.zeros(videos, int)]  # VID: the same-speed c_j
        with torch.no_grad():
            positives = [
                self.key_g_a(keys[torch.arange(videos, device=keys.device), _on_device(p, keys.device)]) for p in picks
            ]
        negatives = self.queue.keys.clone()  # push() below overwrites keys that backward still needs
        loss = sum(info_nce(q, k, negatives, self.tau) for k in positives)
        qn = nn.functional.normalize(q.detach(), dim=1)
        nearest_negative = (qn @ negatives.t()).max(1).values
        hits = [(qn * nn.functional.normalize(k, dim=1)).sum(1) > nearest_negative for k in positives]
        self.queue.push(positives[-1])
        return {"loss_a": loss, "avid_acc": torch.stack(hits).float().mean()}


def _on_device(indices: np.ndarray, device: torch.device) -> torch.Tensor:
    """Host indices (drawn by the seeded numpy generator) on ``device`` without stalling the host: a
    pinned, non-blocking copy on CUDA, where a plain ``as_tensor(..., device=)`` waits for the copy."""
    tensor = torch.from_numpy(np.ascontiguousarray(indices, dtype=np.int64))
    return tensor.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else tensor


def _check_rsp_speeds(speed) -> None:
    """RSP's labels are the plan's: c_j at c_i's speed, c_k at another. A plan that draws each clip's
    speed on its own (mode "avid") would train RSP on wrong labels without a word, so refuse it."""
    s = torch.as_tensor(speed).reshape(-1, 3)
    if not (bool((s[:, 0] == s[:, 1]).all()) and bool((s[:, 0] != s[:, 2]).all())):
        raise ValueError("RSP needs c_j at c_i's speed and c_k at another: use the rspnet plan's mode 'rsp'")


def _groups(videos: int, groups: int, rows_per_video: int) -> list[int]:
    """Row counts of ``groups`` contiguous groups of whole videos (fewer when there are few videos;
    a group of one video would make BN statistics of a single clip, so groups hold two or more)."""
    groups = max(1, min(groups, videos // 2))
    return [len(part) * rows_per_video for part in np.array_split(np.arange(videos), groups)]


def _grouped(module: nn.Module, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    if len(sizes) == 1:
        return module(x)
    return torch.cat([module(part) for part in torch.split(x, sizes)])


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def momentum_update(online: nn.Module, target: nn.Module, m: float = 0.999) -> None:
    """target <- m * target + (1 - m) * online, parameter by parameter; buffers are copied."""
    for p_o, p_t in zip(online.parameters(), target.parameters()):
        p_t.mul_(m).add_(p_o.detach(), alpha=1 - m)
    for b_o, b_t in zip(online.buffers(), target.buffers()):
        b_t.copy_(b_o)


class KeyQueue(nn.Module):
    """A FIFO ring of ``size`` unit keys of ``dim`` dimensions, saved with the model's state."""

    def __init__(self, dim: int = 128, size: int = 16384, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("keys", F.normalize(torch.randn(size, dim, generator=g), dim=1))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Add a batch of keys (gathered from every rank first), overwriting the oldest."""
        keys = F.normalize(_gather_ranks(keys.detach()), dim=1)
        size = self.keys.shape[0]
        idx = (self.ptr + torch.arange(len(keys), device=keys.device)) % size
        self.keys[idx] = keys.to(self.keys.dtype)
        self.ptr.copy_((self.ptr + len(keys)) % size)


def _gather_ranks(x: torch.Tensor) -> torch.Tensor:
    """Every rank's rows, in rank order, in one fixed-size collective: no sizes exchanged, nothing read
    back to the host. Every rank holds the same number of rows, since training batches are topped up
    to the same size on every rank (``pipeline.loader``), whatever samples were dropped."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    out = x.new_empty((dist.get_world_size() * len(x), *x.shape[1:]))
    dist.all_gather_into_tensor(out, x.contiguous())
    return out
