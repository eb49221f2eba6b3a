"""The FAISS index (index/faiss_index.py): exact search against numpy brute force, the factory rule,
and IVF recall after tuning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import faiss_index
from index.synthetic import clustered_vectors
from tests.support.vectors import unit_rows

# --- exact search -----------------------------------------------------------------------------------


def test_flat_equals_brute_force_with_arbitrary_ids():
    rng = np.random.default_rng(0)
    vectors, queries = unit_rows(rng, 3000, 48), unit_rows(rng, 64, 48)
    ids = rng.permutation(3000).astype(np.int64) * 7 + 1000  # not row positions: ids must travel
    index = faiss_index.build(vectors, ids, "Flat", use_gpu=False)
    scores, found = faiss_index.search(index, queries, 10)
    exact_scores, exact_ids = faiss_index.brute_force(queries, vectors, ids, 10)
    np.testing.assert_array_equal(found, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert found.dtype == np.int64 and scores.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 60),
    d=st.integers(1, 12),
    q=st.integers(1, 5),
    k=st.integers(1, 15),
    duplicates=st.booleans(),
)
def test_flat_matches_brute_force_up_to_ties(seed, n, d, q, k, duplicates):
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng, n, d)
    if duplicates:  # exact ties: equally near rows that either search may list in either order
        vectors[rng.integers(0, n, n // 2)] = vectors[0]
    ids = rng.choice(10 * n + 10, n, replace=False).astype(np.int64)
    queries = unit_rows(rng, q, d)
    scores, found = faiss_index.search(faiss_index.build(vectors, ids, "Flat", use_gpu=False), queries, k)
    exact_scores, exact_ids = faiss_index.brute_force(queries, vectors, ids, k)
    assert faiss_index.topk_agree(found, scores, exact_ids, exact_scores, tol=1e-5).all()
    kk = min(k, n)
    assert (exact_ids[:, kk:] == -1).all() and np.isneginf(exact_scores[:, kk:]).all()
    assert (found[:, kk:] == -1).all() and np.isneginf(scores[:, kk:]).all()
    for row_scores, row_ids in zip(exact_scores[:, :kk], exact_ids[:, :kk]):
        assert len(set(row_ids)) == kk
        assert np.all(np.diff(row_scores) <= 0)
        tied = np.diff(row_scores) == 0
        assert np.all(np.diff(row_ids)[tied] > 0)  # brute force breaks ties by id


def test_brute_force_keeps_the_smallest_ids_among_ties_at_the_kth_place():
    vectors = np.array([[1, 0], [0, 1], [0, 1], [0, 1], [-1, 0]], dtype=np.float32)
    ids = np.array([5, 40, 30, 20, 1])
    scores, found = faiss_index.brute_force(np.array([[0, 1]], dtype=np.float32), vectors, ids, 2)
    assert found.tolist() == [[20, 30]] and scores.tolist() == [[1, 1]]


def test_recall_at_k_and_topk_agree():
    assert faiss_index.recall_at_k(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])) == pytest.approx(
        2 / 6
    )
    assert faiss_index.recall_at_k(np.array([[1, -1]]), np.array([[1, -1]])) == 1.0  # padding not counted
    s = np.array([[0.9, 0.5, 0.5]])
    assert faiss_index.topk_agree(np.array([[1, 2, 3]]), s, np.array([[1, 3, 2]]), s).all()  # swapped tie
    assert not faiss_index.topk_agree(
        np.array([[2, 1, 3]]), np.array([[0.9, 0.8, 0.5]]), np.array([[1, 2, 3]]), np.array([[0.9, 0.8, 0.5]])
    ).all()


# --- which index ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 10**10), dim=st.integers(1, 4096), memory=st.integers(0, 10**13), exact_limit=st.integers(0, 10**6)
)
def test_choose_factory_rule(n, dim, memory, exact_limit):
    try:
        factory = faiss_index.choose_factory(n, dim, memory, exact_limit)
    except ValueError:
        assert n > memory  # not even one byte a row fits
        return
    small_and_fits = n <= exact_limit and n * dim * 4 <= memory
    assert (factory == "Flat") == small_and_fits
    if factory == "Flat":
        return
    coarse, codes = factory.split(",")
    nlist = int(coarse.removeprefix("IVF"))
    assert nlist & (nlist - 1) == 0 and 1 <= nlist <= 65536
    assert nlist * 39 <= n or nlist == 1
    assert nlist >= 16 or nlist * 2 * 39 > n
    if codes == "SQ8":
        assert n * dim <= memory
    else:
        m = int(codes.removeprefix("PQ"))
        assert dim % m == 0 and n * m <= memory < n * dim
        assert not any(dim % bigger == 0 and n * bigger <= memory for bigger in faiss_index.PQ_CHOICES if bigger > m)


def test_choose_factory_examples():
    gb = 2**30
    assert faiss_index.choose_factory(100_000, 512, 8 * gb) == "Flat"
    assert faiss_index.choose_factory(1_000_000, 1024, 8 * gb) == "IVF4096,SQ8"  # past the exact limit
    assert faiss_index.choose_factory(100_000, 1024, 100 * 2**20) == "IVF1024,SQ8"  # Flat would not fit
    assert faiss_index.choose_factory(10**8, 1024, 8 * gb) == "IVF32768,PQ64"
    assert faiss_index.choose_factory(10**8, 1000, 4 * gb) == "IVF32768,PQ8"  # 64, 48, 32, 16 do not divide 1000
    assert faiss_index.choose_factory(100, 64, 10**9, exact_limit=0) == "IVF2,SQ8"


# --- approximate search -----------------------------------------------------------------------------


def test_ivf_reaches_the_recall_target_after_tuning():
    vectors = clustered_vectors(20_000, 64, clusters=200, seed=1)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 11
    factory = faiss_index.choose_factory(len(vectors), 64, 10**9, exact_limit=0)
    assert factory == "IVF512,SQ8"
    index = faiss_index.build(vectors, ids, factory, use_gpu=False)
    assert index.ntotal == len(vectors)
    nprobe, recall = faiss_index.tune_nprobe(index, vectors, ids, queries=400)
    assert recall >= 0.95 and 1 <= nprobe <= 512
    assert faiss_index.ivf_of(index).nprobe == nprobe  # left set for the searches that follow
    queries = clustered_vectors(200, 64, clusters=200, seed=1, draw=1)
    _, found = faiss_index.search(index, queries, 10)
    assert np.isin(found, ids).all()
    assert faiss_index.recall_at_k(found, faiss_index.brute_force(queries, vectors, ids, 10)[1]) >= 0.9


def test_gpu_clones_use_float16_lookup_tables_for_pq_and_one_gpu():
    # IVF-PQ64 with float32 lookup tables needs more shared memory than a GPU block has
    assert faiss_index.gpu_cloner_settings("IVF4096,PQ64") == {"useFloat16": True, "shard": False}
    assert faiss_index.gpu_cloner_settings("IVF4096,SQ8") == {"useFloat16": False, "shard": False}


@pytest.mark.gpu
def test_ivf_pq64_builds_on_the_gpu_and_matches_the_cpu_build():
    if faiss_index.gpu_count() == 0:
        pytest.skip("FAISS sees no GPU (faiss-gpu is not installed, or no device)")
    vectors = clustered_vectors(20_000, 128, clusters=64, seed=0)
    ids = np.arange(len(vectors), dtype=np.int64)
    on_gpu = faiss_index.build(vectors, ids, "IVF64,PQ64", use_gpu=True)
    on_cpu = faiss_index.build(vectors, ids, "IVF64,PQ64", use_gpu=False)
    queries = vectors[:200]
    _, found_gpu = faiss_index.search(on_gpu, queries, 10, nprobe=8)
    _, found_cpu = faiss_index.search(on_cpu, queries, 10, nprobe=8)
    assert on_gpu.ntotal == len(vectors)
    # different k-means runs on the same data: the two agree on most of each top 10
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found_gpu, found_cpu)])
    assert overlap > 0.6
