"""``python -m index.query clip.mp4 --k 10``: the clips (or videos) of a collection nearest a query.

    python -m index.query clip.mp4 --k 10                        # the demo's index, if there is one
    python -m index.query clip.mp4 --index runs/k400-index --k 10 --json
    python -m index.query clip.mp4 --within long_video.mp4 --plot curve.png
    python -m index.query clip.mp4 --grid results.png

The query clip is normalised as the collection was (the store's ``encode`` settings), embedded by the
model the index was built from (its checkpoint, checked against the weights' fingerprint), as the
mean of its sliding windows for a clip index or by the VCOP protocol for a video index, and searched.
``--within``: its similarity to every window of another video over time, the peaks, and a plot.
``--grid``: a contact sheet of the query and its results.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from index import build, store
from index.embed import video_embeddings, windows_of_video
from index.faiss_index import search
from index.within import peaks, plot_curve
from models.trained import CheckpointMissing, fingerprint, load_trained
from pipeline.atomic import atomic_path
from pipeline.decode import frames_at
from pipeline.device import torch_device
from pipeline.loose_videos import shard_video
from pipeline.normalise import EncodeSettings
from pipeline.shards import ShardIndex

DEFAULT_INDEX = Path("demo-out/index")  # where `just demo` builds one


class QueryError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def embedder(sidecar: dict, device: str):
    """The index's model, refusing a checkpoint whose weights are not the ones the index was built with."""
    model = sidecar["model"]
    try:
        trained = load_trained(Path(model["checkpoint"]))
    except CheckpointMissing:
        raise QueryError(f"the index's model checkpoint is gone: {model['checkpoint']}") from None
    except ValueError as e:
        raise QueryError(str(e)) from None
    found = fingerprint(trained.backbone)
    if found != model["fingerprint"]:
        raise QueryError(
            f"{model['checkpoint']} no longer holds the model this index was built from "
            f"(weights {found} != {model['fingerprint']}): rebuild the index"
        )
    return trained.backbone.to(device)


def prepare(path: Path, sidecar: dict, work: Path) -> list[Path]:
    """``path`` normalised like the indexed collection, as a one-video shard under ``work``. Any
    length is taken: a clip shorter than the model's T is padded by the plan (its last frame)."""
    try:
        return shard_video(path, work, EncodeSettings(**{**sidecar.get("encode", {}), "min_frames": 1}))
    except ValueError as e:
        raise QueryError(str(e)) from None


