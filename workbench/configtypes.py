"""Config types: annotation text <-> a small type tree, value checking, and config building.

A leaf module (the standard library and :mod:`workbench.errors` only): the project layer
(static discovery, overrides, profiles) and the training core (``Task(config={...})``)
both use it, and the core need not load the project layer for it.

Both sides of the workbench describe a field's type by its annotation *text*: the static
side reads it from the source with ``ast``; the runtime side gets a string (with
``from __future__ import annotations``) or a type object, which :func:`type_text` turns
into the same text. :func:`coerce` parses the text (never evaluates it) into a tree of
tuples and checks a value against it. :func:`build_config` makes a config dataclass
instance from a nested dict, checking every value that way.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from workbench.errors import WorkbenchError

__all__ = [
    "ConfigError",
    "accepts_str",
    "build_config",
    "coerce",
    "init_fields",
    "nested_dataclass",
    "suggestion",
    "type_hints",
    "type_text",
]


class ConfigError(WorkbenchError):
    """A config value, override or profile is invalid (unknown key, wrong type, ...)."""


# A type tree node: (kind, *args). Kinds: any, int, float, bool, str, path, none,
# list (item), tuple (items, variadic), dict (key, value), union (members), literal (values).
_Node = tuple
_ANY: _Node = ("any",)
_SIMPLE = {
    "int": ("int",),
    "float": ("float",),
    "bool": ("bool",),
    "str": ("str",),
    "Path": ("path",),
    "PurePath": ("path",),
    "PosixPath": ("path",),
    "WindowsPath": ("path",),
    "None": ("none",),
    "NoneType": ("none",),
    "list": ("list", _ANY),
    "List": ("list", _ANY),
    "Sequence": ("list", _ANY),
    "MutableSequence": ("list", _ANY),
    "tuple": ("tuple", (_ANY,), True),
    "Tuple": ("tuple", (_ANY,), True),
    "dict": ("dict", _ANY, _ANY),
    "Dict": ("dict", _ANY, _ANY),
    "Mapping": ("dict", _ANY, _ANY),
    "MutableMapping": ("dict", _ANY, _ANY),
}
_LISTS = {"list", "List", "Sequence", "MutableSequence"}
_TUPLES = {"tuple", "Tuple"}
_DICTS = {"dict", "Dict", "Mapping", "MutableMapping"}
_WRAPPERS = {"Annotated", "Final", "ClassVar", "Required", "NotRequired", "ReadOnly"}
_NONE_WORDS = {"none", "null"}
_FAIL = object()


def _last_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _from_ast(node: ast.expr) -> _Node:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return ("none",)
        if isinstance(node.value, str):
            return _parse(node.value)
        return _ANY
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([_from_ast(node.left), _from_ast(node.right)])
    name = _last_name(node)
    if name is not None:
        return _SIMPLE.get(name, _ANY)
    if not isinstance(node, ast.Subscript):
        return _ANY
    base = _last_name(node.value)
    args = list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    if base in _LISTS:
        return ("list", _from_ast(args[0]))
    if base in _TUPLES:
        if len(args) == 2 and isinstance(args[1], ast.Constant) and args[1].value is Ellipsis:
            return ("tuple", (_from_ast(args[0]),), True)
        if len(args) == 1 and isinstance(args[0], ast.Tuple) and not args[0].elts:
            return ("tuple", (), False)
        return ("tuple", tuple(_from_ast(a) for a in args), False)
    if base in _DICTS and len(args) == 2:
        return ("dict", _from_ast(args[0]), _from_ast(args[1]))
    if base == "Optional":
        return _union([_from_ast(args[0]), ("none",)])
    if base == "Union":
        return _union([_from_ast(a) for a in args])
    if base == "Literal":
        values: list[Any] = []
        for arg in args:
            try:
                values.append(ast.literal_eval(arg))
            except ValueError:
                return _ANY
        return ("literal", tuple(values))
    if base in _WRAPPERS:
        return _from_ast(args[0])
    return _ANY


def _union(members: list[_Node]) -> _Node:
    flat: list[_Node] = []
    for member in members:
        for item in member[1] if member[0] == "union" else (member,):
            if item not in flat:
                flat.append(item)
    if _ANY in flat:
        return _ANY
    return flat[0] if len(flat) == 1 else ("union", tuple(flat))


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> _Node:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return _ANY
    return _from_ast(tree.body)


def _convert(value: Any, node: _Node, lenient: bool) -> Any:  # noqa: C901 - a flat dispatch
    kind = node[0]
    if kind == "any":
        return value
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else _FAIL
    if kind == "float":
        if isinstance(value, float):
            return value
        if lenient and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return _FAIL
    if kind == "bool":
        return value if isinstance(value, bool) else _FAIL
    if kind == "str":
        return value if isinstance(value, str) else _FAIL
    if kind == "path":
        if isinstance(value, PurePath) or (lenient and isinstance(value, str)):
            return Path(value)
        return _FAIL
    if kind == "none":
        if value is None:
            return None
        if lenient and isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
            return None
        return _FAIL
    if kind in ("list", "tuple"):
        if not isinstance(value, (list, tuple)) or (not lenient and kind == "list" and isinstance(value, tuple)):
            return _FAIL
        if kind == "list" or node[2]:
            items = [_convert(v, node[1] if kind == "list" else node[1][0], lenient) for v in value]
        elif len(value) != len(node[1]):
            return _FAIL
        else:
            items = [_convert(v, n, lenient) for v, n in zip(value, node[1])]
        if any(item is _FAIL for item in items):
            return _FAIL
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        if not isinstance(value, dict):
            return _FAIL
        out = {}
        for key, item in value.items():
            new_key, new_item = _convert(key, node[1], lenient), _convert(item, node[2], lenient)
            if new_key is _FAIL or new_item is _FAIL:
                return _FAIL
            out[new_key] = new_item
        return out
    if kind == "literal":
        for allowed in node[1]:
            if type(value) is type(allowed) and value == allowed:
                return allowed
        return _FAIL
    if kind == "union":
        members = node[1]
        if lenient and ("none",) in members and isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
            return None
        for strict_pass in (True, False):
            if strict_pass or lenient:
                for member in members:
                    result = _convert(value, member, lenient=not strict_pass)
                    if result is not _FAIL:
                        return result
        return _FAIL
    return value


def _show(value: Any) -> str:
    text = repr(str(value)) if isinstance(value, PurePath) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expected(node: _Node, text: str) -> str:
    if node[0] == "literal":
        return "one of " + ", ".join(repr(v) for v in node[1])
    if node[0] == "union":
        literals = [v for m in node[1] if m[0] == "literal" for v in m[1]]
        rest = [m for m in node[1] if m[0] != "literal"]
        if literals and rest == [("none",)]:
            return "one of " + ", ".join(repr(v) for v in literals) + " or None"
    return " ".join(text.split())


def coerce(value: Any, type_text: str, key: str = "") -> Any:
    """Check ``value`` against an annotation text and convert it where that is safe.

    Accepted: ``int`` (not bool, not float), ``float`` (an int becomes a float), ``bool``,
    ``str``, ``Path`` (from a string), ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``
    (from a list), ``dict[K, V]``, ``X | None`` / ``Optional[X]`` (the bare words
    ``none``/``null`` mean None), ``Union[...]``, ``Literal[...]``. Any other annotation
    (a class, ``Any``, a callable) accepts any value unchanged.

    Args:
        value: The value, as parsed from TOML or taken from a default.
        type_text: The annotation source text, e.g. ``"list[int]"``.
        key: The field's dotted name, used to start the error message.

    Returns:
        The value, converted (``int`` -> ``float``, ``str`` -> ``Path``,
        ``list`` -> ``tuple``) where the type asks for it.

    Raises:
        ConfigError: The value does not fit, e.g. ``lr: expected float, got 'abc'``.
    """
    node = _parse(type_text)
    result = _convert(value, node, lenient=True)
    if result is _FAIL:
        prefix = f"{key}: " if key else ""
        raise ConfigError(f"{prefix}expected {_expected(node, type_text)}, got {_show(value)}")
    return result


def accepts_str(type_text: str) -> bool:
    """Tell whether a bare string can be a valid value for this annotation.

    Args:
        type_text: The annotation source text.

    Returns:
        True when some string value could pass :func:`coerce`.
    """
    node = _parse(type_text)
    members = node[1] if node[0] == "union" else (node,)
    return any(m[0] in ("any", "str", "path", "none", "literal") for m in members)


def type_text(tp: Any) -> str:
    """Turn a runtime annotation into the text the static side would read.

    Args:
        tp: A type (``int``, ``Path``, a dataclass), a generic alias (``list[int]``,
            ``typing.Optional[int]``, ``Literal['a', 'b']``) or a string annotation.

    Returns:
        The annotation as text: ``"int"``, ``"list[int]"``, ``"int | None"``,
        ``"Literal['a', 'b']"``. Strings are returned unchanged.
    """
    if isinstance(tp, str):
        return tp
    if tp is None or tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    if isinstance(tp, typing.ForwardRef):
        return tp.__forward_arg__
    if tp is typing.Any:
        return "Any"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    union_type = getattr(types, "UnionType", None)
    if origin is typing.Union or (union_type is not None and origin is union_type):
        return " | ".join(type_text(a) for a in args)
    if origin is typing.Annotated or origin is typing.ClassVar or origin is typing.Final:
        return type_text(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        if not args:
            return name
        if isinstance(args[0], list):  # Callable[[A, B], R]
            inner = "[" + ", ".join(type_text(a) for a in args[0]) + "], " + ", ".join(type_text(a) for a in args[1:])
            return f"{name}[{inner}]"
        return f"{name}[" + ", ".join(type_text(a) for a in args) + "]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp).replace("typing.", "")


# ---------------------------------------------------------------------------- runtime side


def suggestion(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``word``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def type_hints(cls: type) -> dict[str, Any]:
    """A class's resolved annotations; ``{}`` when one cannot be resolved (then use the raw text)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an unresolvable string annotation: fall back to the raw text
        return {}


