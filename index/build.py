"""``python -m index.build STORE.zarr --out DIR``: a FAISS index of an embedding store's rows.

Writes two files into DIR:

- ``index.faiss``: the index (``faiss.write_index``), inner product over unit rows, the kind
  ``index.faiss_index.choose_factory`` picks for the row count and ``--memory-gb`` (or ``--factory``);
- ``index.json``: the sidecar saying what the index holds and how it was made (format
  ``speedrep-index/1``): level, dim, count, factory, the tuned nprobe and its recall@10, the model
  and window attributes copied from the store, and ``sources``.

Ids are global, so one index can span several stores (``--add`` appends one): each source is
``{"store": absolute path, "offset": int, "count": rows, "max_id": its largest FAISS id, "identity":
``index.store.identity`` of the store}`` (a query checks the store is still that one) and a row's
FAISS id is its source's offset plus its row number in the store's ``clips/*`` or ``videos/*``
arrays; a new source starts one past the largest id so far. ``locate`` maps an id back.

Both files are replaced atomically (``pipeline.atomic``), the index first and the
sidecar last: a reader never sees a sidecar describing an index that is not there yet, and ``load``
refuses a pair whose counts disagree (a crash between the two replacements).
"""

from __future__ import annotations

import argparse
import bisect
import datetime
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from index import faiss_index
from index.faiss_index import faiss
from index.store import identity, open_store, read_embeddings
from pipeline import logs
from pipeline.atomic import atomic_path, atomic_write_text
from pipeline.help_format import HelpFormatter

FORMAT = "speedrep-index/1"
INDEX_FILE = "index.faiss"
SIDECAR_FILE = "index.json"
TARGET_RECALL = 0.95
COPIED_ATTRS = ("clips", "videos", "encode")  # how the rows were made, so a query is made the same way

log = logging.getLogger(__name__)


def load(directory: str | Path) -> tuple[faiss.Index, dict]:
    """(the index, its sidecar) from DIR, with the sidecar's tuned nprobe set on the index."""
    directory = Path(directory)
    if not (directory / INDEX_FILE).is_file() or not (directory / SIDECAR_FILE).is_file():
        raise FileNotFoundError(
            f"no index at {directory} (build one with python -m index.build STORE --out {directory})"
        )
    sidecar = json.loads((directory / SIDECAR_FILE).read_text())
    if sidecar.get("format") != FORMAT:
        raise ValueError(f"{directory / SIDECAR_FILE} is not a {FORMAT} sidecar")
    index = faiss.read_index(str(directory / INDEX_FILE))
    if index.ntotal != sidecar["count"]:
        raise ValueError(
            f"{directory}: {INDEX_FILE} holds {index.ntotal} rows but {SIDECAR_FILE} says "
            f"{sidecar['count']} (a build was interrupted: build again)"
        )
    if sidecar.get("nprobe"):
        faiss_index.set_nprobe(index, sidecar["nprobe"])
    return index, sidecar


def locate(sidecar: dict, faiss_id: int) -> tuple[str, str, int]:
    """(store path, level, row number in that store's ``level`` arrays) of a FAISS id."""
    sources = sorted(sidecar["sources"], key=lambda s: s["offset"])
    i = bisect.bisect_right([s["offset"] for s in sources], int(faiss_id)) - 1
    if faiss_id < 0 or i < 0 or faiss_id > _max_id(sources[i]):
        raise KeyError(f"id {faiss_id} is in no source of this index")
    return sources[i]["store"], sidecar["level"], int(faiss_id) - sources[i]["offset"]


def check_source(sidecar: dict, path: str) -> None:
    """Raise ValueError unless the store at ``path`` is still the one this index was built from."""
    source = next(s for s in sidecar["sources"] if s["store"] == path)
    try:
        now = identity(Path(path))
    except FileNotFoundError:
        raise ValueError(
            f"the index's store {path} is gone (moved or deleted): put it back, or build the index again"
        ) from None
    if source.get("identity", now) != now:  # indexes built before identities were recorded: not checked
        raise ValueError(
            f"{path} was exported again since the index was built: its rows may differ; build the index again"
        )


