"""The FAISS index: exact search against numpy brute force, the factory rule, IVF recall, and the build CLI."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index import faiss_index as fi
from index.build import TARGET_RECALL, load, locate, main
from index.store import CLIP_COLUMNS, Layout, create, finish, identity, read_embeddings, write_unit
from index.synthetic import clustered_vectors


def unit_rows(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- exact search -----------------------------------------------------------------------------------

def test_flat_equals_brute_force_with_arbitrary_ids():
    rng = np.random.default_rng(0)
    vectors, queries = unit_rows(rng, 3000, 48), unit_rows(rng, 64, 48)
    ids = rng.permutation(3000).astype(np.int64) * 7 + 1000  # not row positions: ids must travel
    index = fi.build(vectors, ids, "Flat", use_gpu=False)
    scores, found = fi.search(index, queries, 10)
    exact_scores, exact_ids = fi.brute_force(queries, vectors, ids, 10)
    np.testing.assert_array_equal(found, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert found.dtype == np.int64 and scores.dtype == np.float32


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), d=st.integers(1, 12), q=st.integers(1, 5),
       k=st.integers(1, 15), duplicates=st.booleans())
def test_flat_matches_brute_force_up_to_ties(seed, n, d, q, k, duplicates):
    rng = np.random.default_rng(seed)
    vectors = unit_rows(rng, n, d)
    if duplicates:  # exact ties: equally near rows that either search may list in either order
        vectors[rng.integers(0, n, n // 2)] = vectors[0]
    ids = rng.choice(10 * n + 10, n, replace=False).astype(np.int64)
    queries = unit_rows(rng, q, d)
    scores, found = fi.search(fi.build(vectors, ids, "Flat", use_gpu=False), queries, k)
    exact_scores, exact_ids = fi.brute_force(queries, vectors, ids, k)
    assert fi.topk_agree(found, scores, exact_ids, exact_scores, tol=1e-5).all()
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
    scores, found = fi.brute_force(np.array([[0, 1]], dtype=np.float32), vectors, ids, 2)
    assert found.tolist() == [[20, 30]] and scores.tolist() == [[1, 1]]


def test_recall_at_k_and_topk_agree():
    assert fi.recall_at_k(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])) == pytest.approx(2 / 6)
    assert fi.recall_at_k(np.array([[1, -1]]), np.array([[1, -1]])) == 1.0  # padding not counted
    s = np.array([[0.9, 0.5, 0.5]])
    assert fi.topk_agree(np.array([[1, 2, 3]]), s, np.array([[1, 3, 2]]), s).all()  # swapped tie
    assert not fi.topk_agree(np.array([[2, 1, 3]]), np.array([[0.9, 0.8, 0.5]]),
                             np.array([[1, 2, 3]]), np.array([[0.9, 0.8, 0.5]])).all()


# --- which index ------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(n=st.integers(0, 10**10), dim=st.integers(1, 4096), memory=st.integers(0, 10**13),
       exact_limit=st.integers(0, 10**6))
def test_choose_factory_rule(n, dim, memory, exact_limit):
    try:
        factory = fi.choose_factory(n, dim, memory, exact_limit)
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
        assert not any(dim % bigger == 0 and n * bigger <= memory for bigger in fi.PQ_CHOICES if bigger > m)


def test_choose_factory_examples():
    gb = 2**30
    assert fi.choose_factory(100_000, 512, 8 * gb) == "Flat"
    assert fi.choose_factory(1_000_000, 1024, 8 * gb) == "IVF4096,SQ8"  # past the exact limit
    assert fi.choose_factory(100_000, 1024, 100 * 2**20) == "IVF1024,SQ8"  # Flat would not fit
    assert fi.choose_factory(10**8, 1024, 8 * gb) == "IVF32768,PQ64"
    assert fi.choose_factory(10**8, 1000, 4 * gb) == "IVF32768,PQ8"  # 64, 48, 32, 16 do not divide 1000
    assert fi.choose_factory(100, 64, 10**9, exact_limit=0) == "IVF2,SQ8"


# --- approximate search -----------------------------------------------------------------------------

def test_ivf_reaches_the_recall_target_after_tuning():
    vectors = clustered_vectors(20_000, 64, clusters=200, seed=1)
    ids = np.arange(len(vectors), dtype=np.int64) * 3 + 11
    factory = fi.choose_factory(len(vectors), 64, 10**9, exact_limit=0)
    assert factory == "IVF512,SQ8"
    index = fi.build(vectors, ids, factory, use_gpu=False)
    assert index.ntotal == len(vectors)
    nprobe, recall = fi.tune_nprobe(index, vectors, ids, queries=400)
    assert recall >= 0.95 and 1 <= nprobe <= 512
    assert fi.ivf_of(index).nprobe == nprobe  # left set for the searches that follow
    queries = clustered_vectors(200, 64, clusters=200, seed=1, draw=1)
    _, found = fi.search(index, queries, 10)
    assert np.isin(found, ids).all()
    assert fi.recall_at_k(found, fi.brute_force(queries, vectors, ids, 10)[1]) >= 0.9


# --- the build CLI on real stores -------------------------------------------------------------------

def make_store(path: Path, windows: tuple[int, ...], dim: int = 16, seed: int = 0, fingerprint: str = "abc",
               complete: bool = True) -> Path:
    """A store as jobs.export writes it: random unit embeddings for every window and video."""
    rng = np.random.default_rng(seed)
    layout = Layout(windows=windows, videos_per_unit=2, chunk_rows=8)
    attrs = {"model": {"fingerprint": fingerprint, "method": "rspnet"},
             "clips": {"T": 16, "stride": 8, "rate": 1}, "videos": {"T": 16, "clips": 10}}
    root = create(path, layout, dim, attrs)
    for unit in range(layout.units if complete else layout.units - 1):
        videos = list(layout.videos_of(unit))
        n = sum(windows[v] for v in videos)
        clips = {"embedding": unit_rows(rng, n, dim).astype(np.float16),
                 **{name: np.zeros(n, dtype=dtype) for name, dtype in CLIP_COLUMNS.items()}}
        clips["video"] = np.concatenate([np.full(windows[v], v) for v in videos]).astype(np.int32)
        write_unit(root, unit, clips, {
            "embedding": unit_rows(rng, len(videos), dim).astype(np.float16),
            "key": np.array([f"v{v}" for v in videos]), "label": np.array(["x"] * len(videos)),
            "fps": np.full(len(videos), 25.0, np.float32), "frames": np.full(len(videos), 100, np.int32)})
    finish(root)
    return path


def test_build_add_load_locate(tmp_path, capsys):
    first = make_store(tmp_path / "a.zarr", (3, 2, 4), seed=0)
    second = make_store(tmp_path / "b.zarr", (5, 1), seed=1)
    out = tmp_path / "index"
    assert main([str(first), "--out", str(out)]) == 0
    index, sidecar = load(out)
    vectors, rows = read_embeddings(first, "clips")
    assert index.ntotal == sidecar["count"] == len(rows) == 9
    assert sidecar["format"] == "speedrep-index/1" and sidecar["factory"] == "Flat"
    assert sidecar["metric"] == "inner_product" and sidecar["normalized"] is True
    assert sidecar["recall_at_10"] is None and sidecar["model"]["fingerprint"] == "abc"
    assert sidecar["clips"]["stride"] == 8 and sidecar["dim"] == 16 and sidecar["level"] == "clips"
    assert sidecar["sources"] == [{"store": str(first.resolve()), "offset": 0, "count": 9, "max_id": int(rows.max()),
                                   "identity": identity(first)}]
    assert not list(out.glob(".*.tmp"))

    assert main([str(second), "--out", str(out), "--add"]) == 0
    index, sidecar = load(out)
    more, more_rows = read_embeddings(second, "clips")
    assert index.ntotal == sidecar["count"] == 9 + len(more_rows)
    offset = sidecar["sources"][1]["offset"]
    assert offset == rows.max() + 1
    _, found = fi.search(index, np.concatenate([vectors, more]), 1)
    assert locate(sidecar, found[0, 0]) == (str(first.resolve()), "clips", int(rows[0]))
    for i, row in enumerate(more_rows):
        assert found[9 + i, 0] == offset + row
        assert locate(sidecar, found[9 + i, 0]) == (str(second.resolve()), "clips", int(row))
    with pytest.raises(KeyError):
        locate(sidecar, offset + int(more_rows.max()) + 1)
    assert "2 store(s)" in capsys.readouterr().out


def vector_store(path: Path, vectors: np.ndarray, fingerprint: str = "abc") -> Path:
    """A complete store whose clip rows are exactly ``vectors`` (one video, no padding rows), so row i
    is FAISS id i of the store's source."""
    n, dim = vectors.shape
    layout = Layout(windows=(n,), videos_per_unit=1, chunk_rows=n)
    attrs = {"model": {"fingerprint": fingerprint}, "clips": {"T": 16, "stride": 8, "rate": 1}}
    root = create(path, layout, dim, attrs)
    clips = {"embedding": vectors.astype(np.float16), **{c: np.zeros(n, dtype=t) for c, t in CLIP_COLUMNS.items()}}
    write_unit(root, 0, clips, {"embedding": vectors[:1].astype(np.float16), "key": np.array(["v0"]),
                                "label": np.array([""]), "fps": np.array([25.0], np.float32),
                                "frames": np.array([n], np.int32)})
    assert finish(root)
    return path


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """The rows an index of the store holds: float16 in the store, unit again when read."""
    held = vectors.astype(np.float16).astype(np.float32)
    return held / np.linalg.norm(held, axis=1, keepdims=True)