def nested_dataclass(cls: type, f: dataclasses.Field[Any], hints: Mapping[str, Any]) -> type | None:
    """The dataclass that field ``f`` of ``cls`` holds, or None when it holds something else."""
    tp = hints.get(f.name, f.type)
    if isinstance(tp, str):  # look the name up in the defining module
        tp = getattr(sys.modules.get(cls.__module__), tp.strip("'\""), None)
    return tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else None


def init_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of a dataclass that its constructor takes."""
    return [f for f in dataclasses.fields(cls) if f.init]


def build_config(cls: type, values: Mapping[str, Any], *, _prefix: str = "", _base: Any = None) -> Any:
    """Make a config instance from a (resolved) nested dict.

    Values are checked and converted against the field types (lists become tuples for
    tuple fields, strings paths for ``Path`` fields); missing keys keep the dataclass
    defaults, and a nested dataclass that is only partly given keeps its other defaults.

    Args:
        cls: The config dataclass.
        values: Nested dict of values, as ``workbench.project.config.resolve_config`` returns.

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: An unknown key, a value of the wrong type, or a required field
            without a value.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{cls!r} is not a dataclass; a task's Config must be a @dataclass")
    hints = type_hints(cls)
    known = {f.name: f for f in init_fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        f = known.get(key)
        if f is None:
            valid = ", ".join(known)
            raise ConfigError(f"unknown config key '{_prefix}{key}' for {cls.__name__}; valid keys: {valid}{suggestion(key, list(known))}")
        nested = nested_dataclass(cls, f, hints)
        if nested is not None and isinstance(value, Mapping):
            base = getattr(_base, key, None) if _base is not None else None
            if base is None and f.default_factory is not dataclasses.MISSING:
                base = f.default_factory()
            elif base is None and dataclasses.is_dataclass(f.default):
                base = f.default
            kwargs[key] = build_config(nested, value, _prefix=f"{_prefix}{key}.", _base=base)
        else:
            kwargs[key] = coerce(value, type_text(hints.get(key, f.type)), _prefix + key)
    try:
        return dataclasses.replace(_base, **kwargs) if _base is not None else cls(**kwargs)
    except TypeError as exc:
        missing = [f"{_prefix}{n}" for n, f in known.items() if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{cls.__name__}: no value for {', '.join(missing)}; set it with -s {missing[0]}=VALUE") from None
        raise ConfigError(f"{cls.__name__}: cannot build the config: {exc}") from None
