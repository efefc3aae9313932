"""The device probe's cache is keyed by the interpreter, however its path is spelled."""

from __future__ import annotations

import os
import sys

from workbench.runs.probe import _torch_key


def test_one_interpreter_spelled_two_ways_has_one_cache_key() -> None:
    odd = os.path.join(os.path.dirname(sys.executable), "..", os.path.basename(os.path.dirname(sys.executable)),
                       os.path.basename(sys.executable))
    assert odd != sys.executable
    assert _torch_key(odd) == _torch_key(sys.executable)
    assert "torch" in _torch_key(odd)  # the same torch is found for it
