"""FAISS around the embedding store: which index to build, building it, searching it, and measuring it.

Every row is a unit vector, so cosine similarity is the inner product and every index here uses
``METRIC_INNER_PRODUCT``; scores are similarities (higher is nearer). Ids are int64 and travel with
the vectors (``IndexIDMap2`` around a Flat index, ``add_with_ids`` on IVF), so a search answers with
the caller's ids, never with FAISS's insertion positions.

Which index (``choose_factory``), the one rule:

- ``Flat`` (exact, 4 bytes a dimension) while there are at most ``exact_limit`` rows and they fit the
  memory budget: exact search is fast enough there, and the recall question does not arise;
- otherwise ``IVF{nlist},SQ8`` (1 byte a dimension, recall close to Flat's) when that fits;
- otherwise ``IVF{nlist},PQ{m}`` (m bytes a row), m the largest of 64, 48, 32, 16, 8, 4, 2, 1 that
  divides the dimension and whose codes fit.

The budget counts the vectors' codes only (not the 8-byte ids, nor the nlist coarse centroids).
``nlist`` is 4·sqrt(n) rounded to the nearest power of two, clamped to [16, 65536], then halved
until every list has at least 39 training points (FAISS's minimum for a sane k-means).

Padding ids: where fewer than k rows exist, a result row ends in id -1 with score -inf, in
``search`` and in ``brute_force`` alike.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from pipeline.extras import optional_import

faiss = optional_import("faiss", "FAISS")

log = logging.getLogger(__name__)

MIN_POINTS_PER_LIST = 39  # FAISS warns below this many training points per centroid
PQ_CHOICES = (64, 48, 32, 16, 8, 4, 2, 1)
_BRUTE_FORCE_BYTES = 256 << 20  # score matrix per chunk of queries in brute_force


def nlist_for(n: int) -> int:
    """Inverted lists for ``n`` rows: ~4·sqrt(n), a power of two in [16, 65536], >= 39 rows each."""
    nlist = 2 ** round(math.log2(max(4 * math.sqrt(max(n, 1)), 1)))
    nlist = min(max(nlist, 16), 65536)
    while nlist > 1 and nlist * MIN_POINTS_PER_LIST > n:
        nlist //= 2
    return nlist


def choose_factory(n: int, dim: int, memory_bytes: int, exact_limit: int = 200_000) -> str:
    """The FAISS factory string for ``n`` unit rows of ``dim`` within ``memory_bytes`` (rule above).
    Raises ValueError when not even one byte a row fits."""
    if n <= exact_limit and n * dim * 4 <= memory_bytes:
        return "Flat"
    nlist = nlist_for(n)
    if n * dim <= memory_bytes:
        return f"IVF{nlist},SQ8"
    for m in PQ_CHOICES:
        if dim % m == 0 and n * m <= memory_bytes:
            return f"IVF{nlist},PQ{m}"
    raise ValueError(f"{n} rows do not fit in {memory_bytes} bytes even at 1 byte a row")


def gpu_count() -> int:
    """GPUs FAISS can use (0 with the faiss-cpu wheel, which has no GPU code)."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def uses_gpu(factory: str, use_gpu: bool) -> bool:
    """Whether ``build`` trains and adds on GPU: asked for, a GPU is there, and there is training to do
    (a Flat index has none and adding to it is a copy, so it is always built on CPU)."""
    return bool(use_gpu) and gpu_count() > 0 and factory != "Flat"


def ivf_of(index: faiss.Index):
    """The IVF layer of a CPU index (through wrappers), or None for a Flat index."""
    return faiss.try_extract_index_ivf(index)


def _training_rows(n: int, nlist: int, pq: bool, per_list: int, seed: int) -> np.ndarray:
    """Seeded row sample to train on: ``per_list`` (at most 256, k-means samples down to that anyway)
    but never under 39 per list; PQ codebooks (256 centroids each) want 39·256 rows themselves."""
    per_list = min(max(per_list, MIN_POINTS_PER_LIST), 256)
    size = nlist * per_list
    if pq:
        size = max(size, MIN_POINTS_PER_LIST * 256)
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def gpu_cloner_settings(factory: str) -> dict:
    """How ``build`` copies an IVF index to the GPU (fields of ``faiss.GpuClonerOptions``).

    ``useFloat16``: for IVF-PQ it makes the lookup tables float16 (``useFloat16LookupTables``); with
    float32 tables a 64-byte code needs more shared memory than a GPU block has, and the clone fails.
    For SQ8 and Flat lists it is not used. ``shard`` stays off: the index goes to one GPU on purpose,
    since replicating it on every GPU (``index_cpu_to_all_gpus``'s default) trains and adds the same
    data N times, for N times the memory and no speed-up."""
    return {"useFloat16": "PQ" in factory, "shard": False}