def windows_of(backbone, tars: list[Path], sidecar: dict, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(W, T) frame indices and (W, D) unit embeddings of every window of the one video in ``tars``."""
    c = sidecar["clips"]
    return windows_of_video(
        backbone, tars, T=c["T"], stride=c["stride"], rate=c["rate"], size=c["size"], pool=c["pool"], device=device
    )


def query_vector(backbone, tars: list[Path], sidecar: dict, device: str) -> tuple[np.ndarray, tuple[int, int]]:
    """The query's unit embedding at the index's level, and the [first, end) frames it covers."""
    if sidecar["level"] == "videos":
        v = sidecar["videos"]
        _, _, vec = video_embeddings(
            backbone, tars, T=v["T"], clips=v["clips"], size=v["size"], pool=v["pool"], device=device
        )
        return vec[0], (0, ShardIndex(tars).read_meta(0).frames)
    indices, emb = windows_of(backbone, tars, sidecar, device)
    mean = emb.mean(axis=0)
    return mean / max(np.linalg.norm(mean), 1e-12), (int(indices.min()), int(indices.max()) + 1)


def results(sidecar: dict, scores: np.ndarray, ids: np.ndarray) -> list[dict]:
    """Rank, score and what each hit is (video, label, times), read from the stores that hold them."""
    hits = [
        (rank, float(score), *build.locate(sidecar, int(fid)))
        for rank, (score, fid) in enumerate(zip(scores, ids), 1)
        if fid >= 0
    ]  # -1: fewer hits than k
    described = {}
    for path in {h[2] for h in hits}:
        try:
            build.check_source(sidecar, path)
        except ValueError as e:
            raise QueryError(str(e)) from None
        mine = [h for h in hits if h[2] == path]
        rows = store.describe_rows(Path(path), sidecar["level"], np.array([h[4] for h in mine]))
        described |= {(path, h[4]): row for h, row in zip(mine, rows)}
    return [
        {"rank": rank, "score": score, **described[(path, row)], "store": str(path)}
        for rank, score, path, _, row in hits
    ]


def table(rows: list[dict]) -> str:
    lines = [f"{'rank':>4}  {'score':>6}  {'video':<28} {'label':<20} {'start':>7} {'end':>7}"]
    for r in rows:
        times = f"{r['start_time']:7.2f} {r['end_time']:7.2f}" if "start_time" in r else f"{'':>7} {'':>7}"
        lines.append(f"{r['rank']:>4}  {r['score']:6.3f}  {r['video'][:28]:<28} {(r['label'] or '-')[:20]:<20} {times}")
    return "\n".join(lines)


def grid(query_tars: list[Path], query_span: tuple[int, int], rows: list[dict], out: Path) -> None:
    """Contact sheet: the query, then each result's clip, 6 frames each."""
    from pipeline.preview import contact_sheet

    def clip(tars, position, first, last):
        index = ShardIndex(tars)
        _, data = index.read(position)
        return frames_at(data, np.linspace(first, last - 1, 6).round().astype(int))

    clips = [clip(query_tars, 0, *query_span)]
    captions = ["query"]
    for r in rows:
        root = store.open_store(Path(r["store"]), mode="r")
        tars = [Path(t) for t in root.attrs["shards"]]
        position = r["video_row"]  # videos/* rows are the shards' sample order
        frames = int(root["videos"]["frames"][position])
        first, last = (r["start_frame"], r["end_frame"]) if "start_frame" in r else (0, int(frames))
        clips.append(clip(tars, position, first, last))
        times = f"\n{r['start_time']:.1f}-{r['end_time']:.1f} s" if "start_time" in r else ""
        captions.append(f"#{r['rank']}  {r['score']:.3f}\n{r['video'][:30]}\n{r['label'] or '-'}{times}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        contact_sheet(clips, captions, max_frames=6).save(tmp, format="PNG")


def within(
    backbone, vector: np.ndarray, path: Path, sidecar: dict, work: Path, device: str, plot: Path, count: int
) -> dict:
    """Similarity of the query to every window of ``path`` over time, its peaks, and the plot."""
    tars = prepare(path, sidecar, work)
    indices, emb = windows_of(backbone, tars, sidecar, device)
    fps = ShardIndex(tars).read_meta(0).fps
    scores = emb @ vector
    centre = (indices[:, 0] + indices[:, -1] + 1) / 2 / fps
    c = sidecar["clips"]
    top = peaks(scores, separation=max(1, c["T"] // c["stride"]), count=count)
    plot_curve(centre, scores, top, f"query vs {path.name}", plot)
    return {
        "video": str(path),
        "plot": str(plot),
        "times": centre.tolist(),
        "scores": scores.tolist(),
        "peaks": [
            {
                "rank": r,
                "time": float(centre[i]),
                "start_time": float(indices[i, 0] / fps),
                "end_time": float((indices[i, -1] + 1) / fps),
                "score": float(scores[i]),
            }
            for r, i in enumerate(top, 1)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m index.query", description=__doc__.split("\n\n")[0])
    p.add_argument("clip", type=Path, help="the query video file")
    p.add_argument("--index", type=Path, help=f"index folder from index.build (default {DEFAULT_INDEX} if it exists)")
    p.add_argument("--k", type=int, default=10, help="results to return (default %(default)s)")
    p.add_argument("--distinct", action="store_true", help="at most one result (the best window) per video")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--within", type=Path, metavar="VIDEO", help="similarity to every window of VIDEO over time")
    p.add_argument("--plot", type=Path, help="--within: PNG of the curve (default VIDEO_STEM-similarity.png)")
    p.add_argument("--peaks", type=int, default=5, help="--within: peaks to report (default %(default)s)")
    p.add_argument("--grid", type=Path, metavar="PNG", help="contact sheet of the query and its results")
    args = p.parse_args(argv)
    device = torch_device()
    try:
        folder = args.index or DEFAULT_INDEX
        if args.index is None and not (folder / "index.json").is_file():
            raise QueryError(f"no --index given and no index at {DEFAULT_INDEX} (build one with python -m index.build)")
        try:
            index, sidecar = build.load(folder)
        except (FileNotFoundError, ValueError) as e:
            raise QueryError(str(e)) from None
        if not 1 <= args.k <= sidecar["count"]:
            raise QueryError(f"--k must be between 1 and {sidecar['count']} (the vectors in the index), got {args.k}")
        backbone = embedder(sidecar, device)
        with tempfile.TemporaryDirectory(prefix="speedrep-query-") as work:
            query_tars = prepare(args.clip, sidecar, Path(work) / "query")
            vector, span = query_vector(backbone, query_tars, sidecar, device)
            # --distinct: overlapping windows of one video crowd the top k, so look deeper, keep each video's best
            depth = min(sidecar["count"], max(20 * args.k, 200)) if args.distinct else args.k
            scores, ids = search(index, vector[None].astype(np.float32), depth, sidecar.get("nprobe"))
            hits = results(sidecar, scores[0], ids[0])
            if args.distinct:
                hits = [h for i, h in enumerate(hits) if h["video"] not in {g["video"] for g in hits[:i]}][: args.k]
                for rank, h in enumerate(hits, 1):
                    h["rank"] = rank
            out = {"query": str(args.clip), "index": str(folder), "level": sidecar["level"], "results": hits}
            if args.within:
                plot = args.plot or Path(f"{args.within.stem}-similarity.png")
                out["within"] = within(
                    backbone, vector, args.within, sidecar, Path(work) / "within", device, plot, args.peaks
                )
            if args.grid:
                grid(query_tars, span, out["results"], args.grid)
                out["grid"] = str(args.grid)
    except QueryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.clip} -> {out['level']} of {folder}")
    print(table(out["results"]))
    if "within" in out:
        w = out["within"]
        print(f"\nwithin {w['video']}: {len(w['scores'])} windows, plot {w['plot']}")
        for pk in w["peaks"]:
            print(f"  peak {pk['rank']}: {pk['start_time']:.2f}-{pk['end_time']:.2f} s  score {pk['score']:.3f}")
    if "grid" in out:
        print(f"grid: {out['grid']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
