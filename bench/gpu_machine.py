"""The GPU machine as ``bench.gpu_check`` sees it: whether torch has a CUDA device and, if not, why;
what the GPU and the software are; how busy its video decoder is (nvidia-smi, sampled in a thread).
"""

from __future__ import annotations

import importlib
import os
import platform
import re
import shutil
import socket
import subprocess
import threading
import warnings

import torch

UTILISATION_QUERY = ("--query-gpu=uuid,utilization.decoder,utilization.gpu", "--format=csv,noheader,nounits")


def nvidia_smi(*args: str) -> tuple[int, str]:
    """(exit status, output) of ``nvidia-smi args``; (127, why) where it is absent or does not answer."""
    if shutil.which("nvidia-smi") is None:
        return 127, "nvidia-smi is absent"
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, f"nvidia-smi failed: {error}"
    return done.returncode, (done.stdout + done.stderr).strip()


def no_cuda_reason() -> str | None:
    """None when torch sees a CUDA device; else why not, in one line: torch's build, its warning,
    CUDA_VISIBLE_DEVICES where set, and what nvidia-smi says."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch.cuda.is_available():
            return None
    why = []
    if torch.version.cuda is None:
        why.append(f"torch {torch.__version__} is built without CUDA")
    why += [str(w.message).strip().splitlines()[0] for w in caught if "CUDA" in str(w.message)][:1]
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        why.append(f"CUDA_VISIBLE_DEVICES is {os.environ['CUDA_VISIBLE_DEVICES']!r}")
    code, out = nvidia_smi("--query-gpu=name,driver_version", "--format=csv,noheader")
    if code == 127:
        why.append(out)
    elif code != 0:
        why.append(f"nvidia-smi says: {out.splitlines()[0] if out else f'exit status {code}'}")
    else:
        gpus = out.splitlines()
        why.append(f"nvidia-smi lists {len(gpus)} GPU(s) ({gpus[0]}) that torch (CUDA {torch.version.cuda}) cannot use")
    return "no CUDA device: " + "; ".join(why)


def version_of(module: str) -> str | None:
    """The module's version; None when it is not installed; why, when importing it fails."""
    try:
        return str(getattr(importlib.import_module(module), "__version__", "unknown"))
    except ModuleNotFoundError:
        return None
    except Exception as error:  # a broken install (a CUDA library that does not load) is news, not a crash
        return f"import fails: {type(error).__name__}: {str(error)[:200]}"


def environment() -> dict:
    """The GPU torch uses and the software under test."""
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    code, driver = nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    return {
        "host": socket.gethostname(),
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "capability": f"{props.major}.{props.minor}",
        "gpu_uuid": str(getattr(props, "uuid", "")) or None,
        "gpus_visible": torch.cuda.device_count(),
        "driver": driver.splitlines()[0] if code == 0 and driver else None,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "dali": version_of("nvidia.dali"),
        "faiss": version_of("faiss"),
    }


def utilisation_rows(csv_text: str) -> list[tuple[str, float | None, float | None]]:
    """(uuid, decoder %, GPU %) per line of nvidia-smi's answer to ``UTILISATION_QUERY``; None where
    it gives no number ([N/A], [Not Supported])."""

    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    rows = []
    for line in csv_text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) == 3:
            rows.append((fields[0], number(fields[1]), number(fields[2])))
    return rows


def same_gpu(a: str, b: str) -> bool:
    """Whether two UUIDs name one GPU: torch writes ``6a3e...``, nvidia-smi ``GPU-6a3e...``."""

    def digits(uuid: str) -> str:
        return re.sub("[^0-9a-f]", "", uuid.lower().removeprefix("gpu-"))

    return bool(digits(a)) and digits(a) == digits(b)


class UtilisationSampler:
    """The video decoder's and the GPU's utilisation (%) of the GPU named ``uuid`` (or the only one),
    read with nvidia-smi every ``interval`` seconds by a background thread while the block runs.
    ``problem`` says why there are no samples (no nvidia-smi, no such GPU, no figure given)."""

    def __init__(self, uuid: str | None, interval: float = 0.5):
        self.uuid, self.interval = uuid, interval
        self.decoder: list[float] = []
        self.gpu: list[float] = []
        self.problem: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> UtilisationSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            code, out = nvidia_smi(*UTILISATION_QUERY)
            if code != 0:
                self.problem = out.splitlines()[0] if out else f"nvidia-smi exit status {code}"
                return
            rows = utilisation_rows(out)
            mine = [r for r in rows if self.uuid and same_gpu(r[0], self.uuid)] or (rows if len(rows) == 1 else [])
            if not mine:
                self.problem = f"torch's GPU {self.uuid} is not among nvidia-smi's {[r[0] for r in rows]}"
                return
            _, decoder, gpu = mine[0]
            if decoder is None:
                self.problem = "nvidia-smi gives no decoder utilisation for this GPU"
            else:
                self.decoder.append(decoder)
            if gpu is not None:
                self.gpu.append(gpu)
            if self._stop.wait(self.interval):
                return
