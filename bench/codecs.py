"""``python -m bench.codecs``: which codec and keyframe interval the shard job should store.

For each candidate, on the same inputs: stored bytes, encode cost, and the CPU decode paths the
loader can use for SpeedNet/RSPNet training clips (16 frames at stride 2 from random positions):
PyAV seeking in the in-memory stream, and DALI's CPU video decoder (VP9 and MJPEG only; it does not
seek, so its cost grows with the clip's position, which the near/far columns show). The baseline is
a sequential PyAV decode of the whole stream, the ceiling any clip reader approaches when it decodes
every frame. Whether NVDEC decodes the codec comes from DALI's documentation, not a measurement.
The last line gives the recommended default (see ``recommend``) and its figures.
"""

from __future__ import annotations

import argparse
import glob
import io
import sys
import time
from dataclasses import dataclass

import av
import numpy as np
from tqdm import tqdm

from pipeline.normalise import EncodeSettings, normalise

CANDIDATES = [
    ("vp9", 16),
    ("vp9", 32),
    ("vp9", 64),
    ("vp9", 250),
    ("h264", 16),
    ("h264", 32),
    ("h264", 64),
    ("h264", 250),
    ("mjpeg", 1),
]
DALI_CPU = {"vp9", "mjpeg"}  # fn.decoders.video's CPU backend: VP8, VP9, MJPEG
NVDEC = {"vp9", "h264", "mjpeg"}  # its mixed backend adds H.264, HEVC, AV1, MPEG-4
CLIP, STRIDE = 16, 2


@dataclass
class Result:
    seconds: float = 0.0  # of video
    bytes: int = 0
    encode_s: float = 0.0
    pyav_s: float = 0.0
    dali_near_s: float = 0.0
    dali_far_s: float = 0.0
    full_s: float = 0.0
    frames: int = 0
    clips: int = 0


def clip_indices(frames: int, n: int, rng: np.random.Generator) -> list[list[int]]:
    span = (CLIP - 1) * STRIDE + 1
    starts = rng.integers(0, frames - span + 1, n)
    return [list(range(s, s + span, STRIDE)) for s in sorted(starts)]


def pyav_clip(data: bytes, indices: list[int], fps: int) -> list[np.ndarray]:
    """Seek to the keyframe before the clip and decode forward to its last frame."""
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        c.seek(int(indices[0] / fps / stream.time_base), stream=stream, backward=True, any_frame=False)
        wanted, out = set(indices), {}
        for frame in c.decode(stream):
            i = round(frame.pts * stream.time_base * fps)
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24")
            if i >= indices[-1]:
                break
    return [out[i] for i in indices]


def full_decode(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def dali_decoder():
    """A DALI CPU pipeline: encoded bytes and frame indices in, those frames out."""
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=1, num_threads=1, device_id=None, prefetch_queue_depth=1)
    def pipe():
        encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
        frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
        return fn.decoders.video(encoded, device="cpu", frames=frames, pad_mode="none")

    p = pipe()
    p.build()

    def decode(data: bytes, indices: list[int]) -> np.ndarray:
        p.feed_input("encoded", [np.frombuffer(data, np.uint8)])
        p.feed_input("frames", [np.array(indices, np.int32)])
        return np.array(p.run()[0][0])

    return decode


def measure(files: list[str], clips: int, short_side: int, seed: int) -> dict[tuple, Result]:
    results = {c: Result() for c in CANDIDATES}
    dali = dali_decoder()
    for path in files:
        for codec, gop in tqdm(CANDIDATES, desc=path.rsplit("/", 1)[-1], leave=False):
            r = results[(codec, gop)]
            t = time.perf_counter()
            out = normalise(path, EncodeSettings(codec=codec, gop=gop, short_side=short_side))
            r.encode_s += time.perf_counter() - t
            r.bytes += len(out.data)
            r.seconds += out.frames / 25
            plan = clip_indices(out.frames, clips, np.random.default_rng(seed))  # same positions for all
            t = time.perf_counter()
            full = full_decode(out.data)
            r.full_s += time.perf_counter() - t
            r.frames += len(full)
            t = time.perf_counter()
            for indices in plan:
                got = pyav_clip(out.data, indices, 25)
            r.pyav_s += time.perf_counter() - t
            assert all(np.array_equal(g, full[i]) for g, i in zip(got, indices)), f"wrong frames from seek ({codec})"
            if codec in DALI_CPU:
                half = len(plan) // 2
                for part, attr in ((plan[:half], "dali_near_s"), (plan[half:], "dali_far_s")):
                    t = time.perf_counter()
                    for indices in part:
                        frames = dali(out.data, indices)
                    setattr(r, attr, getattr(r, attr) + time.perf_counter() - t)
                err = np.abs(frames.astype(int) - np.stack([full[i] for i in plan[-1]]).astype(int)).mean()
                assert err < 3, f"DALI frames differ from PyAV's ({codec}): mean abs error {err:.2f}"
            r.clips += len(plan)
    return results


