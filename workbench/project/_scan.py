"""Per-file pass of task discovery: what one Python file imports and which classes it has.

Nothing here knows about other files; :mod:`workbench.project.discovery` links the
summaries together. A summary depends only on the file's bytes and its path relative to
the project root, so it is cached by (path, mtime, size): re-discovering an unchanged
project (the TUI does it whenever a file changes) parses only the files that changed.
"""

from __future__ import annotations

import ast
import os
import threading
from stat import S_ISREG
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ClassInfo", "FileInfo", "RawField", "clear_cache", "scan_file"]

_FACTORY_LITERALS: dict[str, Any] = {"list": [], "dict": {}, "tuple": ()}
_SKIP_ANNOTATIONS = {"ClassVar", "InitVar", "KW_ONLY"}


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


def _dotted(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _text(node: ast.expr) -> str:
    """Source text of an expression (names without the cost of ast.unparse)."""
    return _dotted(node) or ast.unparse(node)


def _decorator_name(node: ast.expr) -> str:
    return _dotted(node.func if isinstance(node, ast.Call) else node) or ""


def _module_of(rel: str) -> tuple[str, str]:
    """Return (module, package) for a root-relative path like ``tasks/sub/x.py``."""
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


class _FileScanner:
    def __init__(self, info: FileInfo, lines: list[str]) -> None:
        self.info = info
        self.lines = lines

    # -- imports -------------------------------------------------------------------------
    def absolute(self, module: str | None, level: int) -> str | None:
        if level == 0:
            return module
        package = self.info.package.split(".") if self.info.package else []
        if level - 1 > len(package):
            return None
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, module] if module else base) or None

    def visit_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        bindings = self.info.bindings
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.asname:
                    bindings[alias.asname] = alias.name
                else:
                    head = alias.name.split(".")[0]
                    bindings[head] = head
            return
        module = self.absolute(stmt.module, stmt.level)
        if module is None:
            return
        for alias in stmt.names:
            if alias.name == "*":
                self.info.stars += (module,)
            else:
                bindings[alias.asname or alias.name] = f"{module}.{alias.name}"

    # -- classes -------------------------------------------------------------------------
    def scan_class(self, node: ast.ClassDef, qualname: str, wants_fields: bool) -> ClassInfo:
        is_dataclass = any(_decorator_name(d).endswith("dataclass") for d in node.decorator_list)
        defined: set[str] = set()
        abstract: set[str] = set()
        info = ClassInfo(
            name=node.name,
            qualname=qualname,
            line=node.lineno,
            bases=tuple(_dotted(b) for b in node.bases),
            base_texts=tuple(_text(b) for b in node.bases),
            doc=ast.get_docstring(node),
            is_dataclass=is_dataclass,
        )
        fields: list[RawField] = []
        body = node.body
        for index, stmt in enumerate(body):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defined.add(stmt.name)
                if any(_decorator_name(d).split(".")[-1] in ("abstractmethod", "abstractproperty") for d in stmt.decorator_list):
                    abstract.add(stmt.name)
            elif isinstance(stmt, ast.ClassDef):
                defined.add(stmt.name)
                if stmt.name == "Config":
                    info.config = self.scan_class(stmt, f"{qualname}.Config", wants_fields=True)
            elif isinstance(stmt, ast.Assign):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        defined.add(target.id)
                        self.class_attribute(info, target.id, stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                name = stmt.target.id
                if stmt.value is not None:
                    defined.add(name)
                    self.class_attribute(info, name, stmt.value)
                if wants_fields or is_dataclass:
                    raw = self.field(stmt, body[index + 1] if index + 1 < len(body) else None)
                    if raw is not None:
                        fields.append(raw)
        info.defined = frozenset(defined)
        info.abstract_methods = frozenset(abstract)
        info.fields = tuple(fields)
        return info

    @staticmethod
    def class_attribute(info: ClassInfo, name: str, value: ast.expr) -> None:
        if name == "abstract" and isinstance(value, ast.Constant) and isinstance(value.value, bool):
            info.abstract_flag = value.value
        elif name == "Config":
            info.config_alias = _dotted(value)

    # -- dataclass fields ----------------------------------------------------------------
    def field(self, stmt: ast.AnnAssign, after: ast.stmt | None) -> RawField | None:
        annotation = stmt.annotation
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            type_text = annotation.value.strip()
            try:
                annotation = ast.parse(type_text, mode="eval").body
            except SyntaxError:
                annotation = ast.Name(id="__unknown__")
        else:
            type_text = _text(annotation)
        head = annotation.value if isinstance(annotation, ast.Subscript) else annotation
        if (_dotted(head) or "").split(".")[-1] in _SKIP_ANNOTATIONS:
            return None
        assert isinstance(stmt.target, ast.Name)
        raw = RawField(name=stmt.target.id, type=type_text, type_ref=_dotted(annotation))
        value = stmt.value
        if value is not None and isinstance(value, ast.Call) and (_dotted(value.func) or "").split(".")[-1] == "field":
            keywords = {k.arg: k.value for k in value.keywords if k.arg}
            init = keywords.get("init")
            if isinstance(init, ast.Constant) and init.value is False:
                return None
            if "default" in keywords:
                self.default(raw, keywords["default"])
            elif "default_factory" in keywords:
                self.factory(raw, keywords["default_factory"])
            metadata = keywords.get("metadata")
            if isinstance(metadata, ast.Dict):
                for key, item in zip(metadata.keys, metadata.values):
                    if isinstance(key, ast.Constant) and key.value == "help" and isinstance(item, ast.Constant):
                        raw.help = str(item.value)
        elif value is not None:
            self.default(raw, value)
        if not raw.help:
            raw.help = self.help(stmt, after)
        return raw

    @staticmethod
    def default(raw: RawField, value: ast.expr) -> None:
        raw.has_default = True
        try:
            raw.default = ast.literal_eval(value)
            return
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            pass
        raw.default_source = ast.unparse(value)
        if isinstance(value, ast.Call):  # OptimConfig(lr=0.1): a nested dataclass default
            _call_kwargs(raw, value)

    def factory(self, raw: RawField, value: ast.expr) -> None:
        raw.has_default = True
        name = _dotted(value)
        if name in _FACTORY_LITERALS:
            raw.default = type(_FACTORY_LITERALS[name])()
            return
        if isinstance(value, ast.Lambda) and not value.args.args:
            body = value.body
            try:
                raw.default = ast.literal_eval(body)
                return
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                if isinstance(body, ast.Call):
                    _call_kwargs(raw, body)
        elif name is not None:
            raw.factory_ref = name
        raw.default_source = f"{ast.unparse(value)}()" if name else ast.unparse(value)

    def help(self, stmt: ast.AnnAssign, after: ast.stmt | None) -> str:
        if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
            return " ".join(after.value.value.split())
        end = (stmt.end_lineno or stmt.lineno) - 1
        if end >= len(self.lines):
            return ""
        line = self.lines[end]
        offset = stmt.end_col_offset or 0
        rest = line.encode("utf-8")[offset:].decode("utf-8", "replace") if not line.isascii() else line[offset:]
        rest = rest.strip()
        return rest[1:].strip() if rest.startswith("#") else ""

    # -- module --------------------------------------------------------------------------
    def visit_body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.visit_import(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.info.classes[stmt.name] = self.scan_class(stmt, stmt.name, wants_fields=False)
            elif isinstance(stmt, ast.If):
                self.visit_body(stmt.body)
                self.visit_body(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                self.visit_body(stmt.body)
                for handler in stmt.handlers:
                    self.visit_body(handler.body)
                self.visit_body(stmt.orelse)
                self.visit_body(stmt.finalbody)


def _call_kwargs(raw: RawField, call: ast.Call) -> None:
    raw.factory_ref = _dotted(call.func)
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        try:
            raw.factory_kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue


def _scan(path: Path, rel: str) -> FileInfo:
    module, package = _module_of(rel)
    info = FileInfo(path=path, rel=rel, module=module, package=package)
    try:
        data = path.read_bytes()
    except OSError as exc:
        info.error = (0, f"cannot read: {exc.strerror or exc}")
        return info
    try:
        tree = ast.parse(data, filename=rel)
    except SyntaxError as exc:
        info.error = (exc.lineno or 0, f"syntax error: {exc.msg}")
        return info
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, bad encoding
        info.error = (0, f"cannot parse: {exc}")
        return info
    except RecursionError:
        info.error = (0, "cannot parse: the code is nested too deeply")
        return info
    lines = data.decode("utf-8", "replace").splitlines()
    _FileScanner(info, lines).visit_body(tree.body)
    return info


_cache: dict[tuple[str, str], tuple[int, int, FileInfo]] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 10_000


def scan_file(path: Path, rel: str) -> FileInfo | None:
    """Summarise one file, reusing the cached summary while its mtime and size match.

    Args:
        path: The file's absolute path.
        rel: Its path relative to the project root, with ``/`` separators.

    Returns:
        The file's summary (with ``error`` set when it cannot be read or parsed), or
        None when ``path`` is not a regular file (a folder named ``x.py``). The caller
        must not change it: it may be shared through the cache.
    """
    key = (str(path), rel)
    try:
        stat = os.stat(path)
    except OSError:
        return _scan(path, rel)
    if not S_ISREG(stat.st_mode):
        return None
    stamp = (stat.st_mtime_ns, stat.st_size)
    hit = _cache.get(key)
    if hit is not None and hit[:2] == stamp:
        return hit[2]
    info = _scan(path, rel)
    with _cache_lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = (*stamp, info)
    return info


def clear_cache() -> None:
    """Forget every cached summary (the benchmark uses it to time a cold run)."""
    with _cache_lock:
        _cache.clear()
