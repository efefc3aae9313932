"""What data a run saw: a fingerprint of the ``[data] paths`` taken at launch.

The code a run imports comes from its snapshot; its data is read from the live folders
``[data] paths`` names. So that two runs can be told apart by their data, and a replay can
tell when the data moved under it, every launch records a *manifest*: for each file, its
path (relative to the project folder when inside it, absolute otherwise), size,
modification time (ns) and, for files smaller than ``hash_below_mb``, a BLAKE2b hash of
its contents. One digest over the manifest names the data as a whole: a hashed file
counts by its size and contents, a larger one by its size and modification time (a
``touch`` changes the digest only for files too large to hash).

Hashes are cached in ``<state_dir>/cache/data-manifest.json`` by (path, size, mtime_ns,
ctime_ns), so launching many runs over the same data reads each file once. The change time
is part of the key because tools that copy data (``tar``, ``rsync -t``, ``cp -p``) set a
file's modification time back to the original's, while no program can set the change time:
a file rewritten with its old size and mtime is still read again. The cache is written
under a lock, through a temporary file and a rename: concurrent launches never leave it
half-written. A file changed within two seconds of the moment it is hashed is not cached
(it may change again within the same timestamp).

Torch-free: the workbench process fingerprints at launch and in ``verify``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_FILE",
    "DATA_RECORD",
    "DataFile",
    "DataFingerprint",
    "ManifestCache",
    "changed_files",
    "fingerprint_data",
    "format_bytes",
    "read_data_record",
    "write_data_record",
]

#: The fingerprint in a run's folder.
DATA_RECORD = "data.json"
#: The hash cache, under ``<state_dir>/cache/``.
CACHE_FILE = "data-manifest.json"

_VERSION = 1
_CACHE_VERSION = 2  # entries: [size, mtime_ns, ctime_ns, hash]
_ALGO = "blake2b-128"
_CHUNK = 1 << 20
#: Files modified this recently may still be written within the same mtime: not cached.
_RACY_NS = 2_000_000_000


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=16)


def format_bytes(n: int) -> str:
    """``812 bytes``, ``3.4 kB``, ``120 MB``, ``1.2 GB`` (decimal units)."""
    if n < 1000:
        return f"{n} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1000  # type: ignore[assignment]
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if n < 100 else f"{n:.0f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DataFile:
    """One file of the manifest.

    Attributes:
        path: Relative to the project folder (POSIX) when inside it, else absolute.
        size: Its size in bytes.
        mtime_ns: Its modification time, in nanoseconds.
        hash: The BLAKE2b-128 hex digest of its contents; None for a file at or above the
            hashing size.
    """

    path: str
    size: int
    mtime_ns: int
    hash: str | None

    @property
    def identity(self) -> tuple[str, int, str]:
        """What the digest counts: contents when hashed, else the modification time."""
        return (self.path, self.size, f"h:{self.hash}" if self.hash else f"m:{self.mtime_ns}")


@dataclass(frozen=True)
class DataFingerprint:
    """The data a run saw at launch.

    Attributes:
        digest: BLAKE2b-128 hex digest over every file's :attr:`DataFile.identity`.
        labels: The data paths as written in ``workbench.toml``.
        paths: The same paths, absolute.
        files: The manifest, sorted by path.
        hash_below_bytes: Files smaller than this were content-hashed.
        missing: Data paths that did not exist.
        unreadable: Files or folders that could not be read (``path: reason``).
        seconds: How long fingerprinting took.
        hashed: How many files were read and hashed (not found in the cache).
    """

    digest: str
    labels: tuple[str, ...]
    paths: tuple[str, ...]
    files: tuple[DataFile, ...]
    hash_below_bytes: int
    missing: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()
    seconds: float = 0.0
    hashed: int = 0

    @property
    def short(self) -> str:
        """The digest's first 12 hex digits."""
        return self.digest[:12]

    @property
    def total_bytes(self) -> int:
        """The files' total size."""
        return sum(f.size for f in self.files)

    @property
    def summary(self) -> str:
        """``1a2b3c4d5e6f (2,000 files, 3.1 MB) from data/, /datasets/x``."""
        count = len(self.files)
        return (f"{self.short} ({count:,} file{'' if count == 1 else 's'}, {format_bytes(self.total_bytes)}) "
                f"from {', '.join(self.labels)}")

    @property
    def warnings(self) -> list[str]:
        """One line per data path that is missing, and one for unreadable files."""
        out = [f"data path {label} does not exist; the run's data fingerprint leaves it out"
               for label, path in zip(self.labels, self.paths) if path in self.missing]
        if self.unreadable:
            shown = ", ".join(self.unreadable[:3]) + (" …" if len(self.unreadable) > 3 else "")
            out.append(f"{len(self.unreadable)} data path(s) could not be read: {shown}")
        return out

    def event_data(self) -> dict[str, Any]:
        """The ``data`` event's data: digest, file count, total size, paths."""
        return {"digest": self.digest, "files": len(self.files), "bytes": self.total_bytes,
                "paths": list(self.labels), "missing": list(self.missing),
                "hash_below_bytes": self.hash_below_bytes, "seconds": round(self.seconds, 3)}

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to the run's ``data.json``."""
        return {"version": _VERSION, "algorithm": _ALGO, "digest": self.digest, "labels": list(self.labels),
                "paths": list(self.paths), "hash_below_bytes": self.hash_below_bytes,
                "missing": list(self.missing), "unreadable": list(self.unreadable),
                "seconds": self.seconds, "hashed": self.hashed,
                "files": [[f.path, f.size, f.mtime_ns, f.hash] for f in self.files]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataFingerprint:
        """Read :meth:`to_dict`'s output back.

        Raises:
            ValueError: Not a fingerprint of a version this workbench reads.
        """
        if not isinstance(data, dict) or data.get("version") != _VERSION or "digest" not in data:
            raise ValueError("not a data fingerprint of version 1")
        try:
            files = tuple(DataFile(str(p), int(s), int(m), None if h is None else str(h))
                          for p, s, m, h in data.get("files", ()))
            return cls(digest=str(data["digest"]), labels=tuple(map(str, data.get("labels", ()))),
                       paths=tuple(map(str, data.get("paths", ()))), files=files,
                       hash_below_bytes=int(data.get("hash_below_bytes", 0)),
                       missing=tuple(map(str, data.get("missing", ()))),
                       unreadable=tuple(map(str, data.get("unreadable", ()))),
                       seconds=float(data.get("seconds", 0.0)), hashed=int(data.get("hashed", 0)))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"a malformed data fingerprint: {exc}") from None


