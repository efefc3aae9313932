"""Is a process still there? Used to tell a live run from one whose machine went down."""

from __future__ import annotations

import socket

__all__ = ["current_host", "pid_alive", "process_create_time"]


def current_host() -> str:
    """The name this machine records in ``runs.host``.

    Returns:
        ``socket.gethostname()``.
    """
    return socket.gethostname()


def process_create_time(pid: int) -> float | None:
    """When a process started, to record next to its pid (pids are reused).

    Args:
        pid: The process id.

    Returns:
        ``psutil.Process(pid).create_time()``, or ``None`` when there is no such process.
    """
    import psutil  # imported here: only a few callers need it

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def pid_alive(pid: int | None, create_time: float | None = None) -> bool:
    """Whether a process with this pid runs on this machine (a zombie does not count).

    Args:
        pid: The process id (``None`` or ``<= 0`` means no process).
        create_time: The start time recorded with the pid; when given, a process with the
            same pid that started at another time is a different process.

    Returns:
        ``True`` if it is alive.
    """
    if pid is None or pid <= 0:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > 1.0:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # it exists; we may not look at it
