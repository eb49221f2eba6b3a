"""``python -m jobs.bench.shard_codecs``: the shard job's default codec and keyframe interval (GOP).

Every candidate (VP9 and H.264 at GOP 16/32/64/250, MJPEG) stores the same inputs through the shard
job's own ``normalize``, so what is measured is what the loader will read. For each one:

- shard cost: stored bytes and encode seconds per second of video, and the size of Kinetics
  (~300k clips of 10 s) at that rate;
- the CPU decode paths the loader can use, on random SpeedNet/RSPNet training clips (16 frames at
  stride 2, the same uniformly random starts for every candidate): PyAV seeking in the in-memory
  bytes, and DALI's CPU video decoder (VP9 and MJPEG only). A sequential PyAV decode of the whole
  stream is the ceiling, and the unit of "cost per useful frame";
- whether DALI's GPU (NVDEC) backend decodes the codec, read from the installed DALI's docstring.

Timings are interleaved (every clip is decoded by every candidate in a shuffled order before the
next clip), repeated, and the best of the repeats is kept per clip, so that load from other
processes on a small machine hits all candidates alike. Decoders run single-threaded: the loader
parallelises across clips, one decoder per core. PyAV's clip frames are checked for exact equality
against a full decode, and DALI's against PyAV's (colour conversion may differ slightly).
The last line gives the recommended default (see ``recommend``) as ``key=value`` pairs.
"""

from __future__ import annotations

import argparse
import glob
import io
import re
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from tqdm import tqdm

from jobs.shard.transcode import EncodeSettings, normalize


@dataclass(frozen=True)
class Candidate:
    codec: str
    gop: int


CANDIDATES = tuple(Candidate(c, g) for c in ("vp9", "h264") for g in (16, 32, 64, 250)) + (Candidate("mjpeg", 1),)
CLIP_FRAMES, STRIDE = 16, 2
SPAN = (CLIP_FRAMES - 1) * STRIDE + 1  # frames a clip covers: 31, the "32-frame span" of a 2x clip
FPS = EncodeSettings().fps
KINETICS_SECONDS = 300_000 * 10
SEQ_PASSES = 3  # full decodes per round: one is short (~0.1 s) and noisy, and it is the unit of cost
VERIFY_CLIPS = 4  # per input and candidate, spread from the first start to the last
# How DALI's docstring names the codecs we store.
DALI_NAMES = {"vp9": "VP9", "h264": "H.264/AVC", "mjpeg": "MJPEG"}


class WrongFrames(RuntimeError):
    """A decode path returned frames other than the ones asked for: its timings mean nothing."""


# ---------------------------------------------------------------------------------------------
# Facts and plans


def dali_backends() -> dict[str, set[str]]:
    """Codec -> DALI backends ("cpu", "mixed") that decode it, from the installed DALI's docstring.

    Read rather than hard-coded so the column follows the installed version (DALI 2.1.1 dropped CPU
    H.264, for one). Fails loudly if the docstring no longer has the two lists it is parsed from.
    """
    from nvidia.dali import fn

    doc = fn.decoders.video.__doc__ or ""
    both = re.search(r"supported by both CPU and Mixed backends:\s*\n((?:\s*\*[^\n]*\n)+)", doc)
    mixed = re.search(r"supported by the Mixed backend only:\s*\n((?:\s*\*[^\n]*\n)+)", doc)
    if not (both and mixed):
        raise RuntimeError("cannot read the codec lists from fn.decoders.video's docstring")

    def names(block: str) -> set[str]:
        return {line.strip(" *") for line in block.strip().splitlines()}

    cpu_and_gpu, gpu_only = names(both.group(1)), names(mixed.group(1))
    return {codec: ({"cpu", "mixed"} if name in cpu_and_gpu else {"mixed"} if name in gpu_only else set())
            for codec, name in DALI_NAMES.items()}


