"""Root of the test tree: puts ``tests/`` on ``sys.path`` so that every folder's tests, and
the helper modules beside them, import the shared helpers as ``support`` (see
``tests/support/__init__.py``), whichever folder or file pytest was asked to run."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
