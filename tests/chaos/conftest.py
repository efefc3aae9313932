"""Fixtures for the chaos test: the device probe's answer, found once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaos_lib import probe_cache as _probe_cache


@pytest.fixture(scope="session")
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``devices.json`` from one real run of the device probe, shared by every project
    (another folder's tests may have probed already: the same file is reused)."""
    return _probe_cache(tmp_path_factory.getbasetemp() / "device-probe")
