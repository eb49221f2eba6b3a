"""``python -m jobs.wheelhouse build OUT --python 3.12 --extra gpu`` | ``install DIR [--check]``:
the project's wheels for an air-gapped cluster, and their offline install there. Arguments after
``--`` go to pip."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.wheelhouse.build import BuildRequest, build
from jobs.wheelhouse.closure import canonical
from jobs.wheelhouse.install import check, install
from jobs.wheelhouse.manifest import WheelhouseError
from jobs.wheelhouse.sizes import parse_size
from jobs.wheelhouse.target import Target, parse_platform, parse_python


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``pipeline.help_format.HelpFormatter``, copied because this command imports only the standard
    library: "(default: X)" after each option's help unless the help states it, or the option is a flag
    or defaults to None (whose meaning the help says in words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.nargs == 0 or action.default is None:
            return text
        if action.default == []:
            return f"{text} (default: none)"
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not the whole usage block
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _checked(parse):
    """An argparse type from a parser that raises ValueError: its message becomes the usage error."""

    def check(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    check.__name__ = parse.__name__  # argparse names the type in some errors
    return check


def _names(text: str) -> frozenset[str]:
    return frozenset(canonical(n.strip()) for n in text.split(",") if n.strip())


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m jobs.wheelhouse", description=__doc__, formatter_class=HelpFormatter)
    commands = p.add_subparsers(dest="command", required=True, metavar="{build,install}")

    b = commands.add_parser(
        "build",
        help="on a connected machine: resolve, download and split the wheels a cluster needs",
        description="Resolve the project with an extra for the cluster's Python and platform, download the\n"
        "wheels its image lacks and the project's build requirements, split files bigger than\n"
        "--part-size and write OUT/manifest.json. OUT appears complete or not at all.\n\n"
        "  python -m jobs.wheelhouse build /data/wheelhouse --python 3.12 --extra gpu\n"
        "  python -m jobs.wheelhouse build OUT --python 3.12 -- --index-url https://mirror/simple",
        formatter_class=HelpFormatter,
    )
    b.add_argument("out", type=Path, help="the wheelhouse folder to write; must not exist (see --overwrite)")
    b.add_argument(
        "--python",
        type=_checked(parse_python),
        required=True,
        help="the cluster's CPython version, such as 3.12 (or 3.12.7)",
    )
    b.add_argument(
        "--platform",
        type=_checked(parse_platform),
        default="manylinux_2_28_x86_64",
        help="the cluster's wheel platform tag; wheels for an older glibc (manylinux2014 ...) count too",
    )
    b.add_argument("--extra", default="gpu", help="the project's extra to resolve (pyproject's optional-dependencies)")
    b.add_argument(
        "--image-has",
        type=_names,
        default="torch",
        help="comma-separated packages the cluster image provides; they and what only they need are left out "
        "('' leaves out nothing)",
    )
    b.add_argument(
        "--part-size",
        type=_checked(parse_size),
        default="60MiB",
        help="largest file written: 100MB = 10^8, 1MiB = 2^20",
    )
    b.add_argument("--project", type=Path, default=Path("."), help="the project's checkout")
    b.add_argument("--overwrite", action="store_true", help="replace OUT if it exists, once the new one is complete")

    i = commands.add_parser(
        "install",
        help="on the cluster: verify a wheelhouse and install the project from it, offline",
        description="Check every part and joined wheel of DIR against its manifest, then run\n"
        "pip install --no-index --find-links <joined wheels> -e 'PROJECT[EXTRA]'. A missing, cut or\n"
        "damaged part stops it, in one line, before pip runs.\n\n"
        "  python -m jobs.wheelhouse install /data/wheelhouse --check    # verify only\n"
        "  python -m jobs.wheelhouse install /data/wheelhouse -- --dry-run",
        formatter_class=HelpFormatter,
    )
    i.add_argument("dir", type=Path, help="the wheelhouse folder (holds manifest.json)")
    i.add_argument("--extra", help="the project's extra to install (default: the one the wheelhouse was built for)")
    i.add_argument("--project", type=Path, default=Path("."), help="the project's checkout, installed editable")
    i.add_argument("--tmp", type=Path, help="where the joined wheels stay while pip runs (default: inside DIR)")
    i.add_argument("--check", action="store_true", help="only verify the parts and wheels; install nothing")
    return p


def split_pip_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """The command's own arguments, and pip's: those after the first ``--``."""
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    own, pip_args = split_pip_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(own)
    try:
        if args.command == "build":
            build(
                BuildRequest(
                    out=args.out,
                    project=args.project,
                    target=Target(args.python, args.platform),
                    extra=args.extra,
                    image_has=args.image_has,
                    part_size=args.part_size,
                    pip_args=tuple(pip_args),
                    overwrite=args.overwrite,
                )
            )
        elif args.check:
            check(args.dir)
        else:
            install(args.dir, args.project, args.extra, args.tmp, pip_args)
    except (WheelhouseError, OSError) as e:  # OSError: a folder that cannot be written, a full disk
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted{f': {args.out} was not written' if args.command == 'build' else ''}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