def clip_plan(frames: int, clips: int, rng: np.random.Generator) -> list[list[int]]:
    """Frame indices of ``clips`` training clips from uniformly random starts.

    Drawn once per input from the frame count, which every candidate shares, so every candidate
    decodes the same clips.
    """
    starts = rng.integers(0, frames - SPAN + 1, clips)
    return [list(range(s, s + SPAN, STRIDE)) for s in starts]


def spread(plan: list[list[int]], n: int) -> list[list[int]]:
    """``n`` clips of ``plan`` from its earliest start to its latest: verification covers both ends."""
    ordered = sorted(plan)
    return [ordered[i] for i in sorted(set(np.linspace(0, len(ordered) - 1, n).round().astype(int)))]


# ---------------------------------------------------------------------------------------------
# Decode paths


def _open(data: bytes):
    container = av.open(io.BytesIO(data))
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    return container, stream


def decode_all(data: bytes) -> Iterator[np.ndarray]:
    """Every frame of the stored stream as RGB, in order: the ceiling, and the reference frames."""
    container, stream = _open(data)
    with container:
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def pyav_clip(data: bytes, indices: list[int]) -> tuple[list[np.ndarray], int]:
    """The clip's frames as RGB, and how many frames were decoded to get them.

    Seeks to the keyframe at or before the first frame (frame i is at pts i/fps in the stored
    stream's time base), then decodes forward, converting only the frames the clip keeps.
    """
    container, stream = _open(data)
    tb = stream.time_base
    with container:
        container.seek(int(Fraction(indices[0], FPS) / tb), stream=stream, backward=True, any_frame=False)
        wanted, kept, decoded = set(indices), {}, 0
        for frame in container.decode(stream):
            decoded += 1
            i = round(frame.pts * tb * FPS)
            if i in wanted:
                kept[i] = frame.to_ndarray(format="rgb24")
            if i >= indices[-1]:
                break
    missing = wanted - kept.keys()
    if missing:
        raise WrongFrames(f"PyAV seek decode never reached frames {sorted(missing)[:4]}")
    return [kept[i] for i in indices], decoded


class DaliCpu:
    """DALI's CPU video decoder on one in-memory stream at a time: bytes and frame indices in.

    The loader's graph (``fn.decoders.video`` with ``frames=``), with batch size 1 and one thread so
    that a clip's time is one core's work, as PyAV's is here.
    """

    def __init__(self):
        from nvidia.dali import fn, pipeline_def, types

        @pipeline_def(batch_size=1, num_threads=1, device_id=None, prefetch_queue_depth=1)
        def graph():
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
            return fn.decoders.video(encoded, device="cpu", frames=frames)

        self.pipe = graph()
        self.pipe.build()

    def clip(self, data: bytes, indices: list[int]) -> np.ndarray:
        self.pipe.feed_input("encoded", [np.frombuffer(data, np.uint8)])
        self.pipe.feed_input("frames", [np.asarray(indices, np.int32)])
        (out,) = self.pipe.run()
        return np.asarray(out[0])


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Stored:
    """One input as one candidate stores it."""

    data: bytes
    frames: int
    size: tuple[int, int]
    encode_s: float


@dataclass
class Measured:
    """One input x one candidate: everything the tables summarise."""

    seconds: float  # of stored video
    bytes: int
    encode_s: float
    frames: int
    seq_s: float = np.inf  # best full sequential decode
    pyav_s: np.ndarray | None = None  # best time per clip
    pyav_decoded: np.ndarray | None = None  # frames PyAV decoded per clip
    dali_s: np.ndarray | None = None
    dali_max_diff: int = 0  # against PyAV, worst pixel over the verified clips
    dali_psnr: float = np.inf  # against PyAV, worst clip