def exact_top(queries: np.ndarray, vectors: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Ids of the k largest inner products, best first: plain numpy, the reference for every recall here."""
    scores = queries @ vectors.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
    return ids[np.take_along_axis(part, order, axis=1)]


def share_found(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


def stored_row_recall(index, vectors: np.ndarray, ids: np.ndarray, nprobes: list[int]) -> list[float]:
    """Recall@10 at each of ``nprobes`` with stored rows as queries (every third), each query's own id
    dropped from both lists: what the sidecar's recall_at_10 measures, on another sample."""
    queries, own = vectors[::3], ids[::3]
    drop = lambda rows: [[i for i in row if i != o][:10] for row, o in zip(rows, own)]  # noqa: E731
    exact = drop(exact_top(queries, vectors, ids, 11))
    recalls = []
    for nprobe in nprobes:
        faiss.extract_index_ivf(index).nprobe = nprobe
        recalls.append(share_found(drop(index.search(queries, 11)[1]), exact))
    return recalls


def assert_tuned(index, sidecar: dict, vectors: np.ndarray, ids: np.ndarray) -> None:
    """The sidecar's nprobe is the smallest power of two whose recall@10 over ``vectors`` (every row
    the index holds) reaches the target, and its recall_at_10 is that recall."""
    nprobe = sidecar["nprobe"]
    assert nprobe > 1  # this data needs several lists: an untuned nprobe of 1 does not reach the target
    at, half = stored_row_recall(index, vectors, ids, [nprobe, nprobe // 2])
    assert at >= TARGET_RECALL and sidecar["recall_at_10"] == pytest.approx(at, abs=0.02)
    assert half < TARGET_RECALL  # and it is the smallest that does
    faiss.extract_index_ivf(index).nprobe = nprobe


def test_ivf_build_and_add_tune_over_every_source(tmp_path):
    dim = 32
    first_rows = clustered_vectors(3000, dim, clusters=30, seed=1)
    # another mixture: its neighbours straddle lists trained on the first, so it needs a larger nprobe
    second_rows = clustered_vectors(2000, dim, clusters=30, seed=2)
    first = vector_store(tmp_path / "a.zarr", first_rows)
    second = vector_store(tmp_path / "b.zarr", second_rows)
    out = tmp_path / "index"
    assert main([str(first), "--out", str(out), "--factory", "IVF64,Flat"]) == 0
    index, sidecar = load(out)
    assert sidecar["factory"] == "IVF64,Flat" and fi.ivf_of(index).nprobe == sidecar["nprobe"]
    held, ids = as_stored(first_rows), np.arange(3000)
    assert_tuned(index, sidecar, held, ids)
    # held-out queries (never indexed, never tuned on), at the nprobe load() set
    queries = clustered_vectors(400, dim, clusters=30, seed=1, draw=1)
    assert share_found(index.search(queries, 10)[1], exact_top(queries, held, ids, 10)) >= TARGET_RECALL

    assert main([str(second), "--out", str(out), "--add"]) == 0
    index, sidecar = load(out)
    assert index.ntotal == 3000 + 2000 and fi.ivf_of(index).nprobe == sidecar["nprobe"]
    assert [s["offset"] for s in sidecar["sources"]] == [0, 3000]
    held, ids = np.concatenate([held, as_stored(second_rows)]), np.arange(5000)
    assert_tuned(index, sidecar, held, ids)
    queries = np.concatenate([queries, clustered_vectors(400, dim, clusters=30, seed=2, draw=1)])
    assert share_found(index.search(queries, 10)[1], exact_top(queries, held, ids, 10)) >= TARGET_RECALL


def test_videos_level(tmp_path):
    store = make_store(tmp_path / "a.zarr", (3, 2, 4))
    assert main([str(store), "--out", str(tmp_path / "i"), "--level", "videos"]) == 0
    index, sidecar = load(tmp_path / "i")
    assert index.ntotal == 3 and sidecar["level"] == "videos"
    assert locate(sidecar, 2) == (str(store.resolve()), "videos", 2)


def test_refusals(tmp_path, capsys):
    out = tmp_path / "index"
    incomplete = make_store(tmp_path / "part.zarr", (3, 2, 4), complete=False)
    assert main([str(incomplete), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "incomplete" in err and err.count("\n") == 1
    assert main([str(tmp_path / "missing.zarr"), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err

    store = make_store(tmp_path / "a.zarr", (3, 2))
    assert main([str(store), "--out", str(out), "--add"]) == 2  # nothing to add to
    assert f"no index at {out}" in capsys.readouterr().err
    assert main([str(store), "--out", str(out), "--factory", "Bogus"]) == 2
    assert "FAISS cannot make an index of factory 'Bogus'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="python -m index.build STORE --out"):
        load(tmp_path / "nowhere")

    assert main([str(store), "--out", str(out)]) == 0
    assert main([str(store), "--out", str(out), "--add"]) == 2
    assert "already in the index" in capsys.readouterr().err
    other_model = make_store(tmp_path / "m.zarr", (3, 2), fingerprint="zzz")
    assert main([str(other_model), "--out", str(out), "--add"]) == 2
    assert "another model" in capsys.readouterr().err
    other_dim = make_store(tmp_path / "d.zarr", (3, 2), dim=8)
    assert main([str(other_dim), "--out", str(out), "--add"]) == 2
    assert "dim 8" in capsys.readouterr().err
    assert main([str(other_dim), "--out", str(out), "--add", "--level", "videos"]) == 2
    assert "indexes clips" in capsys.readouterr().err

    sidecar = json.loads((out / "index.json").read_text())
    (out / "index.json").write_text(json.dumps({**sidecar, "count": 99}))
    with pytest.raises(ValueError, match="interrupted"):
        load(out)


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "--add" in capsys.readouterr().out
