"""Where the checkout is: the working folder of the tests that start ``python -m jobs...`` themselves."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