def encode_all(path: str, short_side: int) -> dict[Candidate, Stored]:
    """Store ``path`` as every candidate; fail if they disagree on the frame count (the plan's basis)."""
    stored = {}
    for c in tqdm(CANDIDATES, desc=f"encode {Path(path).name}", leave=False):
        t = time.perf_counter()
        out = normalize(path, EncodeSettings(codec=c.codec, gop=c.gop, short_side=short_side))
        stored[c] = Stored(out.data, out.frames, (out.width, out.height), time.perf_counter() - t)
    counts = {s.frames for s in stored.values()}
    if len(counts) != 1:
        raise WrongFrames(f"{path}: candidates store different frame counts {sorted(counts)}")
    return stored


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = mse(a, b)
    return np.inf if error == 0 else 10 * np.log10(255**2 / error)


def check_dali_order(label: str, frames: np.ndarray, indices: list[int], full: list[np.ndarray]):
    """DALI's colours differ slightly from PyAV's, so equality cannot prove it returned the right
    frames; instead each of its frames must be closer to the asked-for frame than to its neighbours.
    """
    for frame, i in zip(frames, indices):
        neighbours = [full[j] for j in (i - 1, i + 1) if 0 <= j < len(full)]
        if any(mse(frame, n) < mse(frame, full[i]) for n in neighbours):
            raise WrongFrames(f"{label}: DALI's frame {i} looks more like a neighbouring frame")


def verify(name: str, c: Candidate, s: Stored, clips: list[list[int]], dali: DaliCpu | None, m: Measured):
    """Check PyAV's seek decode frame for frame against a full decode, and compare DALI with it.

    Untimed; it also warms both decoders up before the timed rounds.
    """
    full = list(decode_all(s.data))
    if len(full) != s.frames:
        raise WrongFrames(f"{name} {c}: full decode gives {len(full)} frames, the encoder wrote {s.frames}")
    for indices in clips:
        got, _ = pyav_clip(s.data, indices)
        bad = [i for i, g in zip(indices, got) if not np.array_equal(g, full[i])]
        if bad:
            raise WrongFrames(f"{name} {c}: PyAV seek decode differs from a full decode at frames {bad[:4]}")
        if dali is not None:
            frames = dali.clip(s.data, indices)
            expected = np.stack(got)
            if frames.shape != expected.shape:
                raise WrongFrames(f"{name} {c}: DALI returned {frames.shape}, PyAV {expected.shape}")
            check_dali_order(f"{name} {c}", frames, indices, full)
            diff = int(np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max())
            m.dali_max_diff = max(m.dali_max_diff, diff)
            m.dali_psnr = min(m.dali_psnr, psnr(frames, expected))


def time_rounds(stored: dict[Candidate, Stored], plan: list[list[int]], repeats: int, dali: DaliCpu,
                dali_ok: set[str], rng: np.random.Generator, measured: dict[Candidate, Measured], name: str):
    """Decode every clip with every candidate and path, interleaved in a shuffled order, ``repeats``
    times; keep each clip's best time so that interference from other processes drops out."""
    n = len(plan)
    pyav = {c: np.full((repeats, n), np.inf) for c in stored}
    dali_t = {c: np.full((repeats, n), np.inf) for c in stored if c.codec in dali_ok}
    decoded = {c: np.zeros(n, int) for c in stored}
    bar = tqdm(total=repeats * n, desc=f"decode {name}", leave=False)
    for r in range(repeats):
        for _ in range(SEQ_PASSES):
            for c in (list(stored)[i] for i in rng.permutation(len(stored))):
                t = time.perf_counter()
                for _ in decode_all(stored[c].data):
                    pass
                measured[c].seq_s = min(measured[c].seq_s, time.perf_counter() - t)
        for k, indices in enumerate(plan):
            for c in (list(stored)[i] for i in rng.permutation(len(stored))):
                t = time.perf_counter()
                _, decoded[c][k] = pyav_clip(stored[c].data, indices)
                pyav[c][r, k] = time.perf_counter() - t
                if c in dali_t:
                    t = time.perf_counter()
                    dali.clip(stored[c].data, indices)
                    dali_t[c][r, k] = time.perf_counter() - t
            bar.update()
    bar.close()
    for c, m in measured.items():
        m.pyav_s, m.pyav_decoded = pyav[c].min(axis=0), decoded[c]
        m.dali_s = dali_t[c].min(axis=0) if c in dali_t else None


