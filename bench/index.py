"""``python -m bench.index``: search throughput and recall of the FAISS indexes, against numpy brute force.

The data are synthetic unit vectors shaped like embeddings: a mixture of ~1000 Gaussian clusters of
uneven sizes, each a random centre plus a low-rank (16 directions) spread and a little isotropic
noise, normalised; the queries are fresh draws from the same mixture (not stored rows). For every
size, one run measures side by side:

- the baseline: exact top-10 by inner product in numpy (``index.faiss_index.brute_force``, a BLAS
  matrix product in chunks of queries, then a partial sort);
- ``Flat`` (what ``index.build`` picks for small collections): build time, queries/s, and whether its
  ids are the baseline's for every query (differences allowed only inside score ties within 1e-6);
- the IVF index ``choose_factory`` picks once the collection is past the exact limit (forced here with
  ``exact_limit=0``: ``IVF{nlist},SQ8``): build time, the nprobe ``tune_nprobe`` picks for recall@10
  >= 0.95 on stored rows, then queries/s and recall@10 against the baseline on the fresh queries;
- where FAISS sees a GPU, the same two indexes searched on it (and the IVF one built there).

Queries are searched as one batch of ``--queries``; every thread of the machine is used (numpy's BLAS
and FAISS's OpenMP alike). Ratios are queries/s over the baseline's. Last line:
``exact_match=<true|false> recall_at_10=<x> qps_ratio=<y>``: Flat's agreement at every size, and the
IVF index's recall and queries/s ratio (CPU) at the largest size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import faiss
import numpy as np

from index import faiss_index
from index.synthetic import clustered_vectors


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _gpu_flat(vectors: np.ndarray) -> faiss.Index:
    """An exact inner-product index on all GPUs (ids are row numbers, as in this benchmark)."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return faiss.index_cpu_to_all_gpus(flat)


def measure(n: int, dim: int, q: int, seed: int, train_per_list: int) -> list[dict]:
    """Rows of the table for one collection size."""
    (vectors, gen_s) = _timed(clustered_vectors, n, dim, seed=seed)
    ids = np.arange(n, dtype=np.int64)
    queries = clustered_vectors(q, dim, seed=seed, draw=1)
    print(f"n={n}: generated in {gen_s:.1f} s", file=sys.stderr, flush=True)
    rows = []

    (exact_scores, exact_ids), bf_s = _timed(faiss_index.brute_force, queries, vectors, ids, 10)
    rows.append(
        dict(
            n=n,
            method="numpy brute force",
            device="cpu",
            build_s=0.0,
            qps=q / bf_s,
            recall=1.0,
            nprobe=None,
            exact=True,
        )
    )
    base_qps = q / bf_s

    flat, build_s = _timed(faiss_index.build, vectors, ids, "Flat", False)
    (scores, found), search_s = _timed(faiss_index.search, flat, queries, 10)
    exact = bool(faiss_index.topk_agree(found, scores, exact_ids, exact_scores).all())
    rows.append(
        dict(
            n=n,
            method="Flat",
            device="cpu",
            build_s=build_s,
            qps=q / search_s,
            recall=faiss_index.recall_at_k(found, exact_ids),
            nprobe=None,
            exact=exact,
        )
    )
    del flat
    print(f"n={n}: brute force and Flat done", file=sys.stderr, flush=True)

    factory = faiss_index.choose_factory(n, dim, memory_bytes=n * dim * 4, exact_limit=0)
    ivf, build_s = _timed(faiss_index.build, vectors, ids, factory, False, train_per_list=train_per_list, seed=seed)
    (nprobe, tuned), tune_s = _timed(faiss_index.tune_nprobe, ivf, vectors, ids, seed=seed)
    (scores, found), search_s = _timed(faiss_index.search, ivf, queries, 10, nprobe)
    rows.append(
        dict(
            n=n,
            method=factory,
            device="cpu",
            build_s=build_s,
            qps=q / search_s,
            recall=faiss_index.recall_at_k(found, exact_ids),
            nprobe=nprobe,
            exact=False,
            tune_s=tune_s,
            tuned=tuned,
        )
    )
    print(
        f"n={n}: {factory} done (tuning took {tune_s:.1f} s, recall@10 on stored rows {tuned:.4f})",
        file=sys.stderr,
        flush=True,
    )

    if faiss_index.gpu_count() > 0:
        gpu_flat, build_s = _timed(_gpu_flat, vectors)
        faiss_index.search(gpu_flat, queries[:10], 10)  # first call pays for kernel set-up
        (scores, found), search_s = _timed(faiss_index.search, gpu_flat, queries, 10)
        exact = bool(faiss_index.topk_agree(found, scores, exact_ids, exact_scores, tol=1e-5).all())
        rows.append(
            dict(
                n=n,
                method="Flat",
                device="gpu",
                build_s=build_s,
                qps=q / search_s,
                recall=faiss_index.recall_at_k(found, exact_ids),
                nprobe=None,
                exact=exact,
            )
        )
        del gpu_flat
        ivf_gpu, build_s = _timed(
            faiss_index.build, vectors, ids, factory, True, train_per_list=train_per_list, seed=seed
        )
        on_gpu = faiss.index_cpu_to_all_gpus(ivf_gpu)
        faiss_index.search(on_gpu, queries[:10], 10, nprobe)
        (scores, found), search_s = _timed(faiss_index.search, on_gpu, queries, 10, nprobe)
        rows.append(
            dict(
                n=n,
                method=factory,
                device="gpu",
                build_s=build_s,
                qps=q / search_s,
                recall=faiss_index.recall_at_k(found, exact_ids),
                nprobe=nprobe,
                exact=False,
            )
        )
        del ivf_gpu, on_gpu
    for row in rows:
        row["ratio"] = row["qps"] / base_qps
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.index", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="collection sizes, comma-separated")
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument(
        "--train-per-list",
        type=int,
        default=39,
        help="IVF training rows a list, 39..256 (index.build uses 256; 39 keeps 1M x 1024 on 2 CPU cores to minutes)",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) < 1000:
        print("error: sizes must be at least 1000 rows each", file=sys.stderr)
        return 2
    rows = []
    for n in sizes:
        rows.extend(measure(n, args.dim, args.queries, args.seed, args.train_per_list))
    print(
        f"dim {args.dim}, {args.queries} queries (fresh draws, one batch), top-10 by inner product, "
        f"{os.cpu_count()} CPU cores, {faiss_index.gpu_count()} GPUs, faiss {faiss.__version__}; "
        f"IVF trained on {args.train_per_list} rows a list"
    )
    head = ("rows", "index", "device", "build s", "queries/s", "vs numpy", "recall@10", "nprobe", "exact")
    fmt = "{:>9}{:>22}{:>8}{:>10}{:>11}{:>10}{:>11}{:>8}{:>7}"
    print(fmt.format(*head))
    for r in rows:
        print(
            fmt.format(
                r["n"],
                r["method"],
                r["device"],
                f"{r['build_s']:.1f}",
                f"{r['qps']:.0f}",
                f"{r['ratio']:.2f}",
                f"{r['recall']:.4f}",
                r["nprobe"] or "-",
                {"numpy brute force": "ref", "Flat": "yes" if r["exact"] else "no"}.get(r["method"], "-"),
            )
        )
    exact_match = all(r["exact"] for r in rows if r["method"] == "Flat")
    last = [r for r in rows if r["n"] == sizes[-1] and r["method"].startswith("IVF") and r["device"] == "cpu"][0]
    print(f"exact_match={str(exact_match).lower()} recall_at_10={last['recall']:.4f} qps_ratio={last['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
