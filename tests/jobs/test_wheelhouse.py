"""``jobs.wheelhouse``: wheels split into parts join back byte for byte, damage to any part is named in
one line before pip runs, the image's packages are left out by the closure rule, and an offline
install from a wheelhouse works. The ``slow`` tests build real wheelhouses from PyPI."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import subprocess
import sys
import textwrap
import urllib.request
import zipfile
from itertools import accumulate
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.wheelhouse.__main__ import HelpFormatter as WheelhouseHelpFormatter
from jobs.wheelhouse.__main__ import build_parser, main
from jobs.wheelhouse.closure import resolved_packages, shipped
from jobs.wheelhouse.manifest import NAME, Manifest, read
from jobs.wheelhouse.parts import join_wheel, split_plan, split_wheel
from jobs.wheelhouse.sizes import parse_size
from jobs.wheelhouse.target import Target
from pipeline.help_format import HelpFormatter
from tests.support.paths import REPO
from tests.test_help import parsers, problems

KIB = 1024


def write_project(folder: Path, name: str, dependencies=(), extras=None, backend="setuptools") -> Path:
    """A throwaway setuptools project with one module named after it."""
    module = name.replace("-", "_")
    (folder / module).mkdir(parents=True)
    (folder / module / "__init__.py").write_text(f"NAME = {name!r}\n")
    extras_toml = "".join(f"{k} = {json.dumps(v)}\n" for k, v in (extras or {}).items())
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1"
        dependencies = {json.dumps(list(dependencies))}
        [project.optional-dependencies]
        """)
        + extras_toml
        + f'[tool.setuptools]\npackages = ["{module}"]\n[tool.setuptools.package-data]\n{module} = ["*.bin"]\n'
    )
    return folder


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def local_wheel(tmp_path_factory) -> Path:
    """A real wheel, built here from a throwaway package, padded so that it splits into many parts."""
    source = write_project(tmp_path_factory.mktemp("wh-dep"), "wh-dep")
    (source / "wh_dep" / "padding.bin").write_bytes(os.urandom(5 * KIB))  # incompressible
    out = tmp_path_factory.mktemp("wheels")
    pip("wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source))
    (wheel,) = out.glob("*.whl")
    return wheel


def make_wheelhouse(folder: Path, wheels: list[Path], part_size: int, **fields) -> Manifest:
    """What ``build`` writes after its downloads, for wheels at hand: parts and manifest, for this
    interpreter unless ``fields`` say otherwise."""
    folder.mkdir()
    here = {
        "created": "2026-12-02T00:00:00Z",
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": f"manylinux_2_17_{platform.machine()}",
        "extra": "",
        "part_size": part_size,
        "image_has": (),
        "left_out": (),
        "build_requires": (),
    }
    manifest = Manifest(**{**here, **fields}, wheels=tuple(split_wheel(w, folder, part_size) for w in wheels))
    (folder / NAME).write_text(manifest.to_json())
    return manifest


@pytest.fixture
def files(tmp_path, local_wheel) -> list[Path]:
    """The real wheel and files of awkward sizes around the 1 KiB part size."""
    found = [local_wheel]
    for size in (1, KIB - 1, KIB, KIB + 1, 3 * KIB + 512):
        path = tmp_path / f"blob_{size}-1.0-py3-none-any.whl"
        path.write_bytes(os.urandom(size))
        found.append(path)
    return found


# --- split and join -------------------------------------------------------------------------------


@given(part_size=st.integers(1, 10**9), count=st.integers(0, 40), data=st.data())
def test_the_split_plan_cuts_a_file_into_consecutive_parts_no_bigger_than_the_part_size(part_size, count, data):
    size = max(0, count * part_size - data.draw(st.integers(0, part_size)))  # near every multiple
    plan = split_plan(size, part_size)
    assert [offset for offset, _ in plan] == list(accumulate((n for _, n in plan[:-1]), initial=0))
    assert sum(n for _, n in plan) == size
    assert all(0 < n <= part_size for _, n in plan) or plan == [(0, 0)]
    assert len(plan) == max(1, -(-size // part_size))  # as few parts as the size allows


def test_parts_join_back_into_the_original_wheels_byte_for_byte(tmp_path, files):
    house = tmp_path / "house"
    make_wheelhouse(house, files, KIB)
    manifest = read(house)  # through manifest.json, as the cluster reads it
    assert len(manifest.wheels[0].parts) >= 5  # the real wheel really splits
    (tmp_path / "joined").mkdir()
    for original, wheel in zip(files, manifest.wheels):
        data = original.read_bytes()
        assert wheel.name == original.name and wheel.size == len(data)
        assert wheel.sha256 == hashlib.sha256(data).hexdigest()
        parts = [(house / p.name).read_bytes() for p in wheel.parts]
        assert all(len(p) <= KIB for p in parts) and [len(p) for p in parts] == [p.size for p in wheel.parts]
        assert [hashlib.sha256(p).hexdigest() for p in parts] == [p.sha256 for p in wheel.parts]
        join_wheel(wheel, house, tmp_path / "joined" / wheel.name)
        assert (tmp_path / "joined" / wheel.name).read_bytes() == data
    assert main(["install", str(house), "--check"]) == 0


def damage(part: Path, how: str) -> None:
    if how == "missing":
        part.unlink()
    elif how == "truncated":
        part.write_bytes(part.read_bytes()[:-1])
    elif how == "grown":
        part.write_bytes(part.read_bytes() + b"\0")
    else:  # corrupted: one byte flipped, the size unchanged
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0xFF
        part.write_bytes(bytes(data))


SAYS = {"missing": "is missing", "truncated": "is truncated: 1023 of 1024 bytes", "grown": "has 1025 bytes"}


@pytest.mark.parametrize("how", ["missing", "truncated", "corrupted", "grown"])
@pytest.mark.parametrize("command", [["--check"], ["--project", "PROJECT", "--", "--target", "TARGET"]])
def test_a_damaged_part_is_named_in_one_line_and_nothing_is_installed(tmp_path, files, capsys, how, command):
    house = tmp_path / "house"
    manifest = make_wheelhouse(house, files, KIB)
    wheel = manifest.wheels[0]
    part = wheel.parts[2]
    damage(house / part.name, how)
    project = write_project(tmp_path / "project", "wh-project", ["wh-dep"])
    argv = [str(project) if a == "PROJECT" else str(tmp_path / "t") if a == "TARGET" else a for a in command]
    assert main(["install", str(house), *argv]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert f"part {part.name} of wheel {wheel.name}" in errors[0] and SAYS.get(how, how) in errors[0]
    assert not (tmp_path / "t").exists()


def test_a_damaged_whole_wheel_is_named(tmp_path, files, capsys):
    house = tmp_path / "house"
    manifest = make_wheelhouse(house, files, KIB)
    small = next(w for w in manifest.wheels if len(w.parts) == 1 and w.size > 1)
    damage(house / small.name, "corrupted")
    assert main(["install", str(house), "--check"]) == 1
    assert f"error: wheel {small.name} is corrupted" in capsys.readouterr().err


def test_a_joined_wheel_is_checked_against_the_manifest_too(tmp_path, files, capsys):
    house = tmp_path / "house"
    make_wheelhouse(house, files, KIB)
    text = (house / NAME).read_text()
    wrong = read(house).wheels[0].sha256
    (house / NAME).write_text(text.replace(wrong, "0" * 64, 1))  # the wheel's hash, listed before its parts'
    assert main(["install", str(house), "--check"]) == 1
    assert f"error: wheel {files[0].name} joined from its parts differs" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"python": "3.99"}, "the wheelhouse is for Python 3.99"),
        ({"image_has": ("no-such-package",), "left_out": ("no-such-package==1.0",)}, "this Python has no no-such"),
    ],
)
def test_a_wheelhouse_this_python_cannot_use_is_refused_before_pip(tmp_path, files, capsys, change, message):
    house = tmp_path / "house"
    make_wheelhouse(house, files, KIB, **change)
    project = write_project(tmp_path / "project", "wh-project")
    assert main(["install", str(house), "--project", str(project), "--", "--target", str(tmp_path / "t")]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


# --- what ships -----------------------------------------------------------------------------------


def report_item(name, version, requires=(), requested=False, extras=None):
    return {
        "metadata": {"name": name, "version": version, "requires_dist": list(requires)},
        "download_info": {"url": f"https://files/{name}-{version}-py3-none-any.whl", "archive_info": {}},
        "requested": requested,
        **({"requested_extras": extras} if extras else {}),
        "is_direct": False,
    }


def test_the_image_packages_and_what_only_they_need_are_left_out():
    cu12 = "platform_system == 'Linux' and platform_machine == 'x86_64'"
    report = {
        "version": "1",
        "install": [
            report_item("speedrep", "0.2.0", ["Torch>=2.4", "fonttools", "nvidia-dali; extra == 'gpu'"], True, ["gpu"]),
            report_item("setuptools", "84.0", requested=True),  # a build requirement, asked for by name
            report_item(
                "torch",
                "2.10.0",
                ["filelock", "sympy", "setuptools; python_version >= '3.12'", f"nvidia_cublas_cu12==12.8; {cu12}"]
                + [f"triton==3.6; {cu12}", "optree>=0.13; extra == 'optree'", "nvjpeg"],
            ),
            report_item("filelock", "3.0"),
            report_item("sympy", "1.14", ["mpmath"]),
            report_item("mpmath", "1.3"),
            report_item("triton", "3.6"),
            report_item("fonttools", "4.6", ['sympy; extra == "symfont"', "faiss-gpu"]),  # [symfont] not asked for
            report_item("nvidia-cublas-cu12", "12.8"),  # torch's, and faiss-gpu's too
            report_item("faiss-gpu", "1.15", ["numpy>=1.25", "nvidia-cublas-cu12<13,>=12.6"]),
            report_item("numpy", "2.4"),
            report_item("nvidia-dali", "2.4", ["nvimgcodec[JPEG, all]"]),
            report_item("nvimgcodec", "0.9", ['nvjpeg; platform_machine == "x86_64" and extra == "all"']),
            report_item("nvjpeg", "13.0"),  # torch's, and nvimgcodec[all]'s too
            report_item("odd", "1.0"),  # needed by no edge the walk follows: shipped, to be safe
        ],
    }
    packages = resolved_packages(report)
    ship = shipped(packages, {"torch"})
    assert set(packages) - ship == {"torch", "filelock", "sympy", "mpmath", "triton"}
    assert {"nvidia-cublas-cu12", "setuptools", "nvjpeg", "odd"} <= ship
    assert shipped(packages, set()) == set(packages)
    assert "setuptools" not in shipped(packages, {"torch", "setuptools"})  # asked for, yet the image's


# --- offline install ------------------------------------------------------------------------------


def test_an_offline_install_from_a_wheelhouse_works(tmp_path, local_wheel):
    house = tmp_path / "house"
    make_wheelhouse(house, [local_wheel], KIB, extra="x")
    project = write_project(tmp_path / "project", "wh-project", extras={"x": ["wh-dep"]})
    target = tmp_path / "target"
    # --no-build-isolation: the host's setuptools builds the project (the slow test ships setuptools)
    pip_args = ["--target", str(target), "--no-build-isolation"]
    assert main(["install", str(house), "--project", str(project), "--", *pip_args]) == 0
    with zipfile.ZipFile(local_wheel) as z:
        assert (target / "wh_dep" / "padding.bin").read_bytes() == z.read("wh_dep/padding.bin")
    assert list(target.glob("wh_project-0.1.dist-info"))  # the project itself, editable, with its extra
    assert not list(house.glob(".joined-*"))  # the joined wheels are gone


# --- the target, sizes, the command ---------------------------------------------------------------


def test_a_target_accepts_wheels_of_every_older_glibc_and_its_markers_are_the_targets():
    x86 = Target.parse("3.12", "manylinux_2_28_x86_64").platform_tags()
    assert x86[:2] == ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64"]
    assert x86.index("manylinux_2_17_x86_64") < x86.index("manylinux2014_x86_64") < x86.index("manylinux1_x86_64")
    arm = Target.parse("3.12", "manylinux_2_28_aarch64")
    assert arm.platform_tags()[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]  # aarch64 began there
    assert Target.parse("3.12", "manylinux2014_x86_64").platform_tags()[0] == "manylinux_2_17_x86_64"
    assert Target.parse("3.11", "musllinux_1_2_x86_64").platform_tags() == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
    ]
    env = arm.marker_environment()
    assert (env["platform_machine"], env["python_version"], env["python_full_version"]) == ("aarch64", "3.12", "3.12.0")
    assert env["sys_platform"] == "linux" and env["platform_system"] == "Linux"
    for python, tag in [("3", "manylinux_2_28_x86_64"), ("3.12", "win_amd64"), ("3.12", "macosx_11_0_arm64")]:
        with pytest.raises(ValueError):
            Target.parse(python, tag)


