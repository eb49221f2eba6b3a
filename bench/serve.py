"""``python -m bench.serve``: the query service's throughput and latency against one CLI process per query.

A small clip index is built once into ``--work`` (synthetic Kinetics sharded at short side 64, the
tiny RSPNet trained for 2 steps, exported and indexed; about a minute on CPU) and reused. Then, for
each transcode pool (``--pools``: worker processes, threads), ``python -m index.serve`` is started
on a free loopback port and 1, 4 and 16 clients (``--clients``) each send ``/search`` requests
(``k`` 10, clips cut from the collection's videos, in turn) back to back for ``--seconds``; every
answer must be 200 with results. Reported per row: queries/s, p50 and p95 latency, and the server's
resident memory (with its workers) after. The baseline is ``python -m index.query CLIP --json`` run
``--cli-runs`` times one after another (model, index and store loaded each time). Last line:
``qps=<x> p95_ms=<y> cli_ratio=<z>``: queries/s and p95 latency of the first pool at the most
clients, and its queries/s at 1 client over the CLI's queries/s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import av
import httpx
import numpy as np
import psutil

from index.build import main as build_main
from index.export import ExportSettings, export
from jobs.pretrain import checkpoint
from jobs.pretrain.config import load
from jobs.pretrain.loop import train
from jobs.shard.__main__ import main as shard_main
from pipeline.help_format import HelpFormatter
from pipeline.shards import resolve_shards
from pipeline.synthetic import SyntheticConfig, make_kinetics_dataset

TINY = {  # the tiny RSPNet made tinier, as the tests train it
    "data.batch_size": 4,
    "data.num_threads": 1,
    "optim.warmup_steps": 0,
    "optim.max_steps": 2,
    "model.backbone_options": "{ width = 4 }",
    "data.plan_options": "{ T = 8, speeds = [1, 2] }",
    "data.augment": '{ recipe = "rspnet", base = 40, out = 32 }',
    "model.options": "{ queue_size = 32, dim = 16, momentum = 0.9, bn_groups = 2 }",
}


def small_index(work: Path) -> tuple[Path, Path]:
    """(the index folder, the synthetic videos folder), built under ``work`` unless already there."""
    videos, shards, index = work / "videos", work / "shards", work / "index"
    if (index / "index.json").is_file():
        return index, videos / "train"
    if not (videos / "train").is_dir():
        make_kinetics_dataset(
            videos, SyntheticConfig(videos_per_class={"train": 4, "val": 0, "test": 0}, duration_s=2.6)
        )
    flags = ["--splits", "train", "--short-side", "64", "--videos-per-shard", "8", "--no-progress"]
    if shard_main(["kinetics", "--root", str(videos), "--out", str(shards), *flags]) != 0:
        raise RuntimeError("sharding the synthetic videos failed")
    sets = {"data.shards": f'"{shards / "train"}"', **TINY}
    train(load("tiny_rspnet", [f"{k}={v}" for k, v in sets.items()]), work / "run", progress=False)
    settings = ExportSettings(T=8, stride=4, size=32, video_clips=3, videos_per_unit=8, chunk_rows=64)
    store = work / "train.zarr"
    export(checkpoint.path_for(work / "run", 2), resolve_shards(shards / "train"), store, settings, progress=False)
    if build_main([str(store), "--out", str(index)]) != 0:
        raise RuntimeError("building the index failed")
    return index, videos / "train"


def query_clips(videos: Path, out: Path, count: int = 8) -> list[Path]:
    """Frames 8-40 of ``count`` collection videos, each re-encoded as a user's H.264 file."""
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, source in enumerate(sorted(videos.glob("*.mp4"))[:count]):
        clip = out / f"clip{i}.mp4"
        if not clip.is_file():
            with av.open(str(source)) as c:
                frames = [f.to_ndarray(format="rgb24") for n, f in enumerate(c.decode(video=0)) if 8 <= n < 40]
            with av.open(str(clip), "w") as c:
                s = c.add_stream("libx264", rate=25)
                s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
                for f in frames:
                    c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
                c.mux(s.encode())
        clips.append(clip)
    return clips


def start_server(index: Path, pool: str, workers: int, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "index.serve", str(index), "--port", str(port), "--pool", pool]
    process = subprocess.Popen([*command, "--workers", str(workers)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/health", timeout=2)
            return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start in 2 minutes")


def load_test(url: str, clips: list[Path], clients: int, seconds: float) -> tuple[float, list[float]]:
    """(queries/s, latencies in s) of ``clients`` clients sending clips back to back for ``seconds``."""
    payloads = [(c.name, c.read_bytes()) for c in clips]

    def client(offset: int, until: float) -> list[float]:
        latencies = []
        with httpx.Client(timeout=300) as http:
            i = offset
            while time.monotonic() < until:
                name, data = payloads[i % len(payloads)]
                start = time.perf_counter()
                answer = http.post(f"{url}/search", files={"clip": (name, data)}, data={"k": 10})
                if answer.status_code != 200 or not answer.json()["results"]:
                    raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
                latencies.append(time.perf_counter() - start)
                i += 1
        return latencies

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, i, start + seconds) for i in range(clients)]
        latencies = [t for f in futures for t in f.result()]
    return len(latencies) / (time.monotonic() - start), latencies


def cli_seconds(index: Path, clips: list[Path], runs: int) -> list[float]:
    """Wall time of ``python -m index.query`` per query, one process after another."""
    times = []
    for i in range(runs):
        command = [sys.executable, "-m", "index.query", str(clips[i % len(clips)]), "--index", str(index), "--json"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def rss(pid: int) -> float:
    me = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]) / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.serve", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--work", type=Path, default=Path("bench-out/serve"), help="working folder (default %(default)s)")
    p.add_argument("--clients", default="1,4,16", help="concurrent clients, comma-separated (default %(default)s)")
    p.add_argument("--pools", default="process,thread", help="transcode pools to compare (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="the server's transcode workers (default %(default)s)")
    p.add_argument("--seconds", type=float, default=8.0, help="each load test's length (default %(default)s)")
    p.add_argument("--cli-runs", type=int, default=3, help="CLI processes timed (default %(default)s)")
    args = p.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    pools = args.pools.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    index, videos = small_index(args.work)
    clips = query_clips(videos, args.work / "clips")

    cli = cli_seconds(index, clips, args.cli_runs)
    cli_qps = 1 / float(np.mean(cli))
    print(f"{'pool':<8} {'clients':>7} {'qps':>7} {'p50_ms':>8} {'p95_ms':>8} {'rss_mb':>7}")
    print(f"{'cli':<8} {1:>7} {cli_qps:7.2f} {np.median(cli) * 1000:8.0f} {np.percentile(cli, 95) * 1000:8.0f}")
    rows = {}
    for pool in pools:
        process, url = start_server(index, pool, args.workers, args.work / f"server-{pool}.log")
        try:
            load_test(url, clips, 1, 1.0)  # warm: workers spawned, model run once
            for c in clients:
                qps, latencies = load_test(url, clips, c, args.seconds)
                p50, p95 = np.percentile(latencies, 50) * 1000, np.percentile(latencies, 95) * 1000
                rows[pool, c] = (qps, p95)
                print(f"{pool:<8} {c:>7} {qps:7.2f} {p50:8.0f} {p95:8.0f} {rss(process.pid):7.0f}", flush=True)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    qps, p95 = rows[pools[0], clients[-1]]
    print(f"qps={qps:.2f} p95_ms={p95:.0f} cli_ratio={rows[pools[0], clients[0]][0] / cli_qps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
