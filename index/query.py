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

A shell over ``index.retriever.Retriever`` (the Python API; ``index.serve`` is the same as a service).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

from index import store
from index.retriever import QueryError, Retriever
from pipeline import logs
from pipeline.atomic import atomic_path
from pipeline.decode import frames_at
from pipeline.device import add_device_option, apply_device_option, torch_device
from pipeline.help_format import HelpFormatter
from pipeline.shards import ShardIndex

DEFAULT_INDEX = Path("demo-out/index")  # where `just demo` builds one

log = logging.getLogger(__name__)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m index.query", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("clip", type=Path, help="the query video file")
    p.add_argument("--index", type=Path, help=f"index folder from index.build (default {DEFAULT_INDEX} if it exists)")
    p.add_argument("--k", type=int, default=10, help="results to return (default %(default)s)")
    p.add_argument("--distinct", action="store_true", help="at most one result (the best window) per video")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--within", type=Path, metavar="VIDEO", help="similarity to every window of VIDEO over time (default: none)"
    )
    p.add_argument("--plot", type=Path, help="--within: PNG of the curve (default VIDEO_STEM-similarity.png)")
    p.add_argument("--peaks", type=int, default=5, help="--within: peaks to report (default %(default)s)")
    p.add_argument(
        "--grid", type=Path, metavar="PNG", help="contact sheet of the query and its results (default: none)"
    )
    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure(quiet=args.json)
    try:
        folder = args.index or DEFAULT_INDEX
        if args.index is None and not (folder / "index.json").is_file():
            raise QueryError(f"no --index given and no index at {DEFAULT_INDEX} (build one with python -m index.build)")
        retriever = Retriever(folder, device=torch_device())
        if not 1 <= args.k <= retriever.count:
            raise QueryError(f"--k must be between 1 and {retriever.count} (the vectors in the index), got {args.k}")
        with tempfile.TemporaryDirectory(prefix="speedrep-query-") as work:
            query_tars = retriever.prepare(args.clip, Path(work) / "query")
            vector, span = retriever.query_vector(query_tars)
            hits = [h.to_dict() for h in retriever.hits(vector, args.k, args.distinct)]
            out = {"query": str(args.clip), "index": str(folder), "level": retriever.sidecar["level"], "results": hits}
            if args.within:
                plot = args.plot or Path(f"{args.within.stem}-similarity.png")
                tars = retriever.prepare(args.within, Path(work) / "within")
                curve = retriever.within(vector, tars, args.peaks, plot, title=f"query vs {args.within.name}")
                out["within"] = {"video": str(args.within), "plot": str(plot), **curve}
            if args.grid:
                grid(query_tars, span, out["results"], args.grid)
                out["grid"] = str(args.grid)
    except QueryError as e:
        log.error("%s", e)
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