def test_sizes_are_exact_in_both_unit_systems():
    assert [parse_size(t) for t in ("60MiB", "100MB", "1KiB", "1.5 GiB", "512")] == [
        60 * 2**20,
        10**8,
        1024,
        3 * 2**29,
        512,
    ]
    for bad in ("5M", "-1", "0", "MiB", "1 parsec"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_the_package_imports_only_the_standard_library_and_runs_from_a_plain_checkout():
    for path in (REPO / "jobs" / "wheelhouse").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert name.split(".")[0] in sys.stdlib_module_names or name.startswith("jobs.wheelhouse"), (path, name)
    # -S: no site-packages, so neither the installed project nor any third-party package
    done = subprocess.run(
        [sys.executable, "-S", "-m", "jobs.wheelhouse", "build", "--help"], cwd=REPO, capture_output=True
    )
    assert done.returncode == 0 and b"--part-size" in done.stdout


def test_the_help_follows_the_projects_rule_with_its_own_copy_of_the_formatter(monkeypatch):
    """``tests/test_help.py`` checks the commands' parsers by pipeline's formatter class, which this
    stdlib-only command cannot import: the copy must format exactly as it does, and pass its checks."""
    for parser in parsers(build_parser()):
        assert parser.formatter_class is WheelhouseHelpFormatter
        ours = parser.format_help()
        monkeypatch.setattr(parser, "formatter_class", HelpFormatter)
        assert parser.format_help() == ours
        assert problems(parser) == []


def test_a_failed_build_leaves_nothing_behind(tmp_path, capsys):
    project = write_project(tmp_path / "project", "wh-project", ["wh-no-such-dependency"])
    out = tmp_path / "out" / "house"
    argv = ["build", str(out), "--python", "3.12", "--project", str(project), "--extra", ""]
    assert main([*argv, "--", "--no-index"]) == 1  # pip cannot resolve offline
    assert "error: pip install --dry-run failed" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []  # neither OUT nor the hidden folder it was built in
    out.mkdir()
    assert main(argv) == 1 and "exists; pass --overwrite" in capsys.readouterr().err


# --- real builds from PyPI ------------------------------------------------------------------------


def pypi_reachable() -> bool:
    try:
        urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=10).close()
        return True
    except OSError:
        return False


