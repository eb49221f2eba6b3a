"""Every command's ``--help`` says what each argument does and shows each option's default.

The commands are found, not listed: every module of the packages that builds an argparse parser
(calls ``ArgumentParser(...)`` or subclasses it), which must have a ``main(argv)``. Each ``main``
runs until it parses its arguments, where the parser is caught and checked (``pipeline.help_format``
states the rule), its subcommands' parsers too. A new command cannot slip through.
"""

from __future__ import annotations

import argparse
import ast
import importlib

import pytest

from tests.test_layers import modules

PACKAGES = ("pipeline", "objectives", "models", "index", "jobs")  # bench/ is not a product command
KNOWN = {  # commands the README documents: the scan must find at least these
    "pipeline.synthetic.__main__",
    "pipeline.preview",
    "jobs.shard.__main__",
    "jobs.pretrain.__main__",
    "jobs.finetune.__main__",
    "jobs.evaluate.__main__",
    "jobs.evaluate.linear_probe",
    "jobs.speed.speediness",
    "jobs.speed.speedup",
    "jobs.speed.cam",
    "index.export",
    "index.build",
    "index.query",
}


def builds_a_parser(path) -> bool:
    """Whether the module calls ``ArgumentParser(...)`` or subclasses it."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            named = [node.func]
        elif isinstance(node, ast.ClassDef):
            named = node.bases
        else:
            continue
        if any(getattr(n, "attr", getattr(n, "id", None)) == "ArgumentParser" for n in named):
            return True
    return False


def commands() -> list[str]:
    return sorted(name for name, path in modules().items() if name.split(".")[0] in PACKAGES and builds_a_parser(path))


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def parser_of(module_name: str, monkeypatch) -> argparse.ArgumentParser:
    """The parser ``module.main`` builds, caught as it starts parsing (nothing else of main runs)."""
    module = importlib.import_module(module_name)
    assert callable(getattr(module, "main", None)), f"{module_name} builds a parser but has no main(argv)"

    def catch(self, args=None, namespace=None):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", catch)
    with pytest.raises(_Parsed) as caught:
        module.main([])
    return caught.value.parser


def parsers(parser: argparse.ArgumentParser):
    """``parser`` and its subcommands' parsers, recursively."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def problems(parser: argparse.ArgumentParser) -> list[str]:
    """What ``--help`` leaves unsaid: an argument without help, an option whose default it does not show."""
    found = []
    parser.format_help()  # a broken %(default)s fails here
    formatter = parser._get_formatter()  # the parser's own: pipeline.help_format.HelpFormatter, or a copy
    required = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not (action.help or "").strip():
            found.append(f"{parser.prog} {name}: no help")
            continue
        takes_a_value = action.nargs != 0 and (action.option_strings or action.nargs in ("?", "*"))
        if takes_a_value and not action.required and action not in required:
            shown = formatter._get_help_string(action)
            if "default" not in shown.lower():
                found.append(f"{parser.prog} {name}: no default shown ({action.default!r}): {shown!r}")
    return found


def test_the_scan_finds_every_command():
    assert KNOWN <= set(commands())


@pytest.mark.parametrize("module_name", commands())
def test_every_argument_says_what_it_does_and_every_option_its_default(module_name, monkeypatch):
    found = [p for parser in parsers(parser_of(module_name, monkeypatch)) for p in problems(parser)]
    assert not found, "\n".join(found)
