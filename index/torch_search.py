"""Exact top-k search by inner product with torch, on whatever device the vectors are on.

Where FAISS has no GPU code (the faiss-cpu wheel; aarch64, where no faiss-gpu wheel exists) a GPU
can still search exactly: a matrix product and a top-k, a chunk of queries at a time so the score
matrix stays within ``chunk_bytes``. Answers have the shapes and padding of
``index.faiss_index.brute_force``; tied scores come in whatever order ``torch.topk`` gives them
(``faiss_index.topk_agree`` compares results up to ties).
"""

from __future__ import annotations

import numpy as np
import torch

CHUNK_BYTES = 256 << 20  # score matrix per chunk of queries, as in faiss_index.brute_force


def exact_search(
    queries, vectors: torch.Tensor, ids, k: int, chunk_bytes: int = CHUNK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """(scores (q, k) float32, ids (q, k) int64) on the CPU, best first: the exact top-k rows of
    ``vectors`` (a float32 torch tensor (n, d), on the device to search on) by inner product with each
    query (array or tensor (q, d)). ``ids`` (n,) name the rows. Where fewer than k rows exist a row
    ends in id -1, score -inf. Scores are computed in full float32 (no TF32), so they match a CPU
    search to float rounding."""
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    queries = torch.as_tensor(queries, dtype=torch.float32, device=vectors.device).reshape(-1, vectors.shape[1])
    ids = torch.as_tensor(ids, dtype=torch.int64, device=vectors.device)
    q, n = len(queries), len(vectors)
    kk = min(k, n)
    out_scores = np.full((q, k), -np.inf, dtype=np.float32)
    out_ids = np.full((q, k), -1, dtype=np.int64)
    if kk == 0 or q == 0:
        return out_scores, out_ids
    step = max(1, chunk_bytes // (4 * n))
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # TF32 would round scores to ~1e-3: not exact
    try:
        for lo in range(0, q, step):
            scores, rows = torch.topk(queries[lo : lo + step] @ vectors.T, kk, dim=1)
            out_scores[lo : lo + step, :kk] = scores.cpu().numpy()
            out_ids[lo : lo + step, :kk] = ids[rows].cpu().numpy()
    finally:
        torch.set_float32_matmul_precision(precision)
    return out_scores, out_ids