def _digest(files: Sequence[DataFile]) -> str:
    h = _hasher()
    h.update(f"workbench-data-v{_VERSION}\n".encode())
    for f in files:
        path, size, what = f.identity
        h.update(os.fsencode(path) + b"\0" + str(size).encode() + b"\0" + what.encode() + b"\n")
    return h.hexdigest()


# -- the cache ---------------------------------------------------------------------------

@dataclass
class ManifestCache:
    """Content hashes by (absolute path, size, mtime_ns, ctime_ns), kept across launches.

    Args:
        path: The cache file (None: a cache in memory only).
        racy_ns: A file changed (mtime or ctime) less than this long before it is hashed is
            not cached: it may change again within the same timestamp (default two
            seconds, for filesystems with coarse timestamps).
    """

    path: Path | None = None
    racy_ns: int = _RACY_NS
    _entries: dict[str, tuple[int, int, int, str]] | None = field(default=None, repr=False)
    _new: dict[str, tuple[int, int, int, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> ManifestCache:
        """The project's cache, ``<state_dir>/cache/data-manifest.json``."""
        return cls(Path(state_dir) / "cache" / CACHE_FILE)

    def _read(self) -> dict[str, tuple[int, int, int, str]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # absent or damaged: a cache starts again
        if not isinstance(data, dict) or data.get("version") != _CACHE_VERSION or data.get("algorithm") != _ALGO:
            return {}
        entries = data.get("entries")
        if not isinstance(entries, dict):
            return {}
        out = {}
        for key, value in entries.items():
            if isinstance(value, list) and len(value) == 4:
                out[key] = (value[0], value[1], value[2], value[3])
        return out

    def lookup(self, path: str, size: int, mtime_ns: int, ctime_ns: int) -> str | None:
        """The cached hash of ``path`` at this size, mtime and ctime, or None."""
        if self._entries is None:
            self._entries = self._read()
        hit = self._new.get(path) or self._entries.get(path)
        if hit is not None and hit[:3] == (size, mtime_ns, ctime_ns):
            return hit[3]
        return None

    def store(self, path: str, size: int, mtime_ns: int, ctime_ns: int, digest: str) -> None:
        """Remember a hash (written by :meth:`save`)."""
        self._new[path] = (size, mtime_ns, ctime_ns, digest)

    def save(self) -> None:
        """Merge the new hashes into the file: under a lock, then temp file and rename.

        A cache that cannot be written (a read-only state folder) is left as it was.
        """
        if self.path is None or not self._new:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when closed
                entries = self._read()  # what other launches wrote meanwhile
                entries.update(self._new)
                fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as out:
                        json.dump({"version": _CACHE_VERSION, "algorithm": _ALGO,
                                   "entries": {k: list(v) for k, v in entries.items()}}, out,
                                  separators=(",", ":"))
                    os.replace(tmp, self.path)
                except BaseException:
                    os.unlink(tmp)
                    raise
            self._entries = entries
            self._new = {}
        except OSError:
            pass


# -- fingerprinting -----------------------------------------------------------------------

def _walk(top: Path, unreadable: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file under ``top`` (or ``top`` itself), following symbolic links once."""
    try:
        st = os.stat(top)
    except OSError as exc:
        unreadable.append(f"{top}: {exc.strerror or exc}")
        return
    if stat.S_ISREG(st.st_mode):
        yield str(top), st
        return
    if not stat.S_ISDIR(st.st_mode):
        return
    seen = {(st.st_dev, st.st_ino)}
    stack = [str(top)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            unreadable.append(f"{folder}: {exc.strerror or exc}")
            continue
        for entry in entries:
            try:
                st = entry.stat()  # follows links
            except OSError:
                continue  # a dangling link, or gone since listed
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) not in seen:  # a link back up would loop
                    seen.add((st.st_dev, st.st_ino))
                    stack.append(entry.path)
            elif stat.S_ISREG(st.st_mode):
                yield entry.path, st


def _hash_file(path: str) -> str:
    h = _hasher()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _name_of(top: Path, root: Path) -> str:
    """How files under ``top`` are named: relative to ``root`` when inside it, else absolute."""
    rel = os.path.relpath(top, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return top.as_posix()
    return "" if rel == os.curdir else Path(rel).as_posix()


def fingerprint_data(paths: Sequence[Path | str], *, root: Path, hash_below_bytes: int,
                     labels: Sequence[str] | None = None, cache: ManifestCache | None = None) -> DataFingerprint:
    """Fingerprint the files under ``paths``.

    Args:
        paths: Data paths, absolute (files or folders; a missing one is noted, not an error).
        root: The project folder: files inside it are named relative to it.
        hash_below_bytes: Files smaller than this are content-hashed.
        labels: The paths as the user wrote them (default: ``paths``).
        cache: Hashes known from earlier launches (saved before returning).

    Returns:
        The fingerprint.
    """
    began = time.monotonic()
    root = Path(root)
    absolute = [Path(os.path.abspath(Path(p).expanduser())) for p in paths]
    missing: list[str] = []
    unreadable: list[str] = []
    files: dict[str, DataFile] = {}
    hashed = 0
    now_ns = time.time_ns()
    for top in absolute:
        if not os.path.lexists(top):
            missing.append(str(top))
            continue
        base, cut = _name_of(top, root), len(str(top))
        for path, st in _walk(top, unreadable):
            # The walk's paths start with ``top``: renaming is string work, not path work.
            name = base + path[cut:].replace(os.sep, "/") if base else path[cut + 1:]
            if name in files:
                continue  # data paths that overlap
            digest = None
            if st.st_size < hash_below_bytes:
                key = (path, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                digest = cache.lookup(*key) if cache is not None else None
                if digest is None:
                    try:
                        digest = _hash_file(path)
                    except OSError as exc:
                        unreadable.append(f"{path}: {exc.strerror or exc}")
                        continue
                    hashed += 1
                    if cache is not None and now_ns - max(st.st_mtime_ns, st.st_ctime_ns) > cache.racy_ns:
                        cache.store(*key, digest)
            files[name] = DataFile(name, st.st_size, st.st_mtime_ns, digest)
    if cache is not None:
        cache.save()
    ordered = tuple(sorted(files.values(), key=lambda f: f.path))
    return DataFingerprint(
        digest=_digest(ordered), labels=tuple(labels if labels is not None else map(str, paths)),
        paths=tuple(map(str, absolute)), files=ordered, hash_below_bytes=hash_below_bytes,
        missing=tuple(missing), unreadable=tuple(unreadable), seconds=time.monotonic() - began, hashed=hashed,
    )


def changed_files(before: DataFingerprint, after: DataFingerprint) -> list[str]:
    """The paths added, removed or changed from ``before`` to ``after`` (sorted).

    A file hashed in both counts as changed only when its size or contents differ.
    """
    old = {f.path: f.identity for f in before.files}
    new = {f.path: f.identity for f in after.files}
    return sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))


# -- the run's record -------------------------------------------------------------------------

def write_data_record(run_dir: Path, fingerprint: DataFingerprint) -> Path:
    """Write ``<run_dir>/data.json`` (through a temporary file and a rename)."""
    path = Path(run_dir) / DATA_RECORD
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(fingerprint.to_dict(), separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_data_record(run_dir: Path) -> DataFingerprint | None:
    """The run's data fingerprint, or None when it has none (no ``[data]`` at launch).

    Raises:
        ValueError: ``data.json`` exists but cannot be read as a fingerprint.
    """
    path = Path(run_dir) / DATA_RECORD
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return DataFingerprint.from_dict(json.loads(text))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
