"""TOML helpers: loading with one-line errors, and finding the line of a key.

tomllib returns plain dicts without positions, so the line of a key is looked up again in
the text with a small line scanner. It understands ``[table]`` headers, dotted keys and
one-line inline tables, which covers the files people write by hand; when it cannot find
a key it returns ``None`` and the message goes without a line number.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["display_path", "find_key_line", "load_toml_text", "read_text", "tomllib"]

_BARE_OR_QUOTED = r"[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'"
_KEY_PART = re.compile(_BARE_OR_QUOTED)
_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(rf"^\s*((?:{_BARE_OR_QUOTED})(?:\s*\.\s*(?:{_BARE_OR_QUOTED}))*)\s*=")
_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def display_path(path: Path) -> str:
    """Return ``path`` relative to the current folder when it lies below it.

    Args:
        path: The path to show in a message.

    Returns:
        A short path for messages: relative to the working folder where possible, else
        the path as given.
    """
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _split_key(text: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _KEY_PART.findall(text))


def find_key_line(text: str, path: tuple[str, ...]) -> int | None:
    """Find the 1-based line where the key ``path`` is set (or its table starts).

    Args:
        text: The TOML source.
        path: The key's full path, e.g. ``("project", "tasks")``.

    Returns:
        The line number, or ``None`` when the scanner cannot place the key.
    """
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            if table == path:
                return number
            continue
        key = _KEY.match(line)
        if not key:
            continue
        full = table + _split_key(key.group(1))
        if full == path:
            return number
        if len(full) < len(path) and full == path[: len(full)]:
            # ``project = { taks = 1 }``: the key sits in a one-line inline table.
            inner = re.escape(path[len(full)])
            if re.search(rf"[{{,]\s*[\"']?{inner}[\"']?\s*[=.]", line[key.end() :]):
                return number
    return None


def read_text(path: Path) -> str:
    """Read a UTF-8 text file.

    Args:
        path: The file.

    Returns:
        Its text.

    Raises:
        OSError: The file cannot be read.
        UnicodeDecodeError: The file is not UTF-8.
    """
    return Path(path).read_bytes().decode("utf-8")


def load_toml_text(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into a ``ValueError`` with one line.

    Args:
        text: The TOML source.
        where: How to name the source in the message (a file path).

    Returns:
        The parsed document.

    Raises:
        ValueError: The text is not valid TOML; the message reads
            ``WHERE:LINE: invalid TOML: <tomllib's message>``.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "invalid TOML"
        found = _AT_LINE.search(message)
        location = f"{where}:{found.group(1)}" if found else where
        raise ValueError(f"{location}: invalid TOML: {message}") from None
