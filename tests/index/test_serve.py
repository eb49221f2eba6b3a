"""``python -m index.serve``: a real server process on loopback, a real HTTP client. Its hits are the
Retriever's, every class of bad upload gets its 4xx with the one-line reason and the service keeps
answering, bounds are enforced, a concurrent load is answered correctly without growing memory, and
SIGTERM stops it cleanly."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from index.retriever import Retriever
from tests.support import media

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


class Server:
    """``python -m index.serve`` in a subprocess on a free loopback port, its log in a file."""

    def __init__(self, index: Path, log: Path, *flags: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url, self.log = f"http://127.0.0.1:{port}", log
        command = [sys.executable, "-m", "index.serve", str(index), "--port", str(port), "--device", "cpu", *flags]
        self.process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError(f"the server did not start: {log.read_text()}")

    def search(self, path: Path, k: int = 5, name: str | None = None, **form) -> httpx.Response:
        with path.open("rb") as f:
            files = {"clip": (name or path.name, f, "video/mp4")}
            return httpx.post(f"{self.url}/search", files=files, data={"k": k, **form}, timeout=120)

    def rss(self) -> int:
        """Resident memory of the server and its transcode workers, bytes."""
        me = psutil.Process(self.process.pid)
        return sum(p.memory_info().rss for p in [me, *me.children(recursive=True)])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


LIMITS = ["--max-upload-mb", "1", "--max-duration-s", "4", "--workers", "2"]


@pytest.fixture(scope="module")
def server(small_index, tmp_path_factory):
    s = Server(small_index, tmp_path_factory.mktemp("serve") / "server.log", *LIMITS)
    yield s
    if s.process.poll() is None:
        s.stop()


@pytest.fixture(scope="module")
def retriever(small_index) -> Retriever:
    return Retriever(small_index, device="cpu")


@pytest.mark.parametrize("distinct", [False, True], ids=["windows", "distinct"])
def test_hits_equal_the_retrievers(server, retriever, query_clip, distinct):
    clip, key = query_clip
    answer = server.search(clip, k=6, distinct=str(distinct).lower())
    assert answer.status_code == 200, answer.text
    expected = [h.to_dict() for h in retriever.search(clip, k=6, distinct=distinct)]
    assert answer.json()["results"] == expected and expected[0]["video"] == key


def test_health_names_the_model_index_and_stores(server, retriever):
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == retriever.identity()["model"]
    assert health["stores"] == retriever.identity()["stores"] and health["count"] == retriever.count
    assert health["limits"] == {"max_upload_mb": 1.0, "max_duration_s": 4.0, "timeout_s": 120.0}


def test_search_within_equals_the_retrievers(server, retriever, query_clip, synthetic_kinetics):
    clip, _ = query_clip
    long_video = sorted((synthetic_kinetics / "train").glob("*.mp4"))[5]
    with clip.open("rb") as c, long_video.open("rb") as v:
        files = {"clip": ("clip.mp4", c), "video": ("long.mp4", v)}
        answer = httpx.post(f"{server.url}/search-within", files=files, data={"peaks": 3}, timeout=120)
    assert answer.status_code == 200, answer.text
    expected = retriever.search_within(clip, long_video, count=3)
    assert {k: answer.json()[k] for k in ("times", "scores", "peaks")} == expected


BAD_UPLOADS = {
    "empty": (media.empty, "empty"),
    "not-a-video": (media.not_a_video, "not a readable video file"),
    "audio-only": (media.audio_only, "no video stream (contains: audio)"),
    "truncated": (media.truncated, "bad.mp4"),
    "truncated-faststart": (media.truncated_faststart, "truncated"),
    "corrupt": (media.corrupt, "corrupt"),
}


@pytest.mark.parametrize("kind", BAD_UPLOADS)
def test_a_bad_upload_gets_a_4xx_with_the_reason_and_the_service_goes_on(server, query_clip, tmp_path, kind):
    make, says = BAD_UPLOADS[kind]
    bad = make(tmp_path / "bad.mp4").path
    answer = server.search(bad)
    detail = answer.json()["detail"]
    assert answer.status_code == 400 and says in detail and "\n" not in detail, (answer.status_code, detail)
    assert str(tmp_path) not in detail  # the server's paths stay private; the client's file name is kept
    assert server.search(query_clip[0]).status_code == 200


def test_bounds_refuse_with_the_bound_named(server, query_clip, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(int(1.5 * 2**20)))
    answer = server.search(big)
    assert answer.status_code == 413 and "limit on upload size" in answer.json()["detail"]
    long_clip = media.write_video(tmp_path / "long.mp4", media.pattern_frames(150, (32, 32)), fps=25)  # 6 s
    answer = server.search(long_clip)
    assert answer.status_code == 422 and "limit on video duration" in answer.json()["detail"]
    answer = server.search(query_clip[0], k=10**6)
    assert answer.status_code == 422 and "k must be between 1 and" in answer.json()["detail"]
    assert server.search(query_clip[0]).status_code == 200


def test_the_time_limit_answers_422_and_the_service_goes_on(small_index, query_clip, tmp_path):
    hurried = Server(small_index, tmp_path / "server.log", "--timeout-s", "0.05")
    try:
        answer = hurried.search(query_clip[0])
        assert answer.status_code == 422 and "limit on request time" in answer.json()["detail"]
        assert httpx.get(f"{hurried.url}/health").status_code == 200
    finally:
        assert hurried.stop() == 0


def test_concurrent_clients_all_get_the_right_answer_and_memory_returns(server, retriever, query_clip):
    clip, _ = query_clip
    expected = [h.to_dict() for h in retriever.search(clip, k=5)]
    assert server.search(clip).json()["results"] == expected  # warm: workers started, model run once
    before = server.rss()

    def client(until: float) -> list[bool]:
        answers = []
        while time.monotonic() < until:
            answer = server.search(clip)
            answers.append(answer.status_code == 200 and answer.json()["results"] == expected)
        return answers

    until = time.monotonic() + 6
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = [a for f in [pool.submit(client, until) for _ in range(6)] for a in f.result()]
    assert len(answers) >= 6 and all(answers)
    after = server.rss()
    assert after < before * 1.2 + 64 * 2**20, (before / 2**20, after / 2**20)


def test_one_log_line_per_request_and_a_clean_stop_on_sigterm(small_index, query_clip, tmp_path):
    s = Server(small_index, tmp_path / "server.log", "--workers", "1")
    s.search(query_clip[0])
    s.search(tmp_path / "server.log", name="notes.txt")  # a 400
    workers = psutil.Process(s.process.pid).children(recursive=True)
    assert s.stop() == 0
    log = s.log.read_text()
    lines = [line for line in log.splitlines() if "POST /search" in line]
    assert len(lines) == 2 and " 200 " in lines[0] and " 400 " in lines[1] and "bytes" in lines[0], log
    assert "Traceback" not in log
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    assert np.all([w.pid for w in gone])
