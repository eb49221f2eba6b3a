"""``python -m index.serve INDEX``: the index as an HTTP query service (FastAPI on uvicorn).

    POST /search          multipart: ``clip`` (a video file), ``k`` (default 10), ``distinct``
    POST /search-within   multipart: ``clip`` and ``video`` (the long video), ``peaks`` (default 5)
    GET  /health          the model, index and store identities, and the limits

``/search`` answers what ``python -m index.query --json`` prints (``results``: the hits' rows).
Statuses: 400 for an upload that is not a usable video (the CLI's one-line reason in ``detail``),
413 for an upload over ``--max-upload-mb``, 422 for a video over ``--max-duration-s``, a request
over ``--timeout-s`` or a bad form field. Every answer is one log line: method, path, status, time,
bytes received.

Concurrency: the index, stores and model are opened once (``index.retriever.Retriever``). Each
upload's transcode (the costly CPU half) runs in a pool of ``--workers`` (processes by default:
the transcode holds the GIL for much of its time, so threads serialise; ``--pool thread`` is there
to compare), so no request waits on another's transcode; model passes take turns on one thread, each
query's windows in one batch. A request past its time limit is answered at once; its work finishes
in the background and its files are removed then.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import multiprocessing
import shutil
import signal
import sys
import tempfile
import time
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

# Only light imports at the top: spawned transcode workers import this module (as __mp_main__),
# and need none of torch, DALI or FAISS; the retriever and uvicorn are imported where used.
from index.prepare import QueryError, TooLong, prepare_video
from pipeline import logs
from pipeline.help_format import HelpFormatter

if TYPE_CHECKING:
    from index.retriever import Retriever

log = logging.getLogger("index.serve")


@dataclass(frozen=True)
class Limits:
    """What one request may ask for."""

    max_upload_mb: float = 64.0  # per request, all files together
    max_duration_s: float = 600.0  # per video, declared and decoded
    timeout_s: float = 120.0  # per request, upload received to answer sent

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


class Refused(Exception):
    """An answer other than 200: its status and one line."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def create_app(retriever: Retriever, limits: Limits = Limits(), workers: int = 2, pool: str = "process"):
    """The FastAPI app serving ``retriever`` under ``limits``, transcoding in a pool of ``workers``."""
    state: dict = {}

    @asynccontextmanager
    async def lifespan(app):
        if pool == "process":
            state["pool"] = _process_pool(workers)
        else:
            state["pool"] = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="transcode")
        state["model"] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        yield
        state["pool"].shutdown(wait=True, cancel_futures=True)
        state["model"].shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="speedrep index", lifespan=lifespan)

    @app.middleware("http")
    async def one_line_per_request(request: Request, call_next):
        start = time.perf_counter()
        size = int(request.headers.get("content-length") or 0)
        if size > limits.max_upload_bytes:  # refused before the body is read
            response = _refusal(Refused(413, _too_big(size, limits)))
        else:
            response = await call_next(request)
        log.info(
            "%s %s %d %.0f ms %d bytes",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - start) * 1000,
            size,
        )
        return response

    @app.exception_handler(Refused)
    async def refused(request, error: Refused):
        return _refusal(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())[1:]) or "request"
        return _refusal(Refused(422, f"{where}: {first.get('msg', 'invalid')}"))

    async def run(fn, *args, executor: str):
        return await asyncio.get_running_loop().run_in_executor(state[executor], fn, *args)

    async def prepared(upload: UploadFile, work: Path) -> list[Path]:
        """The upload saved under ``work`` and transcoded in the pool; 400 with the reason if unusable."""
        work.mkdir(parents=True, exist_ok=True)
        path = work / "upload.video"
        with path.open("wb") as f:
            await asyncio.to_thread(shutil.copyfileobj, upload.file, f)
        try:
            return await run(
                prepare_video, path, retriever.settings, work, None, limits.max_duration_s, executor="pool"
            )
        except TooLong as e:
            raise Refused(422, str(e)) from None
        except QueryError as e:
            raise Refused(400, str(e).replace(str(path), upload.filename or "the upload")) from None
        except concurrent.futures.process.BrokenProcessPool:
            # a decoder crashed its worker (and the pool with it): a new pool for the next requests
            if pool == "process" and state["pool"]._broken:
                state["pool"] = _process_pool(workers)
            raise Refused(400, f"{upload.filename}: the video crashed its decoder") from None
        except Exception as e:  # noqa: BLE001 - whatever an upload does to a decoder, it is the upload's fault
            log.exception("transcode of %s failed", upload.filename)
            raise Refused(400, f"{upload.filename}: not a readable video ({type(e).__name__})") from None

    async def bounded(uploads: list[UploadFile], body):
        """``body(work)`` under the time limit, in a fresh folder removed once its work is done."""
        size = sum(u.size or 0 for u in uploads)
        if size > limits.max_upload_bytes:  # chunked uploads have no content-length
            raise Refused(413, _too_big(size, limits))
        work = Path(tempfile.mkdtemp(prefix="speedrep-serve-"))
        task = asyncio.ensure_future(body(work))
        task.add_done_callback(lambda _: shutil.rmtree(work, ignore_errors=True))
        try:
            return await asyncio.wait_for(asyncio.shield(task), limits.timeout_s)
        except TimeoutError:
            raise Refused(
                422, f"the request took longer than the {limits.timeout_s:g} s limit on request time"
            ) from None

    @app.get("/health")
    async def health():
        return {"status": "ok", **retriever.identity(), "limits": asdict(limits)}

    @app.post("/search")
    async def search(
        clip: Annotated[UploadFile, File()],
        k: Annotated[int, Form()] = 10,
        distinct: Annotated[bool, Form()] = False,
    ):
        if not 1 <= k <= retriever.count:
            raise Refused(422, f"k must be between 1 and {retriever.count} (the vectors in the index), got {k}")

        async def body(work: Path):
            tars = await prepared(clip, work)
            hits = await run(_search, retriever, tars, k, distinct, executor="model")
            return {"query": clip.filename, "level": retriever.sidecar["level"], "results": hits}

        return await bounded([clip], body)

    @app.post("/search-within")
    async def search_within(
        clip: Annotated[UploadFile, File()],
        video: Annotated[UploadFile, File()],
        peaks: Annotated[int, Form()] = 5,
    ):
        if retriever.sidecar["level"] != "clips":
            raise Refused(422, "within-video search needs a clip index (built with --level clips)")
        if peaks < 1:
            raise Refused(422, f"peaks must be at least 1, got {peaks}")

        async def body(work: Path):
            # both transcodes at once, in two workers
            query, long_video = await asyncio.gather(prepared(clip, work / "clip"), prepared(video, work / "video"))
            curve = await run(_within, retriever, query, long_video, peaks, executor="model")
            return {"query": clip.filename, "video": video.filename, **curve}

        return await bounded([clip, video], body)

    return app


