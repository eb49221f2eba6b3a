"""``Retriever``: an index, its stores and its encoder opened once, searched many times.

    from index.retriever import Retriever
    r = Retriever("demo-out/index")
    hits = r.search("clip.mp4", k=10)              # or bytes, or a uint8 (T, H, W, 3) frame array
    hits[0].video, hits[0].start_time, hits[0].score
    curve = r.search_within("clip.mp4", "long.mp4")  # similarity over time and its peaks

A query video is normalised as the collection was (the store's ``encode`` settings), embedded by
the model the index was built from (checked against the weights' fingerprint) as the mean of its
sliding windows (a clip index) or by the VCOP protocol (a video index), and searched. Any problem
with the input (no such file, not a video, no video stream, corrupt, too short to decode) raises
``QueryError`` with one line saying why.

A query has two stages with different costs, kept apart so a service can run them apart:
``index.prepare.prepare_video`` (decode and re-encode: CPU, a function of the video and the
settings, safe in a worker process) and ``Retriever.query_vector`` + ``Retriever.hits`` (the model
and FAISS; model passes take turns under a lock, since one model serves every caller).
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index import build, store
from index.embed import video_embeddings, windows_of_video
from index.faiss_index import search as faiss_search
from index.prepare import QueryError, Video, encode_settings, prepare_video
from index.within import peaks, plot_curve
from models.trained import CheckpointMissing, fingerprint, load_trained
from pipeline.device import torch_device
from pipeline.shards import ShardIndex

__all__ = ["Hit", "QueryError", "Retriever", "Video", "encode_settings", "load_model", "prepare_video"]


@dataclass(frozen=True)
class Hit:
    """One search result. Clip-level hits have times and frames; video-level hits have them None.
    ``store`` and ``video_row`` say where the video is: the store's shards hold it at that position."""

    rank: int
    score: float
    video: str  # the sample key
    label: str | None
    start_time: float | None
    end_time: float | None
    store: str
    video_row: int
    id: int  # row in the store's clips/* or videos/* arrays
    start_frame: int | None = None
    end_frame: int | None = None

    def to_dict(self) -> dict:
        """The row ``python -m index.query --json`` prints (clip fields only at clip level)."""
        d = asdict(self)
        row = {k: d[k] for k in ("rank", "score", "id", "video", "label", "video_row")}
        if self.start_time is not None:
            row |= {k: d[k] for k in ("start_time", "end_time", "start_frame", "end_frame")}
        return row | {"store": self.store}


def load_model(sidecar: dict, device: str):
    """The index's backbone on ``device``, refusing weights that are not the ones the index was built with."""
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


