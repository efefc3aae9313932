"""The value checks of ``workbench.toml``'s fields: each takes a parsed TOML value and returns
it normalised, or raises ``ValueError`` with what would be right; :class:`_Checker` turns
that into a :class:`~workbench.project.errors.ProjectError` naming the file and line."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.project._toml import find_key_line
from workbench.project.errors import ProjectError

_MIB = 1024 * 1024


class _Checker:
    """Reads one section of the parsed file, naming file:line in every error."""

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.where = where

    def fail(self, key: tuple[str, ...], message: str) -> ProjectError:
        line = find_key_line(self.text, key)
        location = f"{self.where}:{line}" if line else self.where
        return ProjectError(f"{location}: {message}")

    def fail_raw(self, key: tuple[str, ...], message: str) -> ProjectError:
        """Like :meth:`fail`, for a message that names its key itself; the line is that of the
        deepest part of ``key`` the scanner finds (a key, else its table)."""
        for depth in range(len(key), 0, -1):
            line = find_key_line(self.text, key[:depth])
            if line:
                return ProjectError(f"{self.where}:{line}: {message}")
        return ProjectError(f"{self.where}: {message}")

    def check(self, key: tuple[str, ...], value: Any, normalize: Callable[[Any], Any]) -> Any:
        try:
            return normalize(value)
        except ValueError as exc:
            raise self.fail(key, f"{'.'.join(key)} {exc}") from None


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _string(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"must be a non-empty string; got {value!r}")


def _globs(value: object) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    hint = 'must be a glob or a list of globs relative to the project root, e.g. "tasks/**/*.py"'
    if not isinstance(items, list) or not items:
        raise ValueError(f"{hint}; got {value!r}")
    globs: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{hint}; got {item!r}")
        pattern = PurePosixPath(item.strip().replace("\\", "/"))
        if pattern.is_absolute() or ".." in pattern.parts or re.match(r"^[A-Za-z]:", str(pattern)):
            raise ValueError(f"{hint}; got {item!r}")
        globs.append(str(pattern))
    return tuple(dict.fromkeys(globs))


def _state_dir(root: Path) -> Callable[[object], Path]:
    def check(value: object) -> Path:
        text = _string(value)
        path = Path(text).expanduser()
        if path.is_absolute():
            return path.resolve()
        resolved = (root / path).resolve()
        if resolved == root or root not in resolved.parents:
            raise ValueError(
                f"must be a folder inside the project (or an absolute path); got {value!r}"
            )
        return resolved

    return check


def _index_file(root: Path) -> Callable[[object], Path]:
    def check(value: object) -> Path:
        text = _string(value)
        path = (root / Path(text).expanduser()).resolve()
        if path.is_dir():
            raise ValueError(f"must name the index file (e.g. \"~/.cache/workbench/{root.name}/index.db\"), "
                             f"not a folder; got {value!r}")
        return path
    return check


def _boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false; got {value!r}")


def _size_mb(value: object) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value * _MIB)
    raise ValueError(f"must be a number of MiB >= 0; got {value!r}")


def _max_running(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"must be a whole number of runs >= 1 (leave it out for no limit); got {value!r}")


def _max_runs(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise ValueError(f"must be a whole number of runs >= 1 (default 1000); got {value!r}")


def _patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(v.strip() for v in value)
    raise ValueError(f"must be a list of glob patterns, e.g. [\"data/**\"]; got {value!r}")
