"""Video retrieval by the VCOP protocol (RSPNet section 4.3): each video is 10 evenly spaced 16-frame
clips, the backbone's last conv features pooled per clip and averaged over clips; every query video
ranks the gallery by cosine similarity; top-k accuracy is the share of queries with a same-class
video among the k nearest.

Pooling (``POOLINGS``): "avg", the global average of the VCOP protocol and of RSPNet; "speednet",
SpeedNet's own (section 3.2): max over space, then mean over time, the features SpeedNet retrieves
with (section 5.4.2), so a SpeedNet backbone is read as it was trained to be read."""

from __future__ import annotations

import numpy as np

from index.embed import video_embeddings
from models.base import Backbone

TOP_K = (1, 5, 10, 20, 50)
POOLINGS = ("avg", "speednet")


def retrieval_topk(
    query: np.ndarray, query_labels: list, gallery: np.ndarray, gallery_labels: list, ks=TOP_K
) -> dict[int, float]:
    """Share of queries with a same-class gallery item among their k most similar (cosine, unit rows)."""
    order = np.argsort(-(query @ gallery.T), axis=1, kind="stable")
    same = np.array(gallery_labels, dtype=object)[order] == np.array(query_labels, dtype=object)[:, None]
    return {k: float(same[:, :k].any(axis=1).mean()) for k in ks if k <= gallery.shape[0]}


def retrieval(backbone: Backbone, query_shards, gallery_shards, *, pooling: str = "avg", **kw) -> dict:
    """Top-k accuracies of ``query_shards`` searching ``gallery_shards``, each video embedded by
    ``index.embed.video_embeddings`` (``kw``: its options) with the clip features pooled by ``pooling``."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    _, q_labels, q = video_embeddings(backbone, query_shards, pool=pooling, **kw)
    _, g_labels, g = video_embeddings(backbone, gallery_shards, pool=pooling, **kw)
    return {f"top{k}": v for k, v in retrieval_topk(q, q_labels, g, g_labels).items()} | {"queries": len(q)}