def _max_id(source: dict) -> int:
    return source.get("max_id", source["offset"] + source["count"] - 1)


def _store_attrs(path: Path) -> dict:
    return dict(open_store(path, mode="r").attrs)


def _read_source(path: Path, level: str, offset: int) -> tuple[np.ndarray, np.ndarray]:
    vectors, rows = read_embeddings(path, level)
    return vectors, rows + offset


def _write_atomically(directory: Path, index: faiss.Index, sidecar: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / INDEX_FILE) as tmp:
        faiss.write_index(index, str(tmp))
    atomic_write_text(directory / SIDECAR_FILE, json.dumps(sidecar, indent=2) + "\n")


def _tune(index: faiss.Index, vectors: np.ndarray, ids: np.ndarray) -> tuple[int | None, float | None]:
    """Tuned nprobe and its recall@10 for IVF; (None, None) for Flat, which is exact."""
    if faiss_index.ivf_of(index) is None:
        return None, None
    nprobe, recall = faiss_index.tune_nprobe(index, vectors, ids, target=TARGET_RECALL)
    recall = round(recall, 4)
    if recall < TARGET_RECALL:
        log.warning(
            "recall@10 reaches only %.3f at best (nprobe %s, tried up to every list); "
            "a larger nlist or SQ8 instead of PQ would do better",
            recall,
            nprobe,
        )
    return nprobe, recall


def build_new(store: Path, out: Path, level: str, factory: str | None, memory_bytes: int, use_gpu: bool) -> dict:
    """Index one store from scratch into ``out``; returns the sidecar written."""
    attrs = _store_attrs(store)
    vectors, ids = _read_source(store, level, 0)
    if len(ids) == 0:
        raise ValueError(f"{store} has no {level} rows to index")
    n, dim = vectors.shape
    factory = factory or faiss_index.choose_factory(n, dim, memory_bytes)
    start = time.perf_counter()
    index = faiss_index.build(vectors, ids, factory, use_gpu)
    seconds = time.perf_counter() - start
    nprobe, recall = _tune(index, vectors, ids)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    sidecar = {
        "format": FORMAT,
        "level": level,
        "dim": dim,
        "count": int(index.ntotal),
        "factory": factory,
        "metric": "inner_product",
        "normalised": True,
        "nprobe": nprobe,
        "recall_at_10": recall,
        "build_seconds": round(seconds, 3),
        "gpu": faiss_index.uses_gpu(factory, use_gpu),
        "faiss": faiss.__version__,
        "model": attrs.get("model"),
        **{k: attrs[k] for k in COPIED_ATTRS if k in attrs},
        "sources": [
            {
                "store": str(store.resolve()),
                "offset": 0,
                "count": n,
                "max_id": int(ids.max()),
                "identity": identity(store),
            }
        ],
        "created": now,
    }
    _write_atomically(out, index, sidecar)
    return sidecar


