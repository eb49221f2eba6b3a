"""The device-specific packages come from extras (``pyproject.toml``): ``cpu`` (DALI's CPU pipelines and
faiss-cpu), ``gpu`` (CUDA 13) and ``gpu-cu12`` (CUDA 12). Modules import DALI and FAISS through
``optional_import``, so the product imports without them and a missing one is one line naming the
extra, raised where it is first used (``MissingExtra``), not a traceback at import.
"""

from __future__ import annotations

import importlib
import sys
import types

INSTALL = "pip install -e '.[cpu]' on a host without a GPU, '.[gpu]' for CUDA 13 or '.[gpu-cu12]' for CUDA 12"


class MissingExtra(ImportError):
    """A package of the machine's extra is not installed. The message is one line that names the extra."""


class _Missing(types.ModuleType):
    """Stands for a module that is not installed: any use raises ``MissingExtra``."""

    def __init__(self, name: str, message: str):
        super().__init__(name)
        self._message = message

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):  # introspection (copy, pickle, doctest) must not raise
            raise AttributeError(attribute)
        raise MissingExtra(self._message)

    def __bool__(self) -> bool:
        return False


def optional_import(name: str, what: str) -> types.ModuleType:
    """``import name``, or a stand-in that raises ``MissingExtra`` naming ``what`` and the extras on
    first use. Only the package's own absence is softened; a broken install still raises."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is None or not name.startswith(error.name):
            raise
        return _Missing(name, f"{what} is not installed ({error.name}): {INSTALL}")


def require(module: types.ModuleType) -> types.ModuleType:
    """``module`` itself, or ``MissingExtra`` now, for code that wants the failure before it starts work."""
    if isinstance(module, _Missing):
        raise MissingExtra(module._message)
    return module


def one_line_for_missing_extras() -> None:
    """Print a ``MissingExtra`` that ends a command as its one line (``error: ...``, exit status 1),
    not a traceback; other exceptions keep the hook they had. Called once by ``pipeline.logs.configure``."""
    previous = sys.excepthook
    if getattr(previous, "_missing_extras", False):
        return

    def hook(kind, error, traceback):
        if isinstance(error, MissingExtra):
            print(f"error: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    hook._missing_extras = True
    sys.excepthook = hook
