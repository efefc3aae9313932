"""Per-file pass of task discovery: what one Python file imports and which classes it has.

Nothing here knows about other files; :mod:`workbench.project.discovery` links the
summaries together. A summary depends only on the file's bytes and its path relative to
the project root, so it is cached, in memory (re-discovering an unchanged project, as the
TUI does whenever a file changes, parses only the files that changed) and, for a project,
on disk in ``<state_dir>/cache/discovery-v1.json`` (every CLI command is a new process).

A cache entry is trusted on its stamp alone (mtime, ctime and size) only when the file was
last changed a while before it was read (:data:`_RACY_NS`); a file changed more recently
could change again within the same timestamp tick, so it is read again and compared by
digest. The disk cache is JSON, never pickle: it lives in a folder users can write to, and
a damaged or foreign cache is ignored and rebuilt.
"""

from __future__ import annotations

import ast
import gc
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from inspect import cleandoc
from pathlib import Path
from stat import S_ISREG
from typing import Any

__all__ = [
    "CACHE_FILE",
    "ClassInfo",
    "DiskCache",
    "FileInfo",
    "RawField",
    "clear_cache",
    "no_gc",
    "scan_file",
]

_FACTORY_LITERALS: dict[str, Any] = {"list": [], "dict": {}, "tuple": ()}
_SKIP_ANNOTATIONS = {"ClassVar", "InitVar", "KW_ONLY"}
_ABSTRACT_DECORATORS = {"abstractmethod", "abstractproperty"}
_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)

# ast node classes, bound once: the scanner dispatches on ``type(node) is X``.
_Assign, _AnnAssign, _Attribute, _Call, _ClassDef = ast.Assign, ast.AnnAssign, ast.Attribute, ast.Call, ast.ClassDef
_Constant, _Dict, _Expr, _If, _Import, _ImportFrom = ast.Constant, ast.Dict, ast.Expr, ast.If, ast.Import, ast.ImportFrom
_Lambda, _Name, _Subscript, _Try = ast.Lambda, ast.Name, ast.Subscript, ast.Try
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


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


def _text(node: ast.expr) -> str:
    """Source text of an expression (names without the cost of ast.unparse)."""
    return _dotted(node) or ast.unparse(node)


def _decorator_name(node: ast.expr) -> str:
    return _dotted(node.func if type(node) is _Call else node) or ""  # type: ignore[attr-defined]


def _last(dotted: str | None) -> str:
    return dotted.rpartition(".")[2] if dotted else ""


def _module_of(rel: str) -> tuple[str, str]:
    """Return (module, package) for a root-relative path like ``tasks/sub/x.py``."""
    parts = rel[:-3].split("/") if rel.endswith(".py") else rel.split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
        return ".".join(parts), ".".join(parts)
    return ".".join(parts), ".".join(parts[:-1])


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
        head = annotation.value if type(annotation) is _Subscript else annotation  # type: ignore[attr-defined]
        if _last(_dotted(head)) in _SKIP_ANNOTATIONS:
            return None
        raw = RawField(name=stmt.target.id, type=type_text, type_ref=type_ref)  # type: ignore[attr-defined]
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


def _call_kwargs(raw: RawField, call: ast.Call) -> None:
    raw.factory_ref = _dotted(call.func)
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        try:
            raw.factory_kwargs[keyword.arg] = ast.literal_eval(keyword.value)
        except _LITERAL_ERRORS:
            continue


def _scan_bytes(path: Path, rel: str, data: bytes) -> FileInfo:
    module, package = _module_of(rel)
    info = FileInfo(path=path, rel=rel, module=module, package=package)
    _parse_into(info, data)
    return info


def _parse_into(info: FileInfo, data: bytes) -> None:
    try:
        tree = ast.parse(data, filename=info.rel)
    except SyntaxError as exc:
        info.error = (exc.lineno or 0, f"syntax error: {exc.msg}")
        return
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, bad encoding
        info.error = (0, f"cannot parse: {exc}")
        return
    except RecursionError:
        info.error = (0, "cannot parse: the code is nested too deeply")
        return
    _FileScanner(info, data).visit_body(tree.body)


def _unreadable(path: Path, rel: str, exc: OSError) -> FileInfo:
    module, package = _module_of(rel)
    return FileInfo(path=path, rel=rel, module=module, package=package, error=(0, f"cannot read: {exc.strerror or exc}"))


