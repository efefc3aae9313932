"""``[scripts.NAME]`` tables: a script launched as a run, with no change to its code.

```toml
[scripts.wordlm]
command = ["python", "scripts/wordlm.py", "--epochs", "{epochs}", "--lr", "{lr}"]
summary = "Word-level LSTM language model"
secret = ["token"]                # params recorded as *** (never stored, never shown)
resume = ["--resume", "{checkpoint}"]   # optional: how the script continues from a file
checkpoints = "artifacts/*.pt"    # optional: its checkpoints, relative to the run folder

[scripts.wordlm.params]           # typed by their defaults: int, float, bool, str, list
epochs = 6
lr = 20.0
token = { default = "", type = "str" }  # the long form names the type

[scripts.wordlm.capture]          # optional: scalars read from the script's output
pattern = '\\| epoch +(?P<epoch>\\d+) .* loss +(?P<loss>[\\d.]+)'
step = "auto"                     # "auto" (lines matched) or a named group
```

Everything is checked when ``workbench.toml`` is read: an unknown placeholder, a param
whose default does not fit its type, a capture pattern that does not compile, a
``command`` that is not a list of strings. Each problem is one line naming the file, the
table and the key. Whether the script's file exists is checked at launch
(:func:`script_argument`), so a missing script never stops ``workbench ls``.

Nothing here imports torch or the user's code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.project.config import ConfigField

__all__ = [
    "CHECKPOINT_PLACEHOLDER",
    "Script",
    "ScriptArgument",
    "parse_scripts",
    "placeholders",
    "render",
    "script_argument",
]

#: The placeholder ``resume`` arguments may use: the latest checkpoint's path.
CHECKPOINT_PLACEHOLDER = "checkpoint"

_TABLE_KEYS = ("command", "summary", "params", "secret", "capture", "resume", "checkpoints")
_CAPTURE_KEYS = ("pattern", "step")
_PARAM_KEYS = ("default", "type", "help")
_TYPES = ("int", "float", "bool", "str", "list")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ``{name}`` is a placeholder; ``{{`` and ``}}`` are literal braces.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PYTHONS = ("python", "python3")


@dataclass(frozen=True)
class Script:
    """One ``[scripts.NAME]`` table, checked.

    Attributes:
        name: The table's name: what ``workbench run NAME`` launches.
        command: The argument list, with ``{param}`` placeholders.
        summary: One line shown beside the name.
        params: Param name -> default value (int, float, bool, str or list).
        types: Param name -> type text (``int``, ``float``, ``bool``, ``str``, ``list[int]`` …).
        helps: Param name -> its help text (long form only).
        secret: Params whose values are never stored nor shown (``***``).
        pattern: A regular expression with named groups, read from each output line.
        step: ``auto`` (the count of lines matched) or a named group of ``pattern``.
        resume: Arguments added to ``command`` to continue from ``{checkpoint}``.
        checkpoints: A glob, relative to the run folder, of the script's checkpoints.
        line: The table's line in ``workbench.toml`` (0 when unknown).
    """

    name: str
    command: tuple[str, ...]
    summary: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    types: Mapping[str, str] = field(default_factory=dict)
    helps: Mapping[str, str] = field(default_factory=dict)
    secret: tuple[str, ...] = ()
    pattern: str = ""
    step: str = "auto"
    resume: tuple[str, ...] = ()
    checkpoints: str = ""
    line: int = 0

    @property
    def fields(self) -> tuple[ConfigField, ...]:
        """The params as config fields (what ``-s`` and the launch form check)."""
        return tuple(ConfigField(name, self.types[name], value, True, help=self.helps.get(name, ""))
                     for name, value in self.params.items())

    @property
    def resumes(self) -> bool:
        """Whether a resume passes the latest checkpoint (``resume`` and ``checkpoints`` set)."""
        return bool(self.resume and self.checkpoints)

    def to_dict(self) -> dict[str, Any]:
        """The table as plain values (what ``run.toml`` records as ``script``)."""
        return {"name": self.name, "command": list(self.command), "summary": self.summary,
                "secret": list(self.secret), "pattern": self.pattern, "step": self.step,
                "resume": list(self.resume), "checkpoints": self.checkpoints}


def placeholders(arg: str) -> list[str]:
    """The placeholder names in one argument (``"--lr={lr}"`` -> ``["lr"]``)."""
    return [m.group(1) for m in _TOKEN.finditer(arg) if m.group(1) is not None]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(args: Sequence[str], values: Mapping[str, Any], keep: Sequence[str] = (),
           mask: Sequence[str] = (), template: bool = False) -> list[str]:
    """Substitute placeholders into an argument list (never a shell string).

    An argument that is exactly ``{name}`` of a list param becomes one argument per item;
    elsewhere a list is joined with commas. Booleans are ``true``/``false``.

    Args:
        args: The arguments, with ``{name}`` placeholders.
        values: The values to substitute.
        keep: Names left as ``{name}`` (filled in later, e.g. secrets by the supervisor).
        mask: Names replaced by ``***``.
        template: Return a template again: literal braces stay doubled and braces in the
            values are doubled, so that a second ``render`` (of the kept names) is exact.

    Returns:
        The arguments.
    """
    def esc(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}") if template else text

    out: list[str] = []
    for arg in args:
        names = placeholders(arg)
        if len(names) == 1 and arg == "{" + names[0] + "}" and names[0] not in keep \
                and names[0] not in mask and isinstance(values.get(names[0]), list):
            out.extend(esc(_text(v)) for v in values[names[0]])
            continue

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0) if template else match.group(0)[0]
            if name in keep:
                return "{" + name + "}"
            if name in mask:
                return "***"
            value = values[name]
            return esc(",".join(_text(v) for v in value) if isinstance(value, list) else _text(value))

        out.append(_TOKEN.sub(one, arg))
    return out


@dataclass(frozen=True)
class ScriptArgument:
    """Which argument of a command names the user's code.

    Attributes:
        index: Its position in the command.
        path: The file, relative to the project root (``""`` for a module).
        module: The module after ``-m`` (``""`` for a file).
    """

    index: int
    path: str = ""
    module: str = ""


def _is_python(word: str) -> bool:
    return word in _PYTHONS


def script_argument(command: Sequence[str], root: Path) -> ScriptArgument | None:
    """Find the command's script argument: the first argument naming a file inside the
    project, or the module after ``-m``.

    Returns:
        The argument, or None when the command names no project file (e.g. a tool on PATH).

    Raises:
        ValueError: The argument names a file (``*.py``, or the one after ``python``) that
            does not exist in the project, or leaves it; the message says which.
    """
    root = Path(root)
    python = bool(command) and _is_python(command[0])
    for i, arg in enumerate(command):
        if i == 0 and python:
            continue
        if python and arg == "-m":
            module = command[i + 1] if i + 1 < len(command) else ""
            if not module or placeholders(module):
                raise ValueError(f"'-m' must be followed by a module name; got {module!r}")
            rel = PurePosixPath(*module.split("."))
            if not ((root / rel).with_suffix(".py").is_file() or (root / rel / "__main__.py").is_file()):
                return None  # an installed module (python -m torch.distributed.run …)
            return ScriptArgument(i + 1, module=module)
        if arg.startswith("-") or placeholders(arg):
            continue
        first_after_python = python and all(a.startswith("-") for a in command[1:i])
        candidate = Path(arg).expanduser()
        path = candidate if candidate.is_absolute() else root / candidate
        inside = path.resolve() == root.resolve() or root.resolve() in path.resolve().parents
        if path.is_file() and inside:
            return ScriptArgument(i, path=path.resolve().relative_to(root.resolve()).as_posix())
        if arg.endswith(".py") or first_after_python:
            if not inside:
                raise ValueError(f"{arg!r} is outside the project folder; scripts run from the "
                                 "code snapshot, so they must be inside it")
            raise ValueError(f"script file {arg!r} does not exist in {root}")
    return None


# -- reading the tables ----------------------------------------------------------------


def _type_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        kinds = {_type_of(v) for v in value}
        if not kinds:
            return "list"
        if kinds <= {"int", "float"} and "float" in kinds:
            return "list[float]"
        if len(kinds) == 1 and next(iter(kinds)) in ("int", "float", "bool", "str"):
            return f"list[{next(iter(kinds))}]"
        return None
    return None


def _param(name: str, value: Any, fail: Callable[[tuple[str, ...], str], Exception]) -> tuple[Any, str, str]:
    """(default, type text, help) of one param; the long form is ``{default, type, help}``."""
    help_text = ""
    if isinstance(value, dict):
        for key in value:
            if key not in _PARAM_KEYS:
                raise fail(("params", name, key), f"unknown key '{key}'; valid keys: {', '.join(_PARAM_KEYS)}")
        if "default" not in value:
            raise fail(("params", name), "needs a default (e.g. { default = 0.1, type = \"float\" })")
        help_text = str(value.get("help", ""))
        declared = value.get("type")
        default = value["default"]
        if declared is not None:
            if declared not in _TYPES:
                raise fail(("params", name, "type"), f"must be one of {', '.join(_TYPES)}; got {declared!r}")
            found = _type_of(default)
            if declared == "float" and found == "int":
                default, found = float(default), "float"
            if found is None or found.split("[")[0] != declared:
                raise fail(("params", name, "default"),
                           f"default {default!r} is not of its declared type {declared}")
        value = default
    kind = _type_of(value)
    if kind is None:
        raise fail(("params", name),
                   f"default {value!r} has no launchable type; use an int, float, bool, string, "
                   "or a list of one of them")
    return value, kind, help_text


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _script(name: str, table: Any, fail: Callable[[tuple[str, ...], str], Exception], line: int) -> Script:
    if not _NAME.match(name):
        raise fail((), "a script name must be letters, digits, '_' or '-' (it is what `workbench run` takes)")
    if not isinstance(table, dict):
        raise fail((), f"must be a table with a command; got {table!r}")
    for key in table:
        if key not in _TABLE_KEYS:
            raise fail((key,), f"unknown key '{key}'; valid keys: {', '.join(_TABLE_KEYS)}")
    if "command" not in table:
        raise fail((), 'needs a command, e.g. command = ["python", "train.py", "--lr", "{lr}"]')
    command = table["command"]
    if not _strings(command) or not command or not command[0].strip():
        raise fail(("command",), "must be a list of strings (an argument list, never a shell string), "
                                 f'e.g. ["python", "train.py", "--lr", "{{lr}}"]; got {command!r}')
    summary = table.get("summary", "")
    if not isinstance(summary, str):
        raise fail(("summary",), f"must be a string; got {summary!r}")
    params_table = table.get("params", {})
    if not isinstance(params_table, dict):
        raise fail(("params",), f"must be a table of name = default; got {params_table!r}")
    params: dict[str, Any] = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for pname, value in params_table.items():
        if not _PARAM.match(pname) or pname == CHECKPOINT_PLACEHOLDER:
            raise fail(("params", pname), f"'{pname}' cannot be a param name (letters, digits, '_'; "
                                          f"'{CHECKPOINT_PLACEHOLDER}' is reserved)")
        params[pname], types[pname], help_text = _param(pname, value, fail)
        if help_text:
            helps[pname] = help_text
    secret = table.get("secret", [])
    if not _strings(secret):
        raise fail(("secret",), f"must be a list of param names; got {secret!r}")
    for pname in secret:
        if pname not in params:
            raise fail(("secret",), f"'{pname}' is not a param; params: {', '.join(params) or 'none'}")
    for i, arg in enumerate(command):
        _check_placeholders(arg, params, ("command",), fail, allow=())
    resume = table.get("resume", [])
    if not _strings(resume):
        raise fail(("resume",), f'must be a list of strings, e.g. ["--resume", "{{checkpoint}}"]; got {resume!r}')
    for arg in resume:
        _check_placeholders(arg, params, ("resume",), fail, allow=(CHECKPOINT_PLACEHOLDER,))
    checkpoints = table.get("checkpoints", "")
    if not isinstance(checkpoints, str):
        raise fail(("checkpoints",), f"must be a glob relative to the run folder; got {checkpoints!r}")
    glob = PurePosixPath(checkpoints)
    if checkpoints and (glob.is_absolute() or ".." in glob.parts):
        raise fail(("checkpoints",), f"must be a glob inside the run folder, e.g. \"artifacts/*.pt\"; "
                                     f"got {checkpoints!r}")
    if bool(resume) != bool(checkpoints):
        missing = "checkpoints" if resume else "resume"
        raise fail((missing,), "resume and checkpoints go together: resume says how to pass a "
                               "checkpoint, checkpoints where the script writes them")
    capture = table.get("capture", {})
    if not isinstance(capture, dict):
        raise fail(("capture",), f"must be a table with pattern and step; got {capture!r}")
    for key in capture:
        if key not in _CAPTURE_KEYS:
            raise fail(("capture", key), f"unknown key '{key}'; valid keys: {', '.join(_CAPTURE_KEYS)}")
    pattern = capture.get("pattern", "")
    if not isinstance(pattern, str):
        raise fail(("capture", "pattern"), f"must be a regular expression (a string); got {pattern!r}")
    groups: tuple[str, ...] = ()
    if pattern:
        try:
            groups = tuple(re.compile(pattern).groupindex)
        except re.error as exc:
            raise fail(("capture", "pattern"), f"does not compile: {exc}") from None
        if not groups:
            raise fail(("capture", "pattern"), "needs named groups, e.g. loss +(?P<loss>[\\d.]+)")
    step = capture.get("step", "auto")
    if not isinstance(step, str) or (step != "auto" and step not in groups):
        choices = ", ".join(["auto", *groups])
        raise fail(("capture", "step"), f"must be \"auto\" or a named group of the pattern ({choices}); got {step!r}")
    return Script(name, tuple(command), summary.strip(), params, types, helps, tuple(secret), pattern, step,
                  tuple(resume), checkpoints, line)


def _check_placeholders(arg: str, params: Mapping[str, Any], key: tuple[str, ...],
                        fail: Callable[[tuple[str, ...], str], Exception], allow: Sequence[str]) -> None:
    for name in placeholders(arg):
        if name not in params and name not in allow:
            known = ", ".join(f"{{{p}}}" for p in [*params, *allow]) or "none (add [params])"
            hint = f" ({{{CHECKPOINT_PLACEHOLDER}}} belongs in resume)" if name == CHECKPOINT_PLACEHOLDER else ""
            raise fail(key, f"unknown placeholder {{{name}}} in {arg!r}{hint}; known: {known}")
    # A lone brace is a typo, not a literal: literal braces are written {{ and }}.
    if "{" in _TOKEN.sub("", arg) or "}" in _TOKEN.sub("", arg):
        raise fail(key, f"unbalanced brace in {arg!r}; write literal braces as {{{{ and }}}}")


def parse_scripts(table: Any, fail: Callable[[tuple[str, ...], str], Exception],
                  line_of: Callable[[tuple[str, ...]], int | None]) -> tuple[Script, ...]:
    """Check the ``[scripts]`` table of ``workbench.toml``.

    Args:
        table: The parsed ``scripts`` value.
        fail: Makes the exception for a key path below ``scripts`` (it names file and line).
        line_of: The line of a key path (for the script's location).

    Returns:
        The scripts, in file order.

    Raises:
        Exception: Whatever ``fail`` makes, for the first problem found.
    """
    if not isinstance(table, dict):
        raise fail(("scripts",), f"[scripts] must hold tables ([scripts.NAME]); got {table!r}")
    out = []
    for name, body in table.items():
        def failing(key: tuple[str, ...], message: str, _name: str = name) -> Exception:
            path = ("scripts", _name, *key)
            return fail(path, f"[scripts.{_name}] {'.'.join(key) + ': ' if key else ''}{message}")

        out.append(_script(name, body, failing, line_of(("scripts", name)) or 0))
    return tuple(out)
