"""Every CLI command has help text and is documented in docs/cli.md, with each of its
options; the run record's keys are documented too (as sqlite-utils' test_docs does)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from workbench.cli import cli
from workbench.runs.present import run_record
from workbench.store import Run, RunStatus

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
COMMANDS = sorted(cli.commands)


def _sections() -> dict[str, str]:
    """The text under each ``## workbench NAME`` heading, by NAME."""
    text = DOCS.read_text(encoding="utf-8")
    parts = re.split(r"^## workbench (\S+)\s*$", text, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1].split("\n## ")[0] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_text(name: str) -> None:
    command = cli.commands[name]

    assert (command.help or "").strip(), f"workbench {name} has no help text (docstring)"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"workbench {name} {param.opts[0]} has no help text"


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_documented_with_its_options(name: str) -> None:
    sections = _sections()

    assert name in sections, f"docs/cli.md has no '## workbench {name}' section"
    for param in cli.commands[name].params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert f"`{longest}" in sections[name] or f"{longest}`" in sections[name], \
                f"docs/cli.md does not document {longest} of workbench {name}"


def test_every_section_is_a_command() -> None:
    assert sorted(_sections()) == COMMANDS


def test_every_key_of_the_run_record_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    record = run_record(Run(id="x", status=RunStatus.QUEUED, created_at=0.0, updated_at=0.0), {}, artifacts=0)

    for key in record:
        assert f"`{key}`" in text, f"docs/cli.md does not document the run record's key {key!r}"