def _read(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@contextmanager
def no_gc() -> Iterator[None]:
    """Hold off the cyclic garbage collector while summaries are built and linked.

    Parsing allocates many objects (syntax trees: no cycles, freed by reference counting),
    and every 700 allocations would otherwise start a collection that walks them again: a
    few per cent of discovery's time, more in a process with a large heap. The collector
    is re-enabled only if it was enabled before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# ------------------------------------------------------------------------------ caching

Stamp = tuple[int, int, int]  # st_mtime_ns, st_ctime_ns, st_size

# A file changed less than this long before it was read may change again within the same
# timestamp tick (coarse clocks, 1-2 s on some file systems) without its stamp changing:
# its entry is checked against the file's digest until the file has been read later.
_RACY_NS = 2_000_000_000


@dataclass(eq=False)
class _Entry:
    """A summary and what it was made from: the file's stamp and digest when it was read."""

    stamp: Stamp
    digest: str
    clean: bool  # whether the stamp alone vouches for the content (see _RACY_NS)
    info: FileInfo
    encoded: list[Any] | None = None  # ``info`` in the disk cache's JSON form, once made


_cache: dict[tuple[str, str], _Entry] = {}
_cache_lock = threading.Lock()
_CACHE_LIMIT = 10_000


def scan_file(path: Path, rel: str, disk: DiskCache | None = None, key: str | None = None) -> FileInfo | None:
    """Summarise one file, reusing a cached summary while the file is unchanged.

    Args:
        path: The file's absolute path.
        rel: Its path relative to the project root, with ``/`` separators.
        disk: A project's disk cache to read the summary from and record it in.
        key: The file's name in ``disk`` (``rel`` unless given).

    Returns:
        The file's summary (with ``error`` set when it cannot be read or parsed), or
        None when ``path`` is not a regular file (a folder named ``x.py``). The caller
        must not change it: it may be shared through the cache.
    """
    now = time.time_ns()
    try:
        stat = os.stat(path)
    except OSError as exc:
        return _unreadable(path, rel, exc)
    if not S_ISREG(stat.st_mode):
        return None
    stamp = (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
    memory_key = (str(path), rel)
    key = rel if key is None else key
    entry = _cache.get(memory_key)
    if entry is None or not entry.clean or entry.stamp != stamp:
        stored = None
        if disk is not None and (entry is None or entry.stamp != stamp):
            stored = disk.get(key, path, rel)
        if stored is not None and stored.clean and stored.stamp == stamp:
            entry = stored
        else:
            try:
                data = _read(path)
            except OSError as exc:
                return _unreadable(path, rel, exc)
            digest = _digest(data)
            clean = max(stat.st_mtime_ns, stat.st_ctime_ns) < now - _RACY_NS
            same = next((e for e in (entry, stored) if e is not None and e.digest == digest), None)
            if same is not None:  # touched, or read again while racy: the same bytes
                entry = _Entry(stamp, digest, clean, same.info, same.encoded)
            else:
                entry = _Entry(stamp, digest, clean, _scan_bytes(path, rel, data))
        with _cache_lock:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            _cache[memory_key] = entry
    if disk is not None:
        disk.put(key, entry)
    return entry.info


def clear_cache() -> None:
    """Forget every summary cached in memory (the benchmark uses it to time a cold run).

    Disk caches are left alone.
    """
    with _cache_lock:
        _cache.clear()
    with _disk_lock:
        _disk_known.clear()


# ----------------------------------------------------------------------- the disk cache

CACHE_FILE = "discovery-v1.json"
_SCHEMA = 1
_MAX_INT_BITS = 4000 * 3  # ints json can write and read back (well below 4300 digits)

# What this process last read or wrote in each cache file: the file's own stamp and the
# stamps of its entries, so that an unchanged discovery neither reads nor writes it.
_disk_known: dict[str, tuple[tuple[int, int, int], dict[str, tuple[Stamp, str, bool]]]] = {}
_disk_lock = threading.Lock()


_scanner_digest: str | None = None


def _header() -> dict[str, Any]:
    """What a cache file must have been written by: this scanner, on this Python."""
    global _scanner_digest
    if _scanner_digest is None:  # an edited (editable install) scanner makes other summaries
        try:
            _scanner_digest = _digest(_read(Path(__file__)))
        except OSError:
            _scanner_digest = ""
    from workbench import __version__

    return {
        "schema": _SCHEMA,
        "workbench": __version__,
        "scanner": _scanner_digest,
        "python": f"{sys.implementation.name}-{sys.version}",
    }


_UNENCODABLE: list[Any] = []  # marks an entry whose summary JSON cannot hold


class _Bad(Exception):
    """A cache entry (or value) that does not have the expected shape."""


class DiskCache:
    """Per-file summaries of one project kept in a JSON file between processes.

    Entries are looked up by :func:`scan_file` and recorded with :meth:`put`; :meth:`save`
    then writes the file (atomically) with exactly the entries recorded, if anything
    changed. The file is read lazily, on the first summary missing from memory. A file that
    cannot be read, is not JSON, or was written for another root or by another scanner or
    Python version is ignored; a malformed entry is ignored alone. Nothing is ever raised
    for the cache.
    """

    def __init__(self, path: Path | str, root: Path | str = "") -> None:
        self.path = Path(path)
        self.root = str(root)  # the project root the summaries' names are relative to
        self._raw: dict[str, Any] | None = None  # the file's entries, once read
        self._sig: tuple[int, int, int] | None = None  # the file's stamp when read
        self._used: dict[str, _Entry] = {}
        self._damaged = False  # an entry could not be read back: rewrite the file

    # -- reading -------------------------------------------------------------------------
    def _header(self) -> dict[str, Any]:
        return {**_header(), "root": self.root}

    def _file_sig(self) -> tuple[int, int, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _load(self) -> dict[str, Any]:
        if self._raw is not None:
            return self._raw
        self._raw = {}
        self._sig = self._file_sig()
        if self._sig is None:
            return self._raw
        try:
            doc = json.loads(_read(self.path))
        except (OSError, ValueError, RecursionError):
            return self._raw
        if type(doc) is not dict or any(doc.get(k) != v for k, v in self._header().items()):
            return self._raw
        files = doc.get("files")
        if type(files) is dict:
            self._raw = files
        known = {}
        for key, raw in self._raw.items():
            fingerprint = _fingerprint(raw)
            if fingerprint is not None:
                known[key] = fingerprint
        with _disk_lock:
            _disk_known[str(self.path)] = (self._sig, known)
        return self._raw

    def get(self, key: str, path: Path, rel: str) -> _Entry | None:
        """The stored entry of ``key`` (summarising ``path`` as ``rel``), or None."""
        raw = self._load().get(key)
        if raw is None:
            return None
        try:
            stamp = _fingerprint(raw)
            if stamp is None:
                raise _Bad
            module, package = _module_of(rel)
            info = _decode_file(raw[5], path, rel, module, package)
        except (_Bad, TypeError, ValueError, IndexError, KeyError, AttributeError, RecursionError):
            self._damaged = True
            return None
        return _Entry(stamp[0], stamp[1], stamp[2], info, raw[5])

    # -- writing -------------------------------------------------------------------------
    def put(self, key: str, entry: _Entry) -> None:
        """Record that ``key``'s summary is ``entry`` (the file keeps what is recorded)."""
        self._used[key] = entry

    def save(self) -> bool:
        """Write the recorded entries if they differ from the file's; return whether written.

        Nothing is written when the folder cannot be created or written to.
        """
        files: dict[str, list[Any]] = {}
        wanted: dict[str, tuple[Stamp, str, bool]] = {}
        for key, entry in self._used.items():
            if entry.encoded is None:
                try:
                    entry.encoded = _encode_file(entry.info)
                except (_Bad, ValueError, RecursionError):
                    entry.encoded = _UNENCODABLE
            if entry.encoded is _UNENCODABLE:
                continue  # a default JSON cannot hold: that file is parsed each time
            files[key] = [*entry.stamp, entry.digest, entry.clean, entry.encoded]
            wanted[key] = (entry.stamp, entry.digest, entry.clean)
        with _disk_lock:
            known = _disk_known.get(str(self.path))
        sig = self._file_sig()
        if self._raw is None and (known is None or known[0] != sig):
            self._load()  # not read by this process, or changed by another one: compare
            with _disk_lock:
                known = _disk_known.get(str(self.path))
        if not self._damaged and known is not None and known[0] == sig and known[1] == wanted:
            return False
        try:
            text = json.dumps({**self._header(), "files": files}, separators=(",", ":"))
        except (ValueError, TypeError, RecursionError):
            return False
        if not self._write(text.encode("ascii")):
            return False
        sig = self._file_sig()
        if sig is not None:
            with _disk_lock:
                _disk_known[str(self.path)] = (sig, wanted)
        return True

    def _write(self, data: bytes) -> bool:
        folder = self.path.parent
        temp = folder / f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, self.path)
        except OSError:
            try:
                os.unlink(temp)
            except OSError:
                pass
            return False
        return True


def _fingerprint(raw: Any) -> tuple[Stamp, str, bool] | None:
    if type(raw) is not list or len(raw) != 6:
        return None
    mtime, ctime, size, digest, clean = raw[:5]
    if type(mtime) is not int or type(ctime) is not int or type(size) is not int:
        return None
    if type(digest) is not str or type(clean) is not bool:
        return None
    return (mtime, ctime, size), digest, clean


# -- JSON form of a summary. Positional lists, validated on the way back in: the file may
# have been damaged or edited, and a wrong type must not reach the linker.


def _encode_value(value: Any) -> Any:
    """A literal (what ``ast.literal_eval`` returns) as JSON; tagged when JSON lacks it."""
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is float:
        return value
    if kind is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise _Bad
        return value
    if kind is list:
        return [_encode_value(v) for v in value]
    if kind is tuple:
        return {"t": [_encode_value(v) for v in value]}
    if kind is dict:
        return {"d": [[_encode_value(k), _encode_value(v)] for k, v in value.items()]}
    if kind is set:
        return {"s": [_encode_value(v) for v in value]}
    if kind is frozenset:
        return {"f": [_encode_value(v) for v in value]}
    if kind is bytes:
        return {"b": value.hex()}
    if kind is complex:
        return {"c": [value.real, value.imag]}
    if value is Ellipsis:
        return {"e": 0}
    raise _Bad


def _decode_value(value: Any) -> Any:
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int or kind is float:
        return value
    if kind is list:
        return [_decode_value(v) for v in value]
    if kind is not dict or len(value) != 1:
        raise _Bad
    ((tag, item),) = value.items()
    if tag == "t":
        return tuple(_decode_value(v) for v in _list(item))
    if tag == "d":
        return {_decode_value(k): _decode_value(v) for k, v in _list(item)}
    if tag == "s":
        return {_decode_value(v) for v in _list(item)}
    if tag == "f":
        return frozenset(_decode_value(v) for v in _list(item))
    if tag == "b":
        return bytes.fromhex(_str(item))
    if tag == "c":
        real, imag = _list(item)
        if type(real) is not float or type(imag) is not float:
            raise _Bad
        return complex(real, imag)
    if tag == "e":
        return Ellipsis
    raise _Bad


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Bad
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise _Bad
    return value


def _strs(value: Any) -> list[str]:
    if type(value) is not list or not all(type(item) is str for item in value):
        raise _Bad
    return value


def _encode_file(info: FileInfo) -> list[Any]:
    return [
        info.bindings,
        list(info.stars),
        [_encode_class(c) for c in info.classes.values()],
        list(info.error) if info.error is not None else None,
    ]


def _decode_file(raw: Any, path: Path, rel: str, module: str, package: str) -> FileInfo:
    bindings, stars, classes, error = raw
    if type(bindings) is not dict or not all(type(v) is str for v in bindings.values()):
        raise _Bad
    info = FileInfo(path=path, rel=rel, module=module, package=package, bindings=bindings, stars=tuple(_strs(stars)))
    for item in _list(classes):
        cls = _decode_class(item)
        info.classes[cls.name] = cls
    if error is not None:
        line, message = _list(error)
        if type(line) is not int or type(message) is not str:
            raise _Bad
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
    ]


def _decode_class(raw: Any) -> ClassInfo:
    (name, qualname, line, bases, base_texts, doc, flag, defined, abstract, is_dc, fields, config, alias) = raw
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
        raise _Bad
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
    )


def _encode_field(raw: RawField) -> list[Any]:
    return [
        raw.name,
        raw.type,
        raw.type_ref,
        raw.has_default,
        _encode_value(raw.default),
        raw.default_source,
        raw.factory_ref,
        [[k, _encode_value(v)] for k, v in raw.factory_kwargs.items()],
        raw.help,
    ]


def _decode_field(raw: Any) -> RawField:
    name, type_text, type_ref, has_default, default, source, factory_ref, kwargs, help_text = raw
    if (
        type(name) is not str
        or type(type_text) is not str
        or (type_ref is not None and type(type_ref) is not str)
        or type(has_default) is not bool
        or type(source) is not str
        or (factory_ref is not None and type(factory_ref) is not str)
        or type(help_text) is not str
    ):
        raise _Bad
    if default is not None and type(default) is not str and type(default) is not int and type(default) is not float:
        default = _decode_value(default)
    return RawField(
        name,
        type_text,
        type_ref,
        has_default,
        default,
        source,
        factory_ref,
        {_str(k): _decode_value(v) for k, v in _list(kwargs)} if kwargs else {},
        help_text,
    )
