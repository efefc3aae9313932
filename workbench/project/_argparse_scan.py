"""Reading an argparse script's flags with :mod:`ast` (never running it), for ``workbench init``.

:func:`scan_argparse` finds the parsers a file builds (``argparse.ArgumentParser(...)``,
their argument groups) and reads each ``add_argument`` call whose arguments are literals:
the flag, its destination, type, default, ``nargs``, ``action``, ``choices``, ``required``
and help. What cannot be read statically (a default computed at run time, a custom
``type``, an ``append`` action) is kept with the reason, so ``workbench init`` can say
why a flag was left out of the proposed command.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ArgparseScript", "ScriptFlag", "scan_argparse"]

_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPES = {"int": int, "float": float, "str": str}
_SKIPPED_ACTIONS = {"count", "append", "append_const", "store_const", "extend", "help", "version"}


@dataclass(frozen=True)
class ScriptFlag:
    """One ``add_argument`` call, as far as it can be read statically.

    Attributes:
        dest: The name argparse stores the value under (the proposed param's name).
        option: The option the command passes (``--lr``), or ``""`` for a positional.
        kind: ``value`` (one value), ``list`` (``nargs`` of several), ``switch``
            (``store_true``/``store_false``) or ``skip`` (not proposed: see ``problem``).
        type: ``int``, ``float``, ``str`` or ``bool`` (the item type of a list).
        default: The literal default, converted as argparse would (None: no default).
        required: A positional, or ``required=True``.
        help: The help text (``%(default)s`` filled in).
        choices: The allowed values, when given as a literal.
        problem: Why the flag is not proposed (``kind == "skip"``).
    """

    dest: str
    option: str
    kind: str
    type: str = "str"
    default: Any = None
    required: bool = False
    help: str = ""
    choices: tuple[Any, ...] = ()
    problem: str = ""

    @property
    def label(self) -> str:
        """The flag as a user writes it (``--lr``), or the positional's name."""
        return self.option or self.dest


@dataclass(frozen=True)
class ArgparseScript:
    """A file that builds an argparse parser and parses its command line.

    Attributes:
        path: The file, relative to the project root (POSIX separators).
        summary: The parser's ``description``, else the module docstring's first line.
        flags: Its ``add_argument`` calls, in file order.
        subcommands: The parser has sub-commands (``add_subparsers``): only the
            top-level flags were read.
    """

    path: str
    summary: str
    flags: tuple[ScriptFlag, ...]
    subcommands: bool = False


def _dotted(node: ast.expr) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _literal(node: ast.expr | None) -> tuple[bool, Any]:
    if node is None:
        return True, None
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _first_line(text: str | None) -> str:
    for line in (text or "").strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def _parser_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(the names that call ``ArgumentParser``, the ``argparse`` module's aliases)."""
    modules, constructors = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "argparse")
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
            constructors.update(a.asname or a.name for a in node.names if a.name == "ArgumentParser")
    constructors.update(f"{m}.ArgumentParser" for m in modules)
    return constructors, modules


def scan_argparse(rel: str, text: str) -> ArgparseScript | None:
    """Read the argparse flags of one Python file, statically.

    Args:
        rel: The file's path relative to the project root (kept in the result).
        text: Its source.

    Returns:
        The script, or None when the file does not build a parser and parse its command
        line (``parse_args``/``parse_known_args``), or does not parse.
    """
    if "argparse" not in text or "parse_" not in text:
        return None
    try:
        tree = ast.parse(text, filename=rel)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    constructors, modules = _parser_names(tree)
    if not constructors:
        return None
    parsers: set[str] = set()
    description = ""
    parses = subcommands = False
    calls: list[ast.Call] = []
    # Two passes: receivers first (parser = ArgumentParser(); group = parser.add_argument_group()),
    # then the calls on them, wherever they are (module level or inside a function).
    assigns = [n for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))]
    for _ in range(3):  # groups of groups: a fixpoint in a few rounds
        for node in assigns:
            value = node.value
            if not isinstance(value, ast.Call):
                continue
            func = _dotted(value.func)
            is_parser = func in constructors
            is_group = func.rpartition(".")[0] in parsers and func.rpartition(".")[2] in (
                "add_argument_group", "add_mutually_exclusive_group")
            if not (is_parser or is_group):
                continue
            if is_parser and not description:
                for kw in value.keywords:
                    if kw.arg == "description":
                        ok, found = _literal(kw.value)
                        description = _first_line(found) if ok and isinstance(found, str) else ""
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            parsers.update(t.id for t in targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr, owner = node.func.attr, _dotted(node.func.value)
        if attr in ("parse_args", "parse_known_args", "parse_intermixed_args"):
            parses = True
        elif attr == "add_subparsers" and owner in parsers:
            subcommands = True
        elif attr == "add_argument" and owner in parsers:
            calls.append(node)
    if not parsers or not parses:
        return None
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    flags = tuple(flag for call in calls if (flag := _flag(call, modules)) is not None)
    summary = description or _first_line(ast.get_docstring(tree))
    return ArgparseScript(rel, summary, flags, subcommands)


def _skip(dest: str, option: str, problem: str) -> ScriptFlag:
    return ScriptFlag(dest, option, "skip", problem=problem)


def _flag(call: ast.Call, modules: set[str]) -> ScriptFlag | None:
    names: list[str] = []
    for arg in call.args:
        ok, value = _literal(arg)
        if not ok or not isinstance(value, str):
            return None  # names built at run time: nothing to say about it
        names.append(value)
    if not names:
        return None
    options = [n for n in names if n.startswith("-")]
    kw = {k.arg: k.value for k in call.keywords if k.arg is not None}
    if options:
        longs = [o for o in options if o.startswith("--")]
        option = (longs or options)[0]
        dest = option.lstrip("-").replace("-", "_")
    else:
        option, dest = "", names[0]
    if "dest" in kw:
        ok, value = _literal(kw["dest"])
        if ok and isinstance(value, str):
            dest = value
    help_text = ""
    if "help" in kw:
        ok, value = _literal(kw["help"])
        help_text = " ".join(value.split()) if ok and isinstance(value, str) else ""
    if help_text == "==SUPPRESS==" or "{" in option or "}" in option:
        return None
    label = option or dest
    if not _PARAM.match(dest):
        return _skip(dest, option, f"its name {dest!r} is not a plain identifier")

    action = ""
    if "action" in kw:
        ok, value = _literal(kw["action"])
        if ok and isinstance(value, str):
            action = value
        elif _dotted(kw["action"]).rpartition(".")[2] == "BooleanOptionalAction":
            return _skip(dest, option, f"{label} is a --{dest}/--no-{dest} switch")
        else:
            return _skip(dest, option, "a custom action")
    if action in ("store_true", "store_false"):
        return ScriptFlag(dest, option, "switch", "bool", action == "store_false", False, help_text)
    if action in _SKIPPED_ACTIONS:
        return None if action in ("help", "version") else _skip(dest, option, f"action {action!r}")

    ok, default = _literal(kw.get("default"))
    if not ok:
        return _skip(dest, option, "its default is computed when the script runs")
    nargs: Any = None
    if "nargs" in kw:
        ok, nargs = _literal(kw["nargs"])
        if not ok or nargs == "...":
            return _skip(dest, option, "its nargs cannot be read")
        if nargs == "?" and not option:
            return _skip(dest, option, "an optional positional")
    many = nargs in ("+", "*") or (isinstance(nargs, int) and not isinstance(nargs, bool) and nargs != 1)
    declared = ""
    if "type" in kw:
        declared = _dotted(kw["type"])
        if declared not in _TYPES:
            # A custom type (pathlib.Path, a function) still receives a string.
            if default is not None and not isinstance(default, str):
                return _skip(dest, option, f"type={declared or 'a callable'} with a non-string default")
            declared = "str"
    choices: tuple[Any, ...] = ()
    if "choices" in kw:
        ok, value = _literal(kw["choices"])
        if ok and isinstance(value, (list, tuple, set, frozenset)):
            choices = tuple(value)
    required = not option
    if "required" in kw:
        ok, value = _literal(kw["required"])
        required = required or (ok and value is True)
    help_text = help_text.replace("%(default)s", str(default)).replace("%%", "%")

    try:
        kind, type_name, value = _typed(default, declared, many)
    except (TypeError, ValueError) as exc:
        return _skip(dest, option, str(exc))
    if type_name == "bool":  # the script would receive the text "true", not a bool
        return _skip(dest, option, "a bool default without store_true/store_false")
    if kind == "list" and value == [] and nargs == "+":
        return _skip(dest, option, "an empty default for nargs='+'")
    return ScriptFlag(dest, option, kind, type_name, value, required, help_text, choices)


def _typed(default: Any, declared: str, many: bool) -> tuple[str, str, Any]:
    """(kind, item type, default converted as argparse converts a string default)."""
    convert = _TYPES.get(declared)

    def one(value: Any) -> tuple[str, Any]:
        if value is None:
            return declared or "str", None
        if isinstance(value, bool):
            if declared and declared != "bool":
                raise ValueError(f"a bool default for type={declared}")
            return "bool", value
        if convert is not None:
            if isinstance(value, str) and convert is not str:
                return declared, convert(value)  # argparse converts string defaults with type
            if convert is float and isinstance(value, int):
                return "float", float(value)
            if not isinstance(value, convert):
                raise ValueError(f"default {value!r} is not a {declared}")
            return declared, value
        if isinstance(value, (int, float, str)):
            return type(value).__name__, value
        raise ValueError(f"default {value!r} is not a number or a string")

    if many:
        if default is None:
            return "list", declared or "str", None
        items = default if isinstance(default, (list, tuple)) else [default]
        converted = [one(v) for v in items]
        kinds = {k for k, _ in converted}
        if len(kinds) > 1:
            if kinds <= {"int", "float"}:
                return "list", "float", [float(v) for _, v in converted]
            raise ValueError(f"default {default!r} mixes types")
        return "list", (kinds.pop() if kinds else declared or "str"), [v for _, v in converted]
    if isinstance(default, (list, tuple)):
        raise ValueError(f"a list default {default!r} for a single value")
    type_name, value = one(default)
    return "value", type_name, value
