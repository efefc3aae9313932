"""The caches of per-file summaries: in memory, and for a project on disk.

A summary depends only on the file's bytes and its path relative to the project root, so
it is cached, in memory (re-discovering an unchanged project, as the TUI does whenever a
file changes, parses only the files that changed) and, for a project, on disk in
``<state_dir>/cache/discovery-v1.json`` (every CLI command is a new process).

A cache entry is trusted on its stamp alone (mtime, ctime and size) only when the file was
last changed a while before it was read (:data:`_RACY_NS`); a file changed more recently
could change again within the same timestamp tick, so it is read again and compared by
digest. The disk cache is JSON, never pickle: it lives in a folder users can write to, and
a damaged or foreign cache is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG
from typing import Any

from workbench.project import _scan, _summary, ranges
from workbench.project._scan import scan_bytes, unreadable
from workbench.project._summary import BadSummary, FileInfo, decode_file, encode_file

__all__ = ["CACHE_FILE", "DiskCache", "clear_cache", "read_bytes", "scan_file"]


def read_bytes(path: Path) -> bytes:
    """The content of a file."""
    with open(path, "rb") as handle:
        return handle.read()


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


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
        return unreadable(path, rel, exc)
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
                data = read_bytes(path)
            except OSError as exc:
                return unreadable(path, rel, exc)
            digest = _digest(data)
            clean = max(stat.st_mtime_ns, stat.st_ctime_ns) < now - _RACY_NS
            same = next((e for e in (entry, stored) if e is not None and e.digest == digest), None)
            if same is not None:  # touched, or read again while racy: the same bytes
                entry = _Entry(stamp, digest, clean, same.info, same.encoded)
            else:
                entry = _Entry(stamp, digest, clean, scan_bytes(path, rel, data))
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
_SCHEMA = 3  # 2: fields carry their line, Range and problems; 3: eval_fields and steps

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
            sources = (_scan, _summary, ranges)  # what makes a summary, and its JSON form
            _scanner_digest = _digest(b"".join(read_bytes(Path(m.__file__)) for m in sources))  # type: ignore[arg-type]
        except (OSError, TypeError):
            _scanner_digest = ""
    from workbench import __version__

    return {
        "schema": _SCHEMA,
        "workbench": __version__,
        "scanner": _scanner_digest,
        "python": f"{sys.implementation.name}-{sys.version}",
    }


_UNENCODABLE: list[Any] = []  # marks an entry whose summary JSON cannot hold


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
            doc = json.loads(read_bytes(self.path))
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
                raise BadSummary
            info = decode_file(raw[5], path, rel)
        except (BadSummary, TypeError, ValueError, IndexError, KeyError, AttributeError, RecursionError):
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
                    entry.encoded = encode_file(entry.info)
                except (BadSummary, ValueError, RecursionError):
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


