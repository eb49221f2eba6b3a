"""Exact search with torch (index/torch_search.py) against numpy brute force: on the CPU here, on a
GPU where there is one (the GPU check's fallback when FAISS has no GPU code)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from index import faiss_index
from index.synthetic import clustered_vectors
from index.torch_search import exact_search
from tests.support.vectors import unit_rows


def _agree_with_brute_force(device: str) -> None:
    vectors = clustered_vectors(5000, 32, clusters=20, seed=3)  # dense clusters: near-ties at the k-th place
    queries = clustered_vectors(300, 32, clusters=20, seed=3, draw=1)
    ids = np.random.default_rng(0).permutation(5000).astype(np.int64) * 3 + 7  # ids must travel, not rows
    # chunks of 7 queries and a last one of 6: every chunk's answer must land in its own rows
    scores, found = exact_search(queries, torch.from_numpy(vectors).to(device), ids, 10, chunk_bytes=7 * 4 * 5000)
    exact_scores, exact_ids = faiss_index.brute_force(queries, vectors, ids, 10)
    assert found.dtype == np.int64 and scores.dtype == np.float32 and found.shape == (300, 10)
    assert faiss_index.topk_agree(found, scores, exact_ids, exact_scores, tol=1e-5).all()
    assert faiss_index.recall_at_k(found, exact_ids) > 0.999


def test_matches_brute_force_in_chunks_on_the_cpu():
    _agree_with_brute_force("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_matches_brute_force_on_the_gpu():
    _agree_with_brute_force("cuda")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 30), q=st.integers(1, 4), k=st.integers(1, 12))
def test_fewer_rows_than_k_pad_like_brute_force(seed, n, q, k):
    rng = np.random.default_rng(seed)
    vectors, queries = unit_rows(rng, n, 6), unit_rows(rng, q, 6)
    ids = rng.choice(10 * n, n, replace=False).astype(np.int64)
    scores, found = exact_search(queries, torch.from_numpy(vectors), ids, k)
    exact_scores, exact_ids = faiss_index.brute_force(queries, vectors, ids, k)
    assert faiss_index.topk_agree(found, scores, exact_ids, exact_scores, tol=1e-5).all()
    kk = min(k, n)
    assert (found[:, kk:] == -1).all() and np.isneginf(scores[:, kk:]).all()
