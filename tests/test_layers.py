"""The layout's one rule, checked on the source: layers import only downward, and no two modules
import each other, not even lazily inside a function.

    pipeline/  objectives/    the bottom: data in, losses (neither imports the other)
    models/                   above them
    index/                    above models: embedding, export, FAISS, query
    jobs/                     the commands, at the top
    bench/                    benchmarks, above everything; nothing imports them, tests included
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"pipeline": 0, "objectives": 0, "models": 1, "index": 2, "jobs": 3, "bench": 4}


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the layered packages, by dotted name (a package by its own name)."""
    found = {}
    for package in LAYER:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its body (functions included), resolved to the
    module itself where ``from package import module`` names one."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t.split(".")[0] in LAYER and t != name)
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of another top-level package at the same or a higher layer."""
    bad = []
    for a, targets in edges.items():
        for b in targets:
            pa, pb = a.split(".")[0], b.split(".")[0]
            if pa != pb and LAYER[pb] >= LAYER[pa]:
                bad.append(f"{a} -> {b}")
    return sorted(bad)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (Tarjan's strongly connected components
    of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_layers_import_only_downward():
    assert upward_imports(graph()) == []


def test_no_two_modules_import_each_other():
    assert cycles(graph()) == []


def test_tests_import_no_benchmark_code():
    known = modules()
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if any(t.split(".")[0] == "bench" for t in imports_of("tests", p, known))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("files", "upward", "cyclic"),
    [
        ({"index/a.py": "from jobs.b import x\n", "jobs/b.py": ""}, ["index.a -> jobs.b"], []),
        (
            {"models/a.py": "def f():\n    from models import b\n", "models/b.py": "from models.a import f\n"},
            [],
            [["models.a", "models.b"]],
        ),
        ({"pipeline/a.py": "import objectives.b\n", "objectives/b.py": ""}, ["pipeline.a -> objectives.b"], []),
        (
            {"jobs/a/__init__.py": "", "jobs/a/b.py": "from . import c\n", "jobs/a/c.py": "from .b import x\n"},
            [],
            [["jobs.a.b", "jobs.a.c"]],
        ),
        ({"jobs/a.py": "from index import b\n", "index/b.py": "import numpy\n"}, [], []),
    ],
)
def test_the_checker_sees_upward_and_circular_imports(tmp_path, files, upward, cyclic):
    """The checks above would pass on a tree the checker cannot read; these trees show it can."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    edges = graph(tmp_path)
    assert upward_imports(edges) == upward
    assert cycles(edges) == cyclic
