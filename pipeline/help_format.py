"""``HelpFormatter``: every command's ``--help`` says what each option does and what it is by default.

    argparse.ArgumentParser(prog=..., description=..., formatter_class=HelpFormatter)

``tests/test_help.py`` holds every command's parser to it: a help string on every argument, and a
default on every option that takes a value and is not required, shown by the formatter or stated in
the help ("default: the config's", "default RUN/probe-<data>") where None means something to explain.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """argparse's "(default: X)" after each option's help, and the description as written (its
    example commands keep their lines). Nothing is appended where the help already states its
    default, after a flag (it is off unless given), or for a default of None, whose meaning the help
    must say in words: "(default: None)" would tell nobody anything. A repeatable option's empty list
    shows as "(default: none)"."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.nargs == 0 or action.default is None:
            return text
        if action.default == []:  # a repeatable option given no times
            return f"{text} (default: none)"
        return super()._get_help_string(action)
