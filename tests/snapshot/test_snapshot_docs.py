"""docs/snapshots.md stays in step with the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.snapshot import HEAVY_DIRS, HEAVY_SUFFIXES, REF_PREFIX

DOC = Path(__file__).resolve().parents[2] / "docs" / "snapshots.md"


@pytest.mark.parametrize("name", sorted(HEAVY_DIRS))
def test_every_heavy_folder_is_documented(name: str) -> None:
    assert f"`{name}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize("suffix", HEAVY_SUFFIXES)
def test_every_weights_suffix_is_documented(suffix: str) -> None:
    assert f"`*{suffix}`" in DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "max_file_size_mb",
        "exclude = [",
        REF_PREFIX,
        "git --git-dir .workbench/git",
        "workbench diff RUN OTHER",
        "workbench checkout RUN DIR",
        "workbench snapshot [--json]",
        "workbench rm RUN",
        "workbench gc",
    ],
)
def test_settings_refs_and_commands_are_documented(text: str) -> None:
    assert text in DOC.read_text(encoding="utf-8")
