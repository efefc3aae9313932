"""Per-file pass of task discovery: what one Python file imports and which classes it has.

:func:`scan_bytes` parses a file's bytes with :mod:`ast` (never importing it) into a
:class:`~workbench.project._summary.FileInfo`: the file's import bindings, and for each
top-level class its bases, docstring, methods, and (for dataclasses and ``Config``
classes) its fields with their types, literal defaults, help and ranges
(``Annotated[int, Range(1, None)]``: the type is read as ``int``). Nothing here knows
about other files: :mod:`workbench.project._link` links the summaries together, and
:mod:`workbench.project._cache` keeps them while the files are unchanged.
"""

from __future__ import annotations

import ast
from inspect import cleandoc
from pathlib import Path
from typing import Any

from workbench.project._summary import ClassInfo, FileInfo, RawField, module_of
from workbench.project.ranges import Range, range_problem

__all__ = ["scan_bytes", "unreadable"]

_FACTORY_LITERALS: dict[str, Any] = {"list": [], "dict": {}, "tuple": ()}
_SKIP_ANNOTATIONS = {"ClassVar", "InitVar", "KW_ONLY"}
_ABSTRACT_DECORATORS = {"abstractmethod", "abstractproperty"}
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)

# ast node classes, bound once: the scanner dispatches on ``type(node) is X``.
_Assign, _AnnAssign, _Attribute, _Call, _ClassDef = ast.Assign, ast.AnnAssign, ast.Attribute, ast.Call, ast.ClassDef
_Constant, _Dict, _Expr, _If, _Import, _ImportFrom = ast.Constant, ast.Dict, ast.Expr, ast.If, ast.Import, ast.ImportFrom
_Lambda, _Name, _Subscript, _Try, _Tuple = ast.Lambda, ast.Name, ast.Subscript, ast.Try, ast.Tuple
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _dotted(node: ast.expr) -> str | None:
    kind = type(node)
    if kind is _Name:
        return node.id  # type: ignore[attr-defined,no-any-return]
    if kind is not _Attribute:
        return None
    parts: list[str] = []
    while type(node) is _Attribute:
        parts.append(node.attr)  # type: ignore[attr-defined]
        node = node.value  # type: ignore[attr-defined]
    if type(node) is _Name:
        parts.append(node.id)  # type: ignore[attr-defined]
        return ".".join(reversed(parts))
    return None


def _decorator_name(node: ast.expr) -> str:
    return _dotted(node.func if type(node) is _Call else node) or ""  # type: ignore[attr-defined]


def _last(dotted: str | None) -> str:
    return dotted.rpartition(".")[2] if dotted else ""


def _docstring(body: list[ast.stmt]) -> str | None:
    """``ast.get_docstring`` of a class, from its body."""
    if body and type(body[0]) is _Expr:
        value = body[0].value  # type: ignore[attr-defined]
        if type(value) is _Constant and isinstance(value.value, str):
            return cleandoc(value.value)
    return None