class Retriever:
    """An index folder (from ``index.build``) opened for querying: index, sidecar, stores and model.

    Raises ``QueryError`` (one line) if the index, one of its stores or its model is missing or no
    longer the one it was built from. Safe to call from several threads: model passes take turns."""

    def __init__(self, index_dir: str | Path, device: str | None = None):
        self.folder = Path(index_dir)
        try:
            self.index, self.sidecar = build.load(self.folder)
        except (FileNotFoundError, ValueError) as e:
            raise QueryError(str(e)) from None
        self.device = device or torch_device()
        self.backbone = load_model(self.sidecar, self.device)
        for source in self.sidecar["sources"]:
            try:
                build.check_source(self.sidecar, source["store"])
            except ValueError as e:
                raise QueryError(str(e)) from None
        self.settings = encode_settings(self.sidecar)
        self._model = threading.Lock()

    @property
    def count(self) -> int:
        """Vectors in the index."""
        return int(self.sidecar["count"])

    def identity(self) -> dict:
        """What this retriever serves: the model, the index and the identity of each store."""
        model = self.sidecar.get("model") or {}
        return {
            "index": str(self.folder.resolve()),
            "level": self.sidecar["level"],
            "count": self.count,
            "created": self.sidecar.get("updated", self.sidecar.get("created")),
            "model": {k: model.get(k) for k in ("checkpoint", "method", "backbone", "step", "fingerprint")},
            "stores": [{"store": s["store"], "identity": s.get("identity")} for s in self.sidecar["sources"]],
        }

    # The two stages of a query.
    def prepare(self, video: Video, work: Path) -> list[Path]:
        """``prepare_video`` with this index's settings."""
        return prepare_video(video, self.settings, work)

    def query_vector(self, tars: list[Path]) -> tuple[np.ndarray, tuple[int, int]]:
        """The prepared query's unit embedding at the index's level, and the [first, end) frames it covers."""
        if self.sidecar["level"] == "videos":
            v = self.sidecar["videos"]
            with self._model:
                _, _, vec = video_embeddings(
                    self.backbone, tars, T=v["T"], clips=v["clips"], size=v["size"], pool=v["pool"], device=self.device
                )
            if len(vec) == 0:
                raise QueryError("the video could not be decoded")
            return vec[0], (0, ShardIndex(tars).read_meta(0).frames)
        indices, emb = self.windows(tars)
        mean = emb.mean(axis=0)
        return mean / max(np.linalg.norm(mean), 1e-12), (int(indices.min()), int(indices.max()) + 1)

    def windows(self, tars: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        """(W, T) frame indices and (W, D) unit embeddings of every window of the prepared video."""
        c = self.sidecar["clips"]
        with self._model:
            indices, emb = windows_of_video(
                self.backbone,
                tars,
                T=c["T"],
                stride=c["stride"],
                rate=c["rate"],
                size=c["size"],
                pool=c["pool"],
                device=self.device,
            )
        if len(emb) == 0:
            raise QueryError("the video could not be decoded")
        return indices, emb

    def hits(self, vector: np.ndarray, k: int = 10, distinct: bool = False) -> list[Hit]:
        """The ``k`` nearest rows to a unit ``vector``; ``distinct``: at most one (the best) per video."""
        if not 1 <= k <= self.count:
            raise QueryError(f"k must be between 1 and {self.count} (the vectors in the index), got {k}")
        # distinct: overlapping windows of one video crowd the top k, so look deeper, keep each video's best
        depth = min(self.count, max(20 * k, 200)) if distinct else k
        scores, ids = faiss_search(self.index, vector[None].astype(np.float32), depth, self.sidecar.get("nprobe"))
        found = self._describe(scores[0], ids[0])
        if distinct:
            found = [h for i, h in enumerate(found) if h["video"] not in {g["video"] for g in found[:i]}][:k]
        return [_hit(rank, h) for rank, h in enumerate(found, 1)]

    # The one-call forms.
    def embed(self, video: Video) -> np.ndarray:
        """The video's unit embedding at the index's level, (D,) float32."""
        with tempfile.TemporaryDirectory(prefix="speedrep-query-") as work:
            return self.query_vector(self.prepare(video, Path(work)))[0]

    def search(self, video: Video, k: int = 10, distinct: bool = False) -> list[Hit]:
        """The ``k`` indexed clips (or videos) nearest ``video``, best first."""
        if not 1 <= k <= self.count:  # before the transcode, which costs far more
            raise QueryError(f"k must be between 1 and {self.count} (the vectors in the index), got {k}")
        return self.hits(self.embed(video), k, distinct)

    def search_within(self, query: Video, long_video: Video, count: int = 5, plot: Path | None = None) -> dict:
        """How similar ``query`` is to every window of ``long_video`` over time: ``times`` (window
        centres, s), ``scores``, and up to ``count`` ``peaks`` (best first, one per moment); with
        ``plot``, the curve as a PNG there. Needs a clip index (its window settings)."""
        if self.sidecar["level"] != "clips":
            raise QueryError("within-video search needs a clip index (built with --level clips)")
        with tempfile.TemporaryDirectory(prefix="speedrep-within-") as work:
            vector, _ = self.query_vector(self.prepare(query, Path(work) / "query"))
            return self.within(vector, self.prepare(long_video, Path(work) / "within"), count, plot)

    def within(
        self, vector: np.ndarray, tars: list[Path], count: int = 5, plot: Path | None = None, title: str = ""
    ) -> dict:
        """``search_within`` for a query vector and a prepared long video (``title``: the plot's)."""
        indices, emb = self.windows(tars)
        fps = ShardIndex(tars).read_meta(0).fps
        scores = emb @ vector
        centre = (indices[:, 0] + indices[:, -1] + 1) / 2 / fps
        c = self.sidecar["clips"]
        top = peaks(scores, separation=max(1, c["T"] // c["stride"]), count=count)
        if plot is not None:
            plot_curve(centre, scores, top, title or "query vs the video", plot)
        return {
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

    def _describe(self, scores: np.ndarray, ids: np.ndarray) -> list[dict]:
        """Score and what each hit is (video, label, times), read from the stores that hold them."""
        hits = [(float(s), *build.locate(self.sidecar, int(i))) for s, i in zip(scores, ids) if i >= 0]  # -1: < k
        described = {}
        for path in {h[1] for h in hits}:
            mine = [h for h in hits if h[1] == path]
            rows = store.describe_rows(Path(path), self.sidecar["level"], np.array([h[3] for h in mine]))
            described |= {(path, h[3]): row for h, row in zip(mine, rows)}
        return [{"score": score, **described[(path, row)], "store": str(path)} for score, path, _, row in hits]


def _hit(rank: int, row: dict) -> Hit:
    return Hit(
        rank=rank,
        score=row["score"],
        video=row["video"],
        label=row["label"],
        start_time=row.get("start_time"),
        end_time=row.get("end_time"),
        store=row["store"],
        video_row=row["video_row"],
        id=row["id"],
        start_frame=row.get("start_frame"),
        end_frame=row.get("end_frame"),
    )