needs_pypi = pytest.mark.skipif(not pypi_reachable(), reason="PyPI is unreachable")


@pytest.mark.slow
@needs_pypi
def test_a_real_build_for_another_platform_and_python(tmp_path):
    """For Python 3.12 on aarch64, from this x86_64 (or other) Python 3.11: markers see the target,
    MarkupSafe 2.1.5's only aarch64 wheels are manylinux2014 ones, and the image's jinja2 stays out."""
    dependencies = ["jinja2", "markupsafe==2.1.5", "six; python_version >= '3.12'"]
    extras = {"x": ["idna; platform_machine == 'aarch64'", "certifi; platform_machine == 'x86_64'"]}
    project = write_project(tmp_path / "project", "wh-project", dependencies, extras)
    out = tmp_path / "house"
    argv = ["build", str(out), "--python", "3.12", "--platform", "manylinux_2_28_aarch64", "--extra", "x"]
    assert main([*argv, "--image-has", "jinja2", "--part-size", "100KiB", "--project", str(project)]) == 0
    manifest = read(out)
    names = {w.name.split("-")[0].lower() for w in manifest.wheels}
    assert names == {"markupsafe", "six", "idna", "setuptools"}  # setuptools: the project's build backend
    markupsafe = next(w.name for w in manifest.wheels if w.name.lower().startswith("markupsafe"))
    assert "cp312" in markupsafe and "manylinux2014_aarch64" in markupsafe
    assert [p.split("==")[0] for p in manifest.left_out] == ["jinja2"]
    assert (manifest.python, manifest.platform, manifest.extra) == ("3.12", "manylinux_2_28_aarch64", "x")
    assert any(len(w.parts) > 1 for w in manifest.wheels)
    assert main(["install", str(out), "--check"]) == 0