def measure_input(path: str, index: int, args, dali: DaliCpu, dali_ok: set[str]):
    """All candidates on one input: returns (plan, normalised size, {candidate: Measured})."""
    name = Path(path).name
    stored = encode_all(path, args.short_side)
    first = next(iter(stored.values()))
    plan = clip_plan(first.frames, args.clips, np.random.default_rng([args.seed, index]))
    measured = {c: Measured(s.frames / FPS, len(s.data), s.encode_s, s.frames) for c, s in stored.items()}
    for c, s in tqdm(stored.items(), desc=f"verify {name}", leave=False):
        verify(name, c, s, spread(plan, VERIFY_CLIPS), dali if c.codec in dali_ok else None, measured[c])
    time_rounds(stored, plan, args.repeats, dali, dali_ok, np.random.default_rng([args.seed, index, 1]),
                measured, name)
    return plan, first.size, measured


# ---------------------------------------------------------------------------------------------
# Summary


@dataclass
class Row:
    """One candidate, averaged over inputs weighted by their duration."""

    bytes_per_s: float
    encode_per_s: float
    seq_fps: float
    pyav_clips_s: float
    pyav_decoded_per_useful: float  # frames PyAV decoded per frame the clip keeps
    pyav_cost_per_useful: float  # clip time in sequential-decode frames, per frame kept
    pyav_slope: float  # extra sequential-decode frames of cost per frame of clip position
    dali_clips_s: float | None = None
    dali_cost_per_useful: float | None = None
    dali_near_s: float | None = None  # clips/s, starts in the first third of the possible range
    dali_far_s: float | None = None  # clips/s, starts in the last third
    dali_slope: float | None = None
    dali_max_diff: int | None = None
    dali_psnr: float | None = None

    @property
    def kinetics_gb(self) -> float:
        return self.bytes_per_s * KINETICS_SECONDS / 1e9


def weighted(values: list[float], weights: list[float]) -> float:
    return float(np.average(values, weights=weights))


def position_slope(times: np.ndarray, seq_fps: float, plan: list[list[int]]) -> float:
    """Least-squares slope of a clip's cost (in sequential-decode frames) against its last frame.

    About 1: the decoder decodes every frame before the clip (it does not seek). About 0: it seeks.
    """
    last = np.array([indices[-1] for indices in plan], float)
    if np.ptp(last) == 0:
        return float("nan")
    return float(np.polyfit(last, times * seq_fps, 1)[0])