def add_store(store: Path, out: Path, level: str, factory: str | None) -> dict:
    """Append ``store`` to the index in ``out`` under fresh global ids; returns the sidecar written.
    An IVF index keeps its trained lists (the new rows go to their nearest ones) and nprobe is tuned
    again on the rows of every source, which are read back for it. ``build_seconds`` and ``gpu`` stay
    the first build's; ``add_seconds`` is this append's (on CPU)."""
    index, sidecar = load(out)
    attrs = _store_attrs(store)
    path = str(store.resolve())
    if level != sidecar["level"]:
        raise ValueError(f"{out} indexes {sidecar['level']}, not {level}")
    if attrs.get("dim") != sidecar["dim"]:
        raise ValueError(f"{store} has dim {attrs.get('dim')}, the index in {out} has {sidecar['dim']}")
    fingerprint = (attrs.get("model") or {}).get("fingerprint")
    if fingerprint != (sidecar.get("model") or {}).get("fingerprint"):
        raise ValueError(
            f"{store} was embedded by another model (fingerprint {fingerprint}) than the index "
            f"in {out} ({(sidecar.get('model') or {}).get('fingerprint')})"
        )
    if factory and factory != sidecar["factory"]:
        raise ValueError(f"--factory {factory} differs from the index's {sidecar['factory']}")
    if any(s["store"] == path for s in sidecar["sources"]):
        raise ValueError(f"{path} is already in the index in {out}")
    for key in COPIED_ATTRS:
        if key in attrs and key in sidecar and attrs[key] != sidecar[key]:
            log.warning("%s has other %s settings than the index: %s vs %s", store, key, attrs[key], sidecar[key])
    offset = max(_max_id(s) for s in sidecar["sources"]) + 1
    vectors, ids = _read_source(store, level, offset)
    if len(ids) == 0:
        raise ValueError(f"{store} has no {level} rows to index")
    start = time.perf_counter()
    index.add_with_ids(vectors, ids)
    seconds = time.perf_counter() - start
    sources = [
        *sidecar["sources"],
        {
            "store": path,
            "offset": offset,
            "count": len(ids),
            "max_id": int(ids.max()),
            "identity": identity(Path(path)),
        },
    ]
    if faiss_index.ivf_of(index) is not None:
        parts = [(vectors, ids)] + [_read_source(Path(s["store"]), level, s["offset"]) for s in sidecar["sources"]]
        everything = np.concatenate([v for v, _ in parts]), np.concatenate([i for _, i in parts])
        del parts
        sidecar["nprobe"], sidecar["recall_at_10"] = _tune(index, *everything)
        del everything
    sidecar.update(
        count=int(index.ntotal),
        add_seconds=round(seconds, 3),
        sources=sources,
        faiss=faiss.__version__,
        updated=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    _write_atomically(out, index, sidecar)
    return sidecar


def main(argv: list[str] | None = None) -> int:
    logs.configure()
    p = argparse.ArgumentParser(
        prog="python -m index.build", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("store", type=Path, help="the embedding store (NAME.zarr, from python -m index.export)")
    p.add_argument("--out", type=Path, required=True, help="folder for index.faiss and index.json")
    p.add_argument(
        "--level", choices=("clips", "videos"), default="clips", help="index the sliding windows or the videos"
    )
    p.add_argument(
        "--factory",
        help="a FAISS factory string (Flat, IVF4096,SQ8, ...); default: chosen from the row count and --memory-gb",
    )
    p.add_argument("--memory-gb", type=float, default=8.0, help="memory the index may take (default 8)")
    p.add_argument(
        "--gpu",
        choices=("auto", "yes", "no"),
        default="auto",
        help="train and fill IVF indexes on GPU (auto: when FAISS sees one)",
    )
    p.add_argument("--add", action="store_true", help="append STORE to the index already in --out")
    args = p.parse_args(argv)
    if args.gpu == "yes" and faiss_index.gpu_count() == 0:
        log.error("--gpu yes but FAISS sees no GPU (the faiss-cpu wheel has no GPU code)")
        return 2
    use_gpu = args.gpu != "no" and faiss_index.gpu_count() > 0
    try:
        if args.add:
            sidecar = add_store(args.store, args.out, args.level, args.factory)
        else:
            sidecar = build_new(args.store, args.out, args.level, args.factory, int(args.memory_gb * 2**30), use_gpu)
    except (ValueError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    tuned = (
        f"nprobe {sidecar['nprobe']}, recall@10 {sidecar['recall_at_10']:.3f}"
        if sidecar["nprobe"] is not None
        else "exact"
    )
    print(
        f"{args.out / INDEX_FILE}: {sidecar['count']} {sidecar['level']} rows of dim {sidecar['dim']} from "
        f"{len(sidecar['sources'])} store(s), {sidecar['factory']} ({tuned}), "
        f"{'added' if args.add else 'built'} in {sidecar['add_seconds' if args.add else 'build_seconds']:.1f} s on "
        f"{'GPU' if sidecar['gpu'] and not args.add else 'CPU'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