def recommend(results: dict[tuple, Result]) -> tuple[str, int]:
    """The default: a codec both DALI backends decode (one pipeline graph on CPU and GPU), and its
    largest GOP whose seeking clip decode stays within 10% of the shortest GOP's (small files, and
    cheap random access for decoders that seek)."""
    codec = "vp9" if "vp9" in DALI_CPU & NVDEC else sorted(DALI_CPU & NVDEC)[0]
    rates = {gop: r.clips / r.pyav_s for (c, gop), r in results.items() if c == codec}
    best = max(rates.values())
    return codec, max(gop for gop, rate in rates.items() if rate >= 0.9 * best)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", help="glob of source videos (default: a synthetic set made here)")
    p.add_argument("--clips", type=int, default=24, help="training clips decoded per video and candidate")
    p.add_argument("--short-side", type=int, default=EncodeSettings().short_side)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.inputs:
        files = sorted(glob.glob(args.inputs))
    else:
        import tempfile

        from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

        tmp = tempfile.mkdtemp()
        make_kinetics_dataset(
            tmp,
            SyntheticConfig(videos_per_class={"train": 1, "val": 0, "test": 0}, width=320, height=240, duration_s=6.0),
        )
        files = sorted(glob.glob(f"{tmp}/train/*.mp4"))[:3]
    if not files:
        print(f"error: no input videos match {args.inputs!r}", file=sys.stderr)
        return 2
    results = measure(files, args.clips, args.short_side, args.seed)
    base = results[CANDIDATES[0]]
    print(
        f"{len(files)} videos, {base.seconds:.0f} s of video, {args.clips} clips each, one core per decoder; "
        "'vs full' = clip frames per second over full sequential decode frames per second"
    )
    head = (
        "codec",
        "gop",
        "MB/min",
        "enc x rt",
        "full f/s",
        "PyAV clip/s",
        "DALI clip/s",
        "near",
        "far",
        "vs full",
        "NVDEC",
    )
    print(("{:>12}" * len(head)).format(*head))
    for (codec, gop), r in results.items():
        dali_s = r.dali_near_s + r.dali_far_s
        dali = f"{r.clips / dali_s:.1f}" if dali_s else "-"
        near = f"{r.clips / 2 / r.dali_near_s:.1f}" if dali_s else "-"
        far = f"{r.clips / 2 / r.dali_far_s:.1f}" if dali_s else "-"
        useful = (CLIP * r.clips / r.pyav_s) / (r.frames / r.full_s)  # PyAV clip frames/s over the ceiling's
        print(
            ("{:>12}" * len(head)).format(
                codec,
                gop,
                f"{r.bytes / r.seconds * 60 / 1e6:.2f}",
                f"{r.encode_s / r.seconds:.3f}",
                f"{r.frames / r.full_s:.0f}",
                f"{r.clips / r.pyav_s:.1f}",
                dali,
                near,
                far,
                f"{useful:.2f}",
                "yes" if codec in NVDEC else "no",
            )
        )
    codec, gop = recommend(results)
    r, h264 = results[(codec, gop)], results[("h264", gop)]
    print(
        f"codec={codec} gop={gop} mb_per_min={r.bytes / r.seconds * 60 / 1e6:.2f} "
        f"size_vs_h264={r.bytes / h264.bytes:.2f} dali_cpu_clips_per_s={r.clips / (r.dali_near_s + r.dali_far_s):.1f} "
        f"pyav_clips_per_s={r.clips / r.pyav_s:.1f} pyav_vs_h264={h264.pyav_s / r.pyav_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