def _process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    # spawn, not fork: a forked child of a process running torch's thread pools can deadlock
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _search(retriever: Retriever, tars: list[Path], k: int, distinct: bool) -> list[dict]:
    try:
        vector, _ = retriever.query_vector(tars)
    except QueryError as e:
        raise Refused(400, str(e)) from None
    return [h.to_dict() for h in retriever.hits(vector, k, distinct)]


def _within(retriever: Retriever, query: list[Path], long_video: list[Path], peaks: int) -> dict:
    try:
        vector, _ = retriever.query_vector(query)
        return retriever.within(vector, long_video, peaks)
    except QueryError as e:
        raise Refused(400, str(e)) from None


def _too_big(size: int, limits: Limits) -> str:
    return f"the upload is {size / 2**20:.1f} MB, over the {limits.max_upload_mb:g} MB limit on upload size"


def _refusal(error: Refused) -> JSONResponse:
    return JSONResponse({"detail": error.detail}, status_code=error.status)


def _stopped(signum, frame) -> None:
    log.info("stopped (%s)", signal.Signals(signum).name)
    sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m index.serve", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    d = Limits()
    p.add_argument("index", type=Path, help="index folder from index.build")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="transcodes at once (default %(default)s)")
    p.add_argument(
        "--pool",
        choices=("process", "thread"),
        default="process",
        help="run transcodes in worker processes or threads (default %(default)s)",
    )
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest upload (default %(default)s)")
    p.add_argument(
        "--max-duration-s", type=float, default=d.max_duration_s, help="longest video, seconds (default %(default)s)"
    )
    p.add_argument(
        "--timeout-s", type=float, default=d.timeout_s, help="longest a request may take, s (default %(default)s)"
    )
    from pipeline.device import add_device_option, apply_device_option, torch_device

    add_device_option(p)
    args = p.parse_args(argv)
    apply_device_option(args)
    logs.configure()
    if args.workers < 1 or min(args.max_upload_mb, args.max_duration_s, args.timeout_s) <= 0:
        log.error("--workers, --max-upload-mb, --max-duration-s and --timeout-s must be positive")
        return 2
    from index.retriever import Retriever

    try:
        retriever = Retriever(args.index, device=torch_device())
    except QueryError as e:
        log.error("%s", e)
        return 2
    import uvicorn

    limits = Limits(args.max_upload_mb, args.max_duration_s, args.timeout_s)
    app = create_app(retriever, limits, args.workers, args.pool)
    log.info(
        "serving %s (%d %s) on http://%s:%d",
        args.index,
        retriever.count,
        retriever.sidecar["level"],
        args.host,
        args.port,
    )
    # uvicorn stops gracefully on SIGTERM/SIGINT (requests in flight finish, the pools shut down),
    # then raises the signal again to the handler it found: this one, so the exit status is 0
    signal.signal(signal.SIGTERM, _stopped)
    # uvicorn's own access log is off: the middleware writes the one line per request
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