class _FileScanner:
    """Reads the statements that matter: top-level imports and classes, and class bodies.

    Function bodies and other statements are never visited.
    """

    def __init__(self, info: FileInfo, data: bytes) -> None:
        self.info = info
        self.data = data
        self._lines: list[bytes] | None = None

    # -- imports -------------------------------------------------------------------------
    def absolute(self, module: str | None, level: int) -> str | None:
        if level == 0:
            return module
        package = self.info.package.split(".") if self.info.package else []
        if level - 1 > len(package):
            return None
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, module] if module else base) or None

    def visit_import(self, stmt: ast.Import) -> None:
        bindings = self.info.bindings
        for alias in stmt.names:
            if alias.asname:
                bindings[alias.asname] = alias.name
            else:
                head = alias.name.partition(".")[0]
                bindings[head] = head

    def visit_import_from(self, stmt: ast.ImportFrom) -> None:
        module = self.absolute(stmt.module, stmt.level)
        if module is None:
            return
        bindings = self.info.bindings
        for alias in stmt.names:
            if alias.name == "*":
                self.info.stars += (module,)
            else:
                bindings[alias.asname or alias.name] = f"{module}.{alias.name}"

    # -- classes -------------------------------------------------------------------------
    def scan_class(self, node: ast.ClassDef, qualname: str, wants_fields: bool) -> ClassInfo:
        decorators = node.decorator_list
        is_dataclass = bool(decorators) and any(_decorator_name(d).endswith("dataclass") for d in decorators)
        bases = tuple([_dotted(b) for b in node.bases])
        texts = bases if None not in bases else tuple([d or ast.unparse(b) for d, b in zip(bases, node.bases)])
        body = node.body
        info = ClassInfo(node.name, qualname, node.lineno, bases, texts, _docstring(body), is_dataclass=is_dataclass)  # type: ignore[arg-type]
        defined: set[str] = set()
        abstract: set[str] = set()
        fields: list[RawField] = []
        wants_fields = wants_fields or is_dataclass
        for index, stmt in enumerate(body):
            kind = type(stmt)
            if kind in _FUNCTIONS:
                name = stmt.name  # type: ignore[attr-defined]
                defined.add(name)
                for decorator in stmt.decorator_list:  # type: ignore[attr-defined]
                    if _last(_decorator_name(decorator)) in _ABSTRACT_DECORATORS:
                        abstract.add(name)
                        break
            elif kind is _AnnAssign:
                target = stmt.target  # type: ignore[attr-defined]
                if type(target) is not _Name:
                    continue
                name = target.id
                if stmt.value is not None:  # type: ignore[attr-defined]
                    defined.add(name)
                    self.class_attribute(info, name, stmt.value)  # type: ignore[attr-defined]
                if wants_fields:
                    raw = self.field(stmt, body[index + 1] if index + 1 < len(body) else None)  # type: ignore[arg-type]
                    if raw is not None:
                        fields.append(raw)
            elif kind is _Assign:
                for target in stmt.targets:  # type: ignore[attr-defined]
                    if type(target) is _Name:
                        defined.add(target.id)
                        self.class_attribute(info, target.id, stmt.value)  # type: ignore[attr-defined]
            elif kind is _ClassDef:
                defined.add(stmt.name)  # type: ignore[attr-defined]
                if stmt.name == "Config":  # type: ignore[attr-defined]
                    info.config = self.scan_class(stmt, f"{qualname}.Config", wants_fields=True)  # type: ignore[arg-type]
        info.defined = frozenset(defined)
        info.abstract_methods = frozenset(abstract)
        info.fields = tuple(fields)
        return info

    @staticmethod
    def class_attribute(info: ClassInfo, name: str, value: ast.expr) -> None:
        if name == "abstract":
            if type(value) is _Constant and isinstance(value.value, bool):  # type: ignore[attr-defined]
                info.abstract_flag = value.value  # type: ignore[attr-defined]
        elif name == "Config":
            info.config_alias = _dotted(value)
        elif name in _NAME_TUPLES and not info.is_dataclass and info.name != "Config":
            names, problem = _name_tuple(value)
            setattr(info, name, names)
            if problem:
                info.declare_problems += ((value.lineno, f"{name}: {problem}"),)

    # -- dataclass fields ----------------------------------------------------------------
    def field(self, stmt: ast.AnnAssign, after: ast.stmt | None) -> RawField | None:
        annotation = stmt.annotation
        if type(annotation) is _Constant and isinstance(annotation.value, str):  # type: ignore[attr-defined]
            type_text = annotation.value.strip()  # type: ignore[attr-defined]
            try:
                annotation = ast.parse(type_text, mode="eval").body
            except SyntaxError:
                annotation = ast.Name(id="__unknown__")
            type_ref = _dotted(annotation)
        else:
            type_ref = _dotted(annotation)
            type_text = type_ref or ast.unparse(annotation)
        head = _last(_dotted(annotation.value)) if type(annotation) is _Subscript else ""  # type: ignore[attr-defined]
        if head in _SKIP_ANNOTATIONS or (not head and _last(type_ref) in _SKIP_ANNOTATIONS):
            return None
        raw = RawField(name=stmt.target.id, type=type_text, type_ref=type_ref, line=stmt.lineno)  # type: ignore[attr-defined]
        if head == "Annotated" and type(annotation.slice) is _Tuple and annotation.slice.elts:  # type: ignore[attr-defined]
            inner, *extras = annotation.slice.elts  # type: ignore[attr-defined]
            raw.type_ref = _dotted(inner)
            raw.type = raw.type_ref or ast.unparse(inner)  # the text the runtime side gives
            for extra in extras:
                if type(extra) is _Call and _last(_dotted(extra.func)) == "Range":  # type: ignore[attr-defined]
                    if raw.range is not None or raw.problem:
                        raw.range, raw.problem = None, "more than one Range in the annotation"
                        break
                    _read_range(raw, extra)  # type: ignore[arg-type]
        elif "Range(" in type_text:
            raw.problem = "a Range is read only as Annotated[TYPE, Range(...)] around the whole type"
        value = stmt.value
        if value is not None and type(value) is _Call and _last(_dotted(value.func)) == "field":  # type: ignore[attr-defined]
            keywords = {k.arg: k.value for k in value.keywords if k.arg}  # type: ignore[attr-defined]
            init = keywords.get("init")
            if type(init) is _Constant and init.value is False:  # type: ignore[attr-defined]
                return None
            if "default" in keywords:
                self.default(raw, keywords["default"])
            elif "default_factory" in keywords:
                self.factory(raw, keywords["default_factory"])
            metadata = keywords.get("metadata")
            if type(metadata) is _Dict:
                for key, item in zip(metadata.keys, metadata.values):  # type: ignore[attr-defined]
                    if type(key) is _Constant and key.value == "help" and type(item) is _Constant:  # type: ignore[attr-defined]
                        raw.help = str(item.value)  # type: ignore[attr-defined]
        elif value is not None:
            self.default(raw, value)
        if not raw.help:
            raw.help = self.help(stmt, after)
        if raw.range is not None and raw.has_default and not raw.default_source:
            found = range_problem(raw.default, raw.range)
            if found is not None:
                where, number, why = found
                raw.problem = f"the default {number!r}{f' (at {where})' if where else ''} is refused: {why}"
        return raw

    @staticmethod
    def default(raw: RawField, value: ast.expr) -> None:
        raw.has_default = True
        if type(value) is _Constant:  # what ast.literal_eval returns for a constant
            raw.default = value.value  # type: ignore[attr-defined]
            return
        try:
            raw.default = ast.literal_eval(value)
            return
        except _LITERAL_ERRORS:
            pass
        raw.default_source = ast.unparse(value)
        if type(value) is _Call:  # OptimConfig(lr=0.1): a nested dataclass default
            _call_kwargs(raw, value)  # type: ignore[arg-type]

    @staticmethod
    def factory(raw: RawField, value: ast.expr) -> None:
        raw.has_default = True
        name = _dotted(value)
        if name in _FACTORY_LITERALS:
            raw.default = type(_FACTORY_LITERALS[name])()
            return
        if type(value) is _Lambda and not value.args.args:  # type: ignore[attr-defined]
            body = value.body  # type: ignore[attr-defined]
            try:
                raw.default = ast.literal_eval(body)
                return
            except _LITERAL_ERRORS:
                if type(body) is _Call:
                    _call_kwargs(raw, body)
        elif name is not None:
            raw.factory_ref = name
        raw.default_source = f"{name}()" if name else ast.unparse(value)

    def help(self, stmt: ast.AnnAssign, after: ast.stmt | None) -> str:
        """The field's help: a docstring on the next line, else a comment after it."""
        if type(after) is _Expr:
            value = after.value  # type: ignore[union-attr]
            if type(value) is _Constant and isinstance(value.value, str):  # type: ignore[attr-defined]
                return " ".join(value.value.split())  # type: ignore[attr-defined]
        lines = self._lines
        if lines is None:  # split only in files that have fields, and once
            lines = self._lines = self.data.splitlines()
        end = (stmt.end_lineno or stmt.lineno) - 1
        if end >= len(lines):
            return ""
        line = lines[end]
        if b"#" not in line:
            return ""
        offset = stmt.end_col_offset or 0  # in UTF-8 bytes
        if not line.isascii():
            line = line.decode("utf-8", "replace").encode("utf-8")
        rest = line[offset:].decode("utf-8", "replace").strip()
        return rest[1:].strip() if rest.startswith("#") else ""

    # -- module --------------------------------------------------------------------------
    def visit_body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            kind = type(stmt)
            if kind is _ImportFrom:
                self.visit_import_from(stmt)  # type: ignore[arg-type]
            elif kind is _ClassDef:
                self.info.classes[stmt.name] = self.scan_class(stmt, stmt.name, wants_fields=False)  # type: ignore[attr-defined,arg-type]
            elif kind is _Import:
                self.visit_import(stmt)  # type: ignore[arg-type]
            elif kind is _If:
                self.visit_body(stmt.body)  # type: ignore[attr-defined]
                self.visit_body(stmt.orelse)  # type: ignore[attr-defined]
            elif kind is _Try:
                self.visit_body(stmt.body)  # type: ignore[attr-defined]
                for handler in stmt.handlers:  # type: ignore[attr-defined]
                    self.visit_body(handler.body)
                self.visit_body(stmt.orelse)  # type: ignore[attr-defined]
                self.visit_body(stmt.finalbody)  # type: ignore[attr-defined]