def thirds(plan: list[list[int]], frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of clips starting in the first and in the last third of the possible start range."""
    starts = np.array([indices[0] for indices in plan])
    position = starts / max(1, frames - SPAN)
    return position < 1 / 3, position > 2 / 3


def summarise(per_input: list[tuple[list[list[int]], Measured]]) -> Row:
    w = [m.seconds for _, m in per_input]

    def avg(f) -> float:
        return weighted([f(plan, m) for plan, m in per_input], w)

    seq = lambda m: m.frames / m.seq_s  # noqa: E731
    row = Row(
        bytes_per_s=avg(lambda p, m: m.bytes / m.seconds),
        encode_per_s=avg(lambda p, m: m.encode_s / m.seconds),
        seq_fps=avg(lambda p, m: seq(m)),
        pyav_clips_s=avg(lambda p, m: len(p) / m.pyav_s.sum()),
        pyav_decoded_per_useful=avg(lambda p, m: m.pyav_decoded.mean() / CLIP_FRAMES),
        pyav_cost_per_useful=avg(lambda p, m: m.pyav_s.mean() * seq(m) / CLIP_FRAMES),
        pyav_slope=avg(lambda p, m: position_slope(m.pyav_s, seq(m), p)),
    )
    if per_input[0][1].dali_s is None:
        return row

    def rate(p, m, which):
        mask = thirds(p, m.frames)[which]
        return mask.sum() / m.dali_s[mask].sum() if mask.any() else np.nan

    row.dali_clips_s = avg(lambda p, m: len(p) / m.dali_s.sum())
    row.dali_cost_per_useful = avg(lambda p, m: m.dali_s.mean() * seq(m) / CLIP_FRAMES)
    row.dali_near_s = avg(lambda p, m: rate(p, m, 0))
    row.dali_far_s = avg(lambda p, m: rate(p, m, 1))
    row.dali_slope = avg(lambda p, m: position_slope(m.dali_s, seq(m), p))
    row.dali_max_diff = max(m.dali_max_diff for _, m in per_input)
    row.dali_psnr = min(m.dali_psnr for _, m in per_input)
    return row


def recommend(rows: dict[Candidate, Row], backends: dict[str, set[str]]) -> Candidate:
    """The default to store.

    1. A codec that DALI decodes on both backends: the loader keeps one graph on CPU and GPU, and
       tests on CPU machines exercise the graph that trains on GPUs.
    2. Among those, storage at Kinetics scale decides: a codec more than twice the smallest eligible
       candidate's bytes is out (MJPEG is all-intra: an order of magnitude larger); of the rest, the
       one with the best DALI CPU clips/s at its smallest GOP.
    3. GOP: DALI's CPU decoder does not seek, so there it changes nothing; it bounds the work of every
       decoder that seeks (PyAV here; NVDEC, if it seeks). Take the largest GOP whose PyAV clips/s
       stays within 10% of that codec's best: the smallest files that keep cheap random access.
    """
    eligible = [c for c in rows if backends[c.codec] >= {"cpu", "mixed"}]
    smallest = min(rows[c].bytes_per_s for c in eligible)
    compact = [c for c in eligible if rows[c].bytes_per_s <= 2 * smallest]
    shortest = {c.codec: min(d.gop for d in compact if d.codec == c.codec) for c in compact}
    codec = max(shortest, key=lambda k: rows[Candidate(k, shortest[k])].dali_clips_s)
    gops = [c for c in compact if c.codec == codec]
    best = max(rows[c].pyav_clips_s for c in gops)
    return max((c for c in gops if rows[c].pyav_clips_s >= 0.9 * best), key=lambda c: c.gop)


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def print_tables(rows: dict[Candidate, Row], backends: dict[str, set[str]]):
    shard = ("codec", "gop", "NVDEC", "DALI cpu", "KB/s", "Kinetics GB", "enc s/s", "seq f/s",
             "PyAV clip/s", "dec/useful", "cost/useful", "DALI clip/s", "cost/useful")
    print("\nShard cost and CPU decode (cost/useful: clip time in sequential-decode frames per frame kept)")
    print(" ".join(f"{h:>11}" for h in shard))
    for c, r in rows.items():
        cells = (c.codec, c.gop, "yes" if "mixed" in backends[c.codec] else "no",
                 "yes" if "cpu" in backends[c.codec] else "no", fmt(r.bytes_per_s / 1e3, ".1f"),
                 fmt(r.kinetics_gb, ".0f"), fmt(r.encode_per_s, ".3f"), fmt(r.seq_fps, ".0f"),
                 fmt(r.pyav_clips_s, ".1f"), fmt(r.pyav_decoded_per_useful, ".2f"),
                 fmt(r.pyav_cost_per_useful, ".2f"), fmt(r.dali_clips_s, ".1f"), fmt(r.dali_cost_per_useful, ".2f"))
        print(" ".join(f"{x:>11}" for x in cells))
    pos = ("codec", "gop", "PyAV slope", "DALI near/s", "DALI far/s", "far/near", "DALI slope", "max |diff|",
           "PSNR dB")
    print("\nClip position (near/far: starts in the first/last third; slope: cost in sequential-decode frames"
          "\nper frame of position, ~1 = decodes from the start, ~0 = seeks) and DALI vs PyAV frames")
    print(" ".join(f"{h:>11}" for h in pos))
    for c, r in rows.items():
        ratio = r.dali_far_s / r.dali_near_s if r.dali_near_s else None
        cells = (c.codec, c.gop, fmt(r.pyav_slope, ".2f"), fmt(r.dali_near_s, ".1f"), fmt(r.dali_far_s, ".1f"),
                 fmt(ratio, ".2f"), fmt(r.dali_slope, ".2f"), fmt(r.dali_max_diff, "d"), fmt(r.dali_psnr, ".1f"))
        print(" ".join(f"{x:>11}" for x in cells))


def final_line(choice: Candidate, rows: dict[Candidate, Row]) -> str:
    r, h264 = rows[choice], rows.get(Candidate("h264", choice.gop))
    pairs = {
        "codec": choice.codec, "gop": choice.gop, "bytes_per_s": f"{r.bytes_per_s:.0f}",
        "kinetics_gb": f"{r.kinetics_gb:.0f}", "encode_s_per_s": f"{r.encode_per_s:.3f}",
        "seq_fps": f"{r.seq_fps:.0f}", "pyav_clips_per_s": f"{r.pyav_clips_s:.1f}",
        "pyav_decoded_per_useful": f"{r.pyav_decoded_per_useful:.2f}",
        "dali_cpu_clips_per_s": fmt(r.dali_clips_s, ".1f"), "dali_far_over_near": fmt(
            r.dali_far_s / r.dali_near_s if r.dali_near_s else None, ".2f"),
        "dali_psnr_vs_pyav": fmt(r.dali_psnr, ".1f"),
    }
    if h264:
        pairs["size_vs_h264"] = f"{r.bytes_per_s / h264.bytes_per_s:.2f}"
        pairs["pyav_vs_h264"] = f"{r.pyav_clips_s / h264.pyav_clips_s:.2f}"
    return " ".join(f"{k}={v}" for k, v in pairs.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.bench.shard_codecs", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--inputs", required=True, help="glob of source videos, quoted")
    p.add_argument("--short-side", type=int, default=EncodeSettings().short_side, help="stored short side")
    p.add_argument("--clips", type=int, default=40, help="training clips per input (same for every candidate)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved timing rounds; best per clip is kept")
    p.add_argument("--seed", type=int, default=0, help="seed of the clip positions and the decode order")
    args = p.parse_args(argv)
    files = sorted(glob.glob(args.inputs))
    if not files:
        print(f"error: no files match {args.inputs!r}", file=sys.stderr)
        return 2
    if args.clips < VERIFY_CLIPS or args.repeats < 1:
        print(f"error: need --clips >= {VERIFY_CLIPS} and --repeats >= 1", file=sys.stderr)
        return 2
    backends = dali_backends()
    dali_ok = {codec for codec, b in backends.items() if "cpu" in b}
    dali = DaliCpu()
    per_candidate: dict[Candidate, list] = {c: [] for c in CANDIDATES}
    t0 = time.perf_counter()
    try:
        for index, path in enumerate(tqdm(files, desc="inputs")):
            plan, size, measured = measure_input(path, index, args, dali, dali_ok)
            frames = measured[CANDIDATES[0]].frames
            tqdm.write(f"{Path(path).name}: stored {size[0]}x{size[1]}, {frames} frames at {FPS} fps")
            for c, m in measured.items():
                per_candidate[c].append((plan, m))
    except WrongFrames as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows = {c: summarise(v) for c, v in per_candidate.items()}
    print(f"\n{len(files)} inputs, {sum(m.seconds for _, m in per_candidate[CANDIDATES[0]]):.1f} s of video, "
          f"{args.clips} clips of {CLIP_FRAMES} frames at stride {STRIDE} each, best of {args.repeats} interleaved "
          f"rounds, one thread per decoder, {time.perf_counter() - t0:.0f} s; averages weighted by duration")
    print_tables(rows, backends)
    print()
    print(final_line(recommend(rows, backends), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
