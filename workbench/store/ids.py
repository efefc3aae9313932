"""Run ids (short, unique, sortable by creation time) and the host name runs record."""

from __future__ import annotations

import os
import socket
import threading
import time

__all__ = ["RUN_ID_ALPHABET", "current_host", "new_run_id"]

#: Crockford's base32 in lower case. Its characters are in ASCII order, so ids made later
#: sort after ids made earlier (to the millisecond).
RUN_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01 UTC; 8 characters of time last until 2058
_TIME_CHARS = 8
_RANDOM_CHARS = 4
_RANDOM_MAX = 32**_RANDOM_CHARS

_lock = threading.Lock()
_last = (-1, -1)


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 32)
        chars.append(RUN_ID_ALPHABET[digit])
    return "".join(reversed(chars))


def new_run_id() -> str:
    """Make a new run id.

    Twelve characters from :data:`RUN_ID_ALPHABET`: eight encode the milliseconds since
    2024-01-01, four are random. Within one process, ids made in the same millisecond
    count up from a random start, so they stay unique and in order; across processes a
    clash needs the same millisecond and the same 20 random bits (the index refuses a
    duplicate id, and :meth:`RunIndex.create_run` then draws another).

    Returns:
        A new id such as ``"0dx4kq7m2r9a"``.
    """
    global _last
    now = max(0, time.time_ns() // 1_000_000 - _EPOCH_MS)
    with _lock:
        last_ms, last_rand = _last
        if now <= last_ms and last_rand + 1 < _RANDOM_MAX:
            now, rand = last_ms, last_rand + 1
        else:
            if now <= last_ms:  # the random part ran out within one millisecond
                now = last_ms + 1
            rand = int.from_bytes(os.urandom(3), "big") % (_RANDOM_MAX // 2)
        _last = (now, rand)
    return _encode(now, _TIME_CHARS) + _encode(rand, _RANDOM_CHARS)


def current_host() -> str:
    """The name this machine records in ``runs.host`` (``socket.gethostname()``)."""
    return socket.gethostname()