#: Class attributes read as literal tuples of names: the eval-time config fields a task lets
#: ``workbench test``/``eval`` change, and the steps of its pipeline.
_NAME_TUPLES = ("eval_fields", "steps")


def _name_tuple(value: ast.expr) -> tuple[tuple[str, ...], str]:
    """A literal tuple (or list) of strings; else ``()`` and why it was not read."""
    try:
        found = ast.literal_eval(value)
    except _LITERAL_ERRORS:
        return (), f"cannot read {ast.unparse(value)[:60]}: write a literal tuple of names, e.g. (\"lr\", \"seed\")"
    if isinstance(found, str):
        return (), f"{found!r} is one string, not a tuple of names: write ({found!r},)"
    if not isinstance(found, (tuple, list)) or not all(isinstance(item, str) for item in found):
        return (), f"cannot read {ast.unparse(value)[:60]}: write a literal tuple of names"
    return tuple(found), ""


_RANGE_KEYWORDS = ("low", "high", "low_open", "high_open", "finite")


def _read_range(raw: RawField, call: ast.Call) -> None:
    """Read ``Range(low, high, low_open=..., high_open=..., finite=...)`` into ``raw``.

    The bounds (by position or keyword) must be literal numbers or None, the flags
    (keywords only) literal ``True`` or ``False``.
    """
    if len(call.args) > 2 or any(k.arg not in _RANGE_KEYWORDS for k in call.keywords):
        raw.problem = f"cannot read {ast.unparse(call)}: Range takes low, high, low_open, high_open and finite"
        return
    given = dict(zip(("low", "high"), call.args))
    bounds: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg in given:
            raw.problem = f"cannot read {ast.unparse(call)}: {keyword.arg} is given twice"
            return
        given[keyword.arg] = keyword.value  # type: ignore[index]
    for side, node in given.items():
        try:
            bounds[side] = ast.literal_eval(node)
        except _LITERAL_ERRORS:
            what = "bounds must be literal numbers or None" if side in ("low", "high") else f"{side} must be True or False"
            raw.problem = f"cannot read {ast.unparse(call)}: Range {what}"
            return
    try:
        raw.range = Range(**bounds)
    except (TypeError, ValueError) as exc:
        raw.problem = f"cannot read {ast.unparse(call)}: {exc}"


def _call_kwargs(raw: RawField, call: ast.Call) -> None:
    raw.factory_ref = _dotted(call.func)
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        try:
            raw.factory_kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except _LITERAL_ERRORS:
            continue


def scan_bytes(path: Path, rel: str, data: bytes) -> FileInfo:
    """Summarise a file from its bytes.

    Args:
        path: The file's absolute path (kept in the summary).
        rel: Its path relative to the project root, with ``/`` separators.
        data: The file's content.

    Returns:
        The summary; ``error`` is set (and nothing else) when the file does not parse.
    """
    module, package = module_of(rel)
    info = FileInfo(path=path, rel=rel, module=module, package=package)
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
    _FileScanner(info, data).visit_body(tree.body)
    return info


def unreadable(path: Path, rel: str, exc: OSError) -> FileInfo:
    """The summary of a file that cannot be read: only an error."""
    module, package = module_of(rel)
    return FileInfo(path=path, rel=rel, module=module, package=package, error=(0, f"cannot read: {exc.strerror or exc}"))