@pytest.mark.slow
@needs_pypi
def test_a_real_build_installs_offline_with_an_isolated_build_of_the_project(tmp_path, monkeypatch):
    """The wheelhouse carries the project's build backend: pip builds the checkout offline, isolated.
    This machine's constraints and local wheels do not reach the resolution (both would break it)."""
    project = write_project(tmp_path / "project", "wh-project", ["six"])
    (tmp_path / "constraints.txt").write_text("six<1\n")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "six-99.0-py3-none-any.whl").write_bytes(b"not a wheel")
    monkeypatch.setenv("PIP_CONSTRAINT", str(tmp_path / "constraints.txt"))
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "links"))
    out = tmp_path / "house"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = ["build", str(out), "--python", python, "--platform", f"manylinux_2_17_{platform.machine()}"]
    assert main([*argv, "--extra", "", "--image-has", "", "--project", str(project)]) == 0
    target = tmp_path / "target"
    env = {"PIP_FIND_LINKS": str(tmp_path / "project"), "PIP_CONSTRAINT": os.devnull}  # only the wheelhouse
    done = subprocess.run(
        [sys.executable, "-m", "jobs.wheelhouse", "install", str(out), "--project", str(project)]
        + ["--", "--target", str(target)],
        cwd=REPO,
        env={**os.environ, **env},
    )
    assert done.returncode == 0
    assert (target / "six.py").exists() and list(target.glob("wh_project-0.1.dist-info"))
