"""What task discovery keeps of one file, and the JSON form the disk cache stores it in.

A summary (:class:`FileInfo` with its :class:`ClassInfo` and :class:`RawField` records)
depends only on the file's bytes and its path relative to the project root. The scanner
(:mod:`workbench.project._scan`) makes it, the caches (:mod:`workbench.project._cache`)
keep it, and the linker (:mod:`workbench.project._link`) reads it.

The JSON form is positional lists, validated on the way back in: the cache file may have
been damaged or edited, and a wrong type must not reach the linker. A literal that JSON
lacks (tuple, set, bytes, ...) is tagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.project.ranges import Range

__all__ = [
    "BadSummary",
    "ClassInfo",
    "FileInfo",
    "RawField",
    "decode_file",
    "decode_value",
    "encode_file",
    "encode_value",
    "module_of",
]

_MAX_INT_BITS = 4000 * 3  # ints json can write and read back (well below 4300 digits)


@dataclass
class RawField:
    """A dataclass field as written: annotation text, default, and how to expand it."""

    name: str
    type: str
    type_ref: str | None = None  # dotted name when the annotation is a plain (class) name
    has_default: bool = False
    default: Any = None
    default_source: str = ""
    factory_ref: str | None = None  # OptimConfig in `field(default_factory=OptimConfig)`
    factory_kwargs: dict[str, Any] = field(default_factory=dict)  # OptimConfig(lr=0.1)
    help: str = ""
    line: int = 0
    range: Range | None = None  # Annotated[int, Range(1, None)]
    problem: str = ""  # what is wrong with the declaration (a Range that cannot be read)


@dataclass(eq=False)
class ClassInfo:
    """A class statement: its bases, docstring, methods and (for dataclasses) fields."""

    name: str
    qualname: str
    line: int
    bases: tuple[str | None, ...]  # dotted names; None for a base that is not a name
    base_texts: tuple[str, ...]
    doc: str | None
    abstract_flag: bool | None = None
    defined: frozenset[str] = frozenset()
    abstract_methods: frozenset[str] = frozenset()
    is_dataclass: bool = False
    fields: tuple[RawField, ...] = ()
    config: ClassInfo | None = None  # the nested `class Config`
    config_alias: str | None = None  # `Config = SomeDataclass`
    # Declared names, as literal tuples (None: not declared in this class's body):
    eval_fields: tuple[str, ...] | None = None  # `eval_fields = ("threshold",)`
    steps: tuple[str, ...] | None = None  # `steps = ("fit", "test")`
    declare_problems: tuple[tuple[int, str], ...] = ()  # (line, message) of a declaration refused


@dataclass(eq=False)
class FileInfo:
    """One parsed file: its module name, import bindings and top-level classes."""

    path: Path
    rel: str
    module: str
    package: str
    bindings: dict[str, str] = field(default_factory=dict)  # local name -> dotted target
    stars: tuple[str, ...] = ()
    classes: dict[str, ClassInfo] = field(default_factory=dict)
    error: tuple[int, str] | None = None


def module_of(rel: str) -> tuple[str, str]:
    """Return (module, package) for a root-relative path like ``tasks/sub/x.py``."""
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


class BadSummary(Exception):
    """A stored summary (or value) that does not have the expected shape."""


# ------------------------------------------------------------------------- JSON form


def encode_value(value: Any) -> Any:
    """A literal (what ``ast.literal_eval`` returns) as JSON; tagged when JSON lacks it."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float:
        return value
    if kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise BadSummary
        return value
    if kind is list:
        return [encode_value(v) for v in value]
    if kind is tuple:
        return {"t": [encode_value(v) for v in value]}
    if kind is dict:
        return {"d": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if kind is set:
        return {"s": [encode_value(v) for v in value]}
    if kind is frozenset:
        return {"f": [encode_value(v) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if value is Ellipsis:
        return {"e": 0}
    raise BadSummary


def decode_value(value: Any) -> Any:
    """The literal :func:`encode_value` wrote (raises BadSummary on a wrong shape)."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int or kind is float:
        return value
    if kind is list:
        return [decode_value(v) for v in value]
    if kind is not dict or len(value) != 1:
        raise BadSummary
    ((tag, item),) = value.items()
    if tag == "t":
        return tuple(decode_value(v) for v in _list(item))
    if tag == "d":
        return {decode_value(k): decode_value(v) for k, v in _list(item)}
    if tag == "s":
        return {decode_value(v) for v in _list(item)}
    if tag == "f":
        return frozenset(decode_value(v) for v in _list(item))
    if tag == "b":
        return bytes.fromhex(_str(item))
    if tag == "c":
        real, imag = _list(item)
        if type(real) is not float or type(imag) is not float:
            raise BadSummary
        return complex(real, imag)
    if tag == "e":
        return Ellipsis
    raise BadSummary


def _str(value: Any) -> str:
    if type(value) is not str:
        raise BadSummary
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise BadSummary
    return value


def _strs(value: Any) -> list[str]:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise BadSummary
    return value


def encode_file(info: FileInfo) -> list[Any]:
    """The JSON form of a summary (its path and names are left out: the cache key holds them).

    Raises:
        BadSummary: A default that JSON cannot hold (e.g. an int of thousands of digits).
    """
    return [
        info.bindings,
        list(info.stars),
        [_encode_class(c) for c in info.classes.values()],
        list(info.error) if info.error is not None else None,
    ]


def decode_file(raw: Any, path: Path, rel: str) -> FileInfo:
    """Rebuild a summary from :func:`encode_file`'s form (``path``, ``rel``: the file's names).

    Raises:
        BadSummary: ``raw`` does not have the expected shape (also TypeError, ValueError
            and the like, for a list of the wrong length).
    """
    module, package = module_of(rel)
    bindings, stars, classes, error = raw
    if type(bindings) is not dict or not all(type(v) is str for v in bindings.values()):
        raise BadSummary
    info = FileInfo(path=path, rel=rel, module=module, package=package, bindings=bindings, stars=tuple(_strs(stars)))
    for item in _list(classes):
        cls = _decode_class(item)
        info.classes[cls.name] = cls
    if error is not None:
        line, message = _list(error)
        if type(line) is not int or type(message) is not str:
            raise BadSummary
        info.error = (line, message)
    return info


def _encode_class(cls: ClassInfo) -> list[Any]:
    return [
        cls.name,
        cls.qualname,
        cls.line,
        list(cls.bases),
        list(cls.base_texts),
        cls.doc,
        cls.abstract_flag,
        sorted(cls.defined),
        sorted(cls.abstract_methods),
        cls.is_dataclass,
        [_encode_field(f) for f in cls.fields],
        _encode_class(cls.config) if cls.config is not None else None,
        cls.config_alias,
        list(cls.eval_fields) if cls.eval_fields is not None else None,
        list(cls.steps) if cls.steps is not None else None,
        [list(p) for p in cls.declare_problems],
    ]


def _decode_class(raw: Any) -> ClassInfo:
    (name, qualname, line, bases, base_texts, doc, flag, defined, abstract, is_dc, fields, config, alias,
     eval_fields, steps, problems) = raw
    if (
        type(name) is not str
        or type(qualname) is not str
        or type(line) is not int
        or (doc is not None and type(doc) is not str)
        or (flag is not None and type(flag) is not bool)
        or type(is_dc) is not bool
        or (alias is not None and type(alias) is not str)
        or not all(b is None or type(b) is str for b in _list(bases))
    ):
        raise BadSummary
    return ClassInfo(
        name,
        qualname,
        line,
        tuple(bases),
        tuple(_strs(base_texts)),
        doc,
        flag,
        frozenset(_strs(defined)),
        frozenset(_strs(abstract)),
        is_dc,
        tuple([_decode_field(f) for f in _list(fields)]),
        _decode_class(config) if config is not None else None,
        alias,
        tuple(_strs(eval_fields)) if eval_fields is not None else None,
        tuple(_strs(steps)) if steps is not None else None,
        tuple(_problem(p) for p in _list(problems)),
    )


def _problem(raw: Any) -> tuple[int, str]:
    line, message = _list(raw)
    if type(line) is not int or type(message) is not str:
        raise BadSummary
    return line, message


def _encode_range(found: Range) -> list[Any]:
    return [found.low, found.high, found.low_open, found.high_open, found.finite]


def _decode_range(raw: Any) -> Range:
    low, high, low_open, high_open, finite = _list(raw)
    if not all(b is None or type(b) is int or type(b) is float for b in (low, high)):
        raise BadSummary
    try:
        return Range(low, high, low_open=low_open, high_open=high_open, finite=finite)
    except (TypeError, ValueError):  # a flag that is not a bool, bounds the wrong way round
        raise BadSummary from None


def _encode_field(raw: RawField) -> list[Any]:
    return [
        raw.name,
        raw.type,
        raw.type_ref,
        raw.has_default,
        encode_value(raw.default),
        raw.default_source,
        raw.factory_ref,
        [[k, encode_value(v)] for k, v in raw.factory_kwargs.items()],
        raw.help,
        raw.line,
        _encode_range(raw.range) if raw.range is not None else None,
        raw.problem,
    ]


def _decode_field(raw: Any) -> RawField:
    name, type_text, type_ref, has_default, default, source, factory_ref, kwargs, help_text, line, bounds, problem = raw
    if (
        type(name) is not str
        or type(type_text) is not str
        or (type_ref is not None and type(type_ref) is not str)
        or type(has_default) is not bool
        or type(source) is not str
        or (factory_ref is not None and type(factory_ref) is not str)
        or type(help_text) is not str
        or type(line) is not int
        or type(problem) is not str
    ):
        raise BadSummary
    if bounds is not None:
        bounds = _decode_range(bounds)
    if default is not None and type(default) is not str and type(default) is not int and type(default) is not float:
        default = decode_value(default)
    return RawField(
        name,
        type_text,
        type_ref,
        has_default,
        default,
        source,
        factory_ref,
        {_str(k): decode_value(v) for k, v in _list(kwargs)} if kwargs else {},
        help_text,
        line,
        bounds,
        problem,
    )
