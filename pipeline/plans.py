"""Frame-index plans: which frames the loader decodes for each clip of one sample.

A *frame-index plan* is a pure function of a sample's frame count (and, for training plans, a seeded
``numpy.random.Generator``) that returns a list of ``Clip``: for each clip, the T frame indices to
decode, the playback rate the clip shows, its role in the objective, and its augmentation group.
Stored videos are constant 25 fps (frame i is shown at i/25 s), so an index is a time and a rate is
a step between indices: rate 2 shows every second frame, i.e. 2x playback. Valid indices are
0..frames-1, and a plan never returns any other.

Every plan first computes *ideal* integer positions (which may fall past the end of a short video),
then applies the short-video policy ``short`` through ``apply_short``:

- "pad" clamps to [0, frames-1]: the edge frame repeats (a frozen tail, never black frames);
- "loop" wraps modulo frames: the video restarts;
- "skip" raises ``TooShort``; it does so exactly when ``frames < min_frames(plan, T, ...)``, so
  which videos a run skips depends on their length alone, never on the seed.

Fractional positions round half up (``floor(x + 0.5)``), so rate 1.5 gives steps 2, 1, 2, 1, ...
rather than the uneven steps of round-half-to-even. How many random numbers a plan draws does not
depend on ``short``, so the same seed gives the same ideal positions under every policy.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

SHORT_POLICIES = ("pad", "loop", "skip")
_REDRAWS = 100  # SpeedNet: mask redraws before the deterministic fallback


class TooShort(Exception):
    """The video cannot supply the plan without padding, under policy "skip"."""


@dataclass(frozen=True)
class Clip:
    indices: tuple[int, ...]  # length T, each in [0, frames-1]
    speed: float  # playback rate this clip shows (1.0 = normal); for SpeedNet the drawn f
    role: str  # see each plan
    aug_group: int  # clips with the same aug_group get the same spatial augmentation


def apply_short(ideal: np.ndarray, frames: int, short: str) -> np.ndarray:
    """Map ideal positions into [0, frames-1] by the short-video policy (see the module docstring)."""
    ideal = np.asarray(ideal, dtype=np.int64)
    if short == "pad":
        return np.clip(ideal, 0, frames - 1)
    if short == "loop":
        return ideal % frames
    if short == "skip":
        if ideal.size and (ideal.min() < 0 or ideal.max() > frames - 1):
            raise TooShort(f"{frames} frames cannot supply positions {ideal.min()}..{ideal.max()}")
        return ideal
    raise ValueError(f"short policy {short!r} not in {SHORT_POLICIES}")


def _round(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _offsets(T: int, rate: float) -> np.ndarray:
    """Positions of T frames at ``rate`` relative to the first: round(k * rate), k < T."""
    return _round(np.arange(T) * rate)


def _span(T: int, rate: float) -> int:
    """Frames covered by T frames at ``rate``, first to last inclusive."""
    return 1 + int(_offsets(T, rate)[-1])


def _check(frames: int, T: int, short: str) -> None:
    if frames < 1:
        raise ValueError(f"a video needs at least one frame, got {frames}")
    if T < 1:
        raise ValueError(f"clip length T must be at least 1, got {T}")
    if short not in SHORT_POLICIES:
        raise ValueError(f"short policy {short!r} not in {SHORT_POLICIES}")


def _clip(indices: np.ndarray, speed: float, role: str, aug_group: int) -> Clip:
    return Clip(tuple(indices.tolist()), float(speed), role, aug_group)


def _speednet_offsets(T: int, f: float, rng: np.random.Generator) -> np.ndarray:
    """T positions in a 3T window: keep each frame with probability 1/f, take T consecutive kept.

    When a mask keeps fewer than T frames it is redrawn (same f) up to ``_REDRAWS`` times; after that
    the clip falls back to even subsampling round(k * f) from the window's start, which fits the
    window because f <= 3. With the paper's ranges the fallback practically never happens.
    """
    for _ in range(1 + _REDRAWS):
        kept = np.flatnonzero(rng.random(3 * T) < 1.0 / f)
        if len(kept) >= T:
            first = int(rng.integers(0, len(kept) - T + 1))
            return kept[first : first + T]
    return _offsets(T, f)


def speednet_plan(
    frames: int,
    rng: np.random.Generator,
    *,
    T: int = 16,
    normal=(1.0, 1.2),
    sped_up=(1.7, 2.2),
    short: str = "pad",
    uniform_p: float = 0.0,
) -> list[Clip]:
    """SpeedNet's pair (section 3.1): a normal and a sped-up version of one window of 3T frames.

    The window starts uniformly in [0, frames - 3T] (at 0 when frames <= 3T); the policy applies to
    the window, so both clips consist of window frames. Each version draws f ~ U[lo, hi] and takes
    ``_speednet_offsets``: random skipping, the paper's temporal augmentation, varies the steps
    within a clip so no fixed stride pattern marks a speed. Roles "normal" then "sped_up", speed =
    the drawn f, both aug_group 0 (SpeedNet trains both versions of a clip in one batch at the same
    spatial size).

    ``uniform_p`` (not in the paper; 0 by default): each version is instead, with this probability,
    subsampled evenly, round(k * f) from a random start in the window. Random skipping alone lets a
    network tell the versions apart by how irregular their steps are, and then call a uniformly
    sped-up video (SpeedNet's test) normal; mixing in even steps takes that cue away.
    """
    _check(frames, T, short)
    for lo, hi in (normal, sped_up):
        if not 1.0 <= lo <= hi <= 3.0:
            raise ValueError(f"skip factors need 1 <= lo <= hi <= 3 (3T frames must hold T), got {(lo, hi)}")
    start = int(rng.integers(0, max(frames - 3 * T, 0) + 1))
    window = apply_short(start + np.arange(3 * T), frames, short)
    if not 0.0 <= uniform_p <= 1.0:
        raise ValueError(f"uniform_p is a probability, got {uniform_p}")
    clips = []
    for role, (lo, hi) in (("normal", normal), ("sped_up", sped_up)):
        f = float(rng.uniform(lo, hi))
        if uniform_p and rng.random() < uniform_p:
            even = _offsets(T, f)
            offsets = int(rng.integers(0, 3 * T - int(even[-1]))) + even
        else:
            offsets = _speednet_offsets(T, f, rng)
        clips.append(_clip(window[offsets], f, role, 0))
    return clips


def rspnet_plan(
    frames: int,
    rng: np.random.Generator,
    *,
    T: int = 16,
    speeds=(1, 2),
    mode: str = "rsp",
    short: str = "pad",
    shared_start: bool = False,
) -> list[Clip]:
    """RSPNet's per-video triplet (section 3.2): roles "anchor" (c_i), "positive" (c_j), "negative" (c_k).

    mode "rsp": anchor and positive at a speed a drawn from ``speeds``, negative at b drawn from the
    others (b != a). mode "avid": each clip's speed drawn independently (the speed augmentation that
    makes instance discrimination speed-agnostic). Each clip starts uniformly where its last frame
    fits (at 0 when it cannot) and shows frames start + round(k * speed). The anchor is aug_group 0;
    positive and negative share aug_group 1, so those two differ in speed and position, never in
    spatial augmentation. ``shared_start``: the negative starts where the positive does, so the two
    differ in speed alone (as the authors' released code cuts both from one window); the start is
    drawn where the longer of the two fits.
    Under "skip" the video must fit the fastest of ``speeds``, whatever was drawn: otherwise short
    videos would only ever be seen slow, and length would hint at speed.
    """
    _check(frames, T, short)
    rates = tuple(dict.fromkeys(float(s) for s in speeds))
    if not rates or min(rates) <= 0:
        raise ValueError(f"speeds must be positive, got {speeds}")
    if mode == "rsp":
        if len(rates) < 2:
            raise ValueError(f"mode 'rsp' needs at least two distinct speeds, got {speeds}")
        a = rates[rng.integers(len(rates))]
        others = [r for r in rates if r != a]
        drawn = (a, a, others[rng.integers(len(others))])
    elif mode == "avid":
        drawn = tuple(rates[i] for i in rng.integers(len(rates), size=3))
    else:
        raise ValueError(f"mode must be 'rsp' or 'avid', got {mode!r}")
    if short == "skip" and frames < _span(T, max(rates)):
        raise TooShort(f"{frames} frames < {_span(T, max(rates))} needed for {T} frames at speed {max(rates)}")
    clips = []
    for speed, role, group in zip(drawn, ("anchor", "positive", "negative"), (0, 1, 1)):
        offsets = _offsets(T, speed)
        if not (shared_start and role == "negative"):
            last = (
                max(int(offsets[-1]), int(_offsets(T, drawn[2])[-1]))
                if shared_start and role == "positive"
                else int(offsets[-1])
            )
            start = int(rng.integers(0, max(frames - 1 - last, 0) + 1))
        clips.append(_clip(apply_short(start + offsets, frames, short), speed, role, group))
    return clips


def eval_plan(frames: int, *, T: int = 16, n: int = 10, short: str = "pad") -> list[Clip]:
    """The VCOP retrieval protocol: n evenly spaced clips of T consecutive frames, starts
    round(linspace(0, frames - T, n)) (all 0 when frames < T). Role "eval", speed 1, aug_group 0."""
    _check(frames, T, short)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    starts = _round(np.linspace(0, max(frames - T, 0), n))
    return [_clip(apply_short(s + np.arange(T), frames, short), 1.0, "eval", 0) for s in starts]


def sliding_plan(
    frames: int,
    *,
    T: int = 16,
    stride: int = 8,
    rate: float = 1.0,
    short: str = "pad",
    first: int = 0,
    count: int | None = None,
) -> list[Clip]:
    """Sliding windows at ``rate`` for within-video retrieval and SpeedNet's speediness curves (X^i).

    Window w starts at source frame w * stride and shows round(w * stride + k * rate), k < T; windows
    continue while the last ideal index is <= frames - 1, and there is always at least one (the
    policy then decides what a too-short video gives). Role "window", speed = rate, aug_group 0.
    ``first`` and ``count`` take windows first .. first + count - 1 of those (at least one, so
    ``first`` must be below ``sliding_count``): how a long video is read a bounded chunk at a time.
    """
    total = sliding_count(frames, T=T, stride=stride, rate=rate, short=short)
    if not 0 <= first < total or (count is not None and count < 1):
        raise ValueError(f"windows from {first} ({count}) of {total}: first must be below {total}, count positive")
    offsets = _offsets(T, rate)  # stride is whole, so round(w*stride + k*rate) = w*stride + offsets[k]
    end = total if count is None else min(total, first + count)
    return [_clip(apply_short(w * int(stride) + offsets, frames, short), rate, "window", 0) for w in range(first, end)]


def sliding_count(frames: int, *, T: int = 16, stride: int = 8, rate: float = 1.0, short: str = "pad") -> int:
    """How many windows ``sliding_plan`` gives a video of ``frames`` frames (at least one)."""
    _check(frames, T, short)
    if stride < 1 or int(stride) != stride:
        raise ValueError(f"stride must be a positive whole number of frames, got {stride}")
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    return max(1, (frames - 1 - int(_offsets(T, rate)[-1])) // int(stride) + 1)


def speed_test_plan(frames: int, *, T: int = 16, rates=(1.0, 2.0), n: int = 10, short: str = "pad") -> list[Clip]:
    """SpeedNet's test (table 1): the same stretch of video played uniformly at each of ``rates``, at
    evenly spaced positions across the whole video, so a video is judged on all of it, not its opening.

    Starts are round(linspace(0, frames - span, n)), span the frames the fastest rate needs: the first
    at 0, the last where the fastest clip ends on the video's last frame (the VCOP protocol's 10
    evenly spaced clips, n = 10 by default). Repeated starts are kept once, so a video with fewer
    than n distinct starts (frames - span + 1 < n) gives every start it has: repeating one would count
    the same frames again and weight a short video as if it had more to show. A video shorter than
    span has the single start 0 and the policy decides the rest. One clip per rate at each start,
    frames start + round(k * rate); role "normal" at rate 1, "sped_up" above it; aug_group 0 (the
    test is a centre crop).
    """
    _check(frames, T, short)
    rates = tuple(float(r) for r in rates)
    if n < 1 or not rates or min(rates) < 1:
        raise ValueError(f"need n >= 1 and rates >= 1, got n={n}, rates={rates}")
    if short == "skip" and frames < _span(T, max(rates)):
        raise TooShort(f"{frames} frames < {_span(T, max(rates))} needed for {T} frames at rate {max(rates)}")
    starts = np.unique(_round(np.linspace(0, max(frames - _span(T, max(rates)), 0), n)))  # sorted, once each
    return [
        _clip(apply_short(s + _offsets(T, r), frames, short), r, "normal" if r == 1 else "sped_up", 0)
        for s in starts
        for r in rates
    ]


def supervised_plan(
    frames: int, rng: np.random.Generator, *, T: int = 16, rate: float = 1.0, short: str = "pad"
) -> list[Clip]:
    """Fine-tuning for action recognition (RSPNet section 4.1, after Xu et al.): one clip of T frames
    at ``rate`` from a start drawn uniformly over every start whose clip fits (0 when none does).
    Role "train", aug_group 0."""
    _check(frames, T, short)
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    span = _span(T, rate)
    if short == "skip" and frames < span:
        raise TooShort(f"{frames} frames < {span} needed for {T} frames at rate {rate}")
    start = int(rng.integers(0, max(frames - span, 0) + 1))
    return [_clip(apply_short(start + _offsets(T, rate), frames, short), rate, "train", 0)]


PLANS = {
    "speednet": speednet_plan,
    "rspnet": rspnet_plan,
    "eval": eval_plan,
    "sliding": sliding_plan,
    "speedtest": speed_test_plan,
    "supervised": supervised_plan,
}


def min_frames(plan: str, T: int, **kw) -> int:
    """Frames ``plan`` needs without padding: the smallest count for which "skip" does not raise.

    ``kw`` are the plan's own keyword arguments (unset ones take the plan's defaults).
    """
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; known: {sorted(PLANS)}")
    params = inspect.signature(PLANS[plan]).parameters
    if unknown := set(kw) - set(params):
        raise TypeError(f"{plan} plan has no argument(s) {sorted(unknown)}")
    kw = {name: p.default for name, p in params.items() if p.default is not p.empty} | kw
    if plan == "speednet":
        return 3 * T
    if plan == "rspnet":
        return _span(T, max(float(s) for s in kw["speeds"]))
    if plan == "eval":
        return T
    if plan == "speedtest":
        return _span(T, max(float(r) for r in kw["rates"]))
    return _span(T, kw["rate"])


def clips_to_arrays(clips: list[Clip]) -> dict:
    """Clips as arrays for DALI and the batch dict: indices (n_clips, T) int32, speed float32,
    aug_group int32, role a list of str."""
    return {
        "indices": np.array([c.indices for c in clips], dtype=np.int32),
        "speed": np.array([c.speed for c in clips], dtype=np.float32),
        "role": [c.role for c in clips],
        "aug_group": np.array([c.aug_group for c in clips], dtype=np.int32),
    }