def _to_gpu(index: faiss.Index, factory: str):
    """``index`` cloned to GPU 0 with ``gpu_cloner_settings``; the resources stay alive with it."""
    resources = faiss.StandardGpuResources()
    options = faiss.GpuClonerOptions()
    for name, value in gpu_cloner_settings(factory).items():
        setattr(options, name, value)
    work = faiss.index_cpu_to_gpu(resources, 0, index, options)
    work.referenced_objects = [resources]  # FAISS does not own the resources; keep them with the index
    return work


def build(
    vectors: np.ndarray, ids: np.ndarray, factory: str, use_gpu: bool, *, train_per_list: int = 256, seed: int = 0
) -> faiss.Index:
    """A trained CPU index of ``vectors`` (float32 unit rows) under ``ids`` (int64), inner product.

    IVF indexes are trained on a seeded subsample (``train_per_list`` rows a list, 39 to 256) and,
    when ``uses_gpu``, trained and filled on one GPU (``gpu_cloner_settings``) then copied back to CPU
    so the caller can ``faiss.write_index`` it. A GPU that refuses the index, or runs out of memory
    training or adding, leaves the work to the CPU, said in one logged line."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise ValueError(f"vectors {vectors.shape} and ids {ids.shape} do not match")
    n, dim = vectors.shape
    if factory == "Flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        index.add_with_ids(vectors, ids)
        return index
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError:
        raise ValueError(f"FAISS cannot make an index of factory {factory!r} for dim {dim}") from None
    ivf = ivf_of(index)
    if ivf is None:
        raise ValueError(f"factory {factory!r} is neither Flat nor IVF")
    if n < ivf.nlist:
        raise ValueError(f"{n} rows cannot train {ivf.nlist} lists (factory {factory!r})")
    sample = vectors[_training_rows(n, ivf.nlist, "PQ" in factory, train_per_list, seed)]
    if uses_gpu(factory, use_gpu):
        try:
            work = _to_gpu(index, factory)
            work.train(sample)
            work.add_with_ids(vectors, ids)
            return faiss.index_gpu_to_cpu(work)
        except RuntimeError as e:  # a code size the GPU kernels refuse, or out of GPU memory
            reason = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
            log.warning("building %s on CPU: the GPU failed (%s)", factory, reason)
            index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)  # untouched by the GPU
    index.train(sample)
    del sample
    index.add_with_ids(vectors, ids)
    return index


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    """Lists an IVF search visits (clamped to nlist); no-op on a Flat index. Works on GPU indexes too."""
    ivf = ivf_of(index)
    if ivf is not None:
        ivf.nprobe = int(min(max(nprobe, 1), ivf.nlist))
    elif "Gpu" in type(index).__name__ or "Replicas" in type(index).__name__:
        faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", int(max(nprobe, 1)))


def search(index: faiss.Index, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores (q, k) float32, ids (q, k) int64), best first. ``nprobe`` (IVF only) is set on the index
    and stays set; None keeps the index's current value (``index.build.load`` sets the tuned one)."""
    if nprobe is not None:
        set_nprobe(index, nprobe)
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, index.d)
    scores, ids = index.search(queries, k)
    scores[ids < 0] = -np.inf  # FAISS pads with -FLT_MAX
    return scores, ids.astype(np.int64, copy=False)


