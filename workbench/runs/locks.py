"""OS locks on files in a run folder: who trains a run, and which launch is still writing one.

A lock held with ``flock`` dies with the process that holds it (a crash, ``kill -9`` or an
OOM kill release it), so a lock that can be taken proves that nobody holds it — unlike a
pid, which the system reuses. See DESIGN.md, "Who owns a run": a run has at most one
trainer, and no second trainer ever starts on a run whose trainer lock is held.

Locks are tested on this host only: a run folder on a network filesystem seen from two
machines is not protected by ``flock`` on every filesystem (the cluster issue owns runs
through their Slurm job instead).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import WorkbenchError

__all__ = [
    "LAUNCH_LOCK",
    "TRAINER_LOCK",
    "FileLock",
    "LockHeld",
    "held_by_someone",
    "launch_lock",
    "trainer_alive",
]

#: Held by a run's training process (rank 0, or the only one) for as long as it lives.
TRAINER_LOCK = "trainer.lock"
#: Held by the process that is creating a run's folder, until the run is in the index.
LAUNCH_LOCK = "launch.lock"


class LockHeld(WorkbenchError):
    """Another live process holds the lock."""


class FileLock:
    """An exclusive ``flock`` on ``path``, taken without waiting.

    The file is made if missing and left in place (removing it would race a process that
    opened it meanwhile); its content is the holder's pid, for people.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, wait: float = 1.0) -> FileLock:
        """Take the lock, trying for up to ``wait`` seconds.

        A reader testing the lock (:func:`held_by_someone`) holds it for an instant; the
        short wait keeps that from being taken for a second trainer.

        Raises:
            LockHeld: Another live process holds it.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockHeld(f"{self.path} is held by another process") from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def held_by_someone(path: Path) -> bool:
    """Whether a live process holds the lock on ``path`` (a missing file: nobody does).

    The test takes the lock for an instant and lets it go at once.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # it exists and we cannot look: do not take it for dead
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)
    return False


def trainer_alive(run_dir: str | Path | None) -> bool:
    """Whether a training process holds the run's trainer lock (on this host)."""
    return run_dir is not None and held_by_someone(Path(run_dir) / TRAINER_LOCK)


@contextlib.contextmanager
def launch_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's launch lock while the folder is made (``gc`` leaves it alone)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / LAUNCH_LOCK):
        yield
