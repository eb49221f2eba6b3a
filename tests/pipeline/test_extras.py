"""A machine without its extra's packages: the product imports, the CPU path runs, and a command that
needs DALI or FAISS ends in one line naming the extra. Each case runs in a fresh interpreter whose
import system cannot see the package, as on a machine where it is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pipeline.extras import INSTALL
from tests.support.paths import REPO

HIDE = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r} or name.startswith("nvidia.dali") and "nvidia.dali" in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Hide())
"""


def run_without(hidden: set[str], code: str) -> subprocess.CompletedProcess:
    script = HIDE.format(hidden=sorted(hidden)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)


def test_a_command_without_faiss_says_which_extra_in_one_line(tmp_path):
    run = run_without(
        {"faiss"},
        f"""
        import runpy
        sys.argv = ["index.build", {str(tmp_path / "store.zarr")!r}, "--out", {str(tmp_path / "index")!r}]
        runpy.run_module("index.build", run_name="__main__")
        """,
    )
    assert run.returncode != 0
    assert run.stderr == f"error: FAISS is not installed (faiss): {INSTALL}\n"
    assert not (tmp_path / "index").exists()


def test_without_dali_the_cpu_path_loads_and_the_dali_path_names_the_extra(synthetic_splits):
    run = run_without(
        {"nvidia.dali"},
        f"""
        from pipeline.extras import MissingExtra
        from pipeline.loader import VideoLoader
        split = {str(synthetic_splits / "train")!r}
        batch = next(iter(VideoLoader(split, plan="speednet", batch_size=2, decoder="pyav", samples=[0, 1])))
        print(tuple(batch.video.shape))
        try:
            VideoLoader(split, plan="speednet", decoder="dali")
        except MissingExtra as error:
            print(error)
        """,
    )
    assert run.returncode == 0, run.stderr
    shape, message = run.stdout.strip().splitlines()
    assert shape.startswith("(4, 3, ")
    assert message == f"DALI (GPU decoding, or decoder='dali') is not installed (nvidia.dali): {INSTALL}"