def brute_force(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product in numpy, (scores (q, k) float32, ids (q, k) int64): the reference
    the tests and the benchmark hold every index against. Ties are ordered by id (smallest first), also
    at the k-th place, so the answer is unique. Queries go in chunks to bound the score matrix."""
    queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, vectors.shape[1])
    vectors = np.asarray(vectors, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    q, n = len(queries), len(vectors)
    kk = min(k, n)
    out_scores = np.full((q, k), -np.inf, dtype=np.float32)
    out_ids = np.full((q, k), -1, dtype=np.int64)
    if kk == 0:
        return out_scores, out_ids
    step = max(1, _BRUTE_FORCE_BYTES // (4 * n))
    for lo in range(0, q, step):
        s = queries[lo : lo + step] @ vectors.T
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        kth = np.take_along_axis(s, part, axis=1).min(axis=1)
        for r in range(len(s)):
            cand = np.flatnonzero(s[r] >= kth[r])  # every row tied with the k-th, not argpartition's pick
            order = np.lexsort((ids[cand], -s[r, cand]))[:kk]
            out_scores[lo + r, :kk] = s[r, cand[order]]
            out_ids[lo + r, :kk] = ids[cand[order]]
    return out_scores, out_ids


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean over queries of the share of the exact top-k (k = ``exact_ids.shape[1]``, padding -1 not
    counted) that the approximate top-k found, in any order."""
    approx_ids, exact_ids = np.atleast_2d(approx_ids), np.atleast_2d(exact_ids)
    found = total = 0
    for a, e in zip(approx_ids, exact_ids):
        e = e[e >= 0]
        found += np.isin(e, a[a >= 0]).sum()
        total += len(e)
    return float(found / total) if total else 1.0


def topk_agree(
    ids_a: np.ndarray, scores_a: np.ndarray, ids_b: np.ndarray, scores_b: np.ndarray, tol: float = 1e-6
) -> np.ndarray:
    """Per query: the two result lists are the same up to ties. Scores agree within ``tol`` at every
    place, and the ids differ only inside a tie: where the score equals (within ``tol``) a neighbour's
    in the list (two equally near rows, listed in either order) or the k-th score (equally near rows
    competing for the last places)."""
    ids_a, ids_b = np.atleast_2d(ids_a), np.atleast_2d(ids_b)
    sa, sb = np.atleast_2d(scores_a).astype(np.float64), np.atleast_2d(scores_b).astype(np.float64)
    pad = np.isneginf(sa) & np.isneginf(sb)
    with np.errstate(invalid="ignore"):  # -inf - -inf where only one side is padding: not close, not tied
        close = pad | (np.abs(np.where(pad, 0, sa) - np.where(pad, 0, sb)) <= tol)
        sb = np.where(pad, 0, sb)
        gap_prev = np.abs(np.diff(sb, axis=1, prepend=np.inf))
        gap_next = np.abs(np.diff(sb, axis=1, append=np.inf))
        gap_last = np.abs(sb - sb[:, -1:])
        tied = (gap_prev <= tol) | (gap_next <= tol) | (gap_last <= tol)
    return np.all(close & ((ids_a == ids_b) | tied), axis=1)


def _drop_self(result_ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Each row without the query's own id (or without its last entry when absent), cut to k."""
    out = np.empty((len(result_ids), k), dtype=np.int64)
    for r, (row, own) in enumerate(zip(result_ids, self_ids)):
        hit = np.flatnonzero(row == own)
        row = np.delete(row, hit[0]) if len(hit) else row[:-1]
        out[r] = row[:k]
    return out


def tune_nprobe(
    index: faiss.Index, vectors: np.ndarray, ids: np.ndarray, target: float = 0.95, queries: int = 1000, seed: int = 0
) -> tuple[int | None, float]:
    """(smallest nprobe in 1, 2, 4, ... nlist whose recall@10 reaches ``target``, that recall).

    Queries are a seeded sample of the stored rows (``vectors``, ``ids``: everything in the index),
    measured against exact numpy search; each query's own id is dropped from both lists (search 11,
    keep 10), as a stored row trivially finds itself. When no nprobe reaches the target, the best one
    is returned and the caller should warn. A Flat index answers (None, its measured recall)."""
    n = len(vectors)
    sample = np.sort(np.random.default_rng(seed).choice(n, min(queries, n), replace=False))
    q, own = vectors[sample], np.asarray(ids)[sample]
    k = min(10, n - 1)
    if k < 1:
        return None, 1.0
    exact = _drop_self(brute_force(q, vectors, ids, k + 1)[1], own, k)
    ivf = ivf_of(index)
    if ivf is None:
        return None, recall_at_k(_drop_self(search(index, q, k + 1)[1], own, k), exact)
    best = (1, -1.0)
    nprobe = 1
    while True:
        recall = recall_at_k(_drop_self(search(index, q, k + 1, nprobe)[1], own, k), exact)
        if recall > best[1]:
            best = (nprobe, recall)
        if recall >= target or nprobe >= ivf.nlist:
            break
        nprobe = min(nprobe * 2, ivf.nlist)
    set_nprobe(index, best[0])
    return best
