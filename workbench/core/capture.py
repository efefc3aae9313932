"""Record the arguments a model's constructor was called with (for reproducibility)."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

__all__ = ["capture_init_args", "class_path", "jsonable"]


def class_path(cls: type) -> str:
    """``module.Qualname`` of a class; for a script run as ``__main__``, the script's name.

    ``python tasks/sine.py`` defines its classes in ``__main__``, which says nothing once
    written down; the file's stem (``sine.MLP``) is how the class is imported again.
    """
    module = cls.__module__
    if module == "__main__":
        path = getattr(sys.modules.get("__main__"), "__file__", None)
        if path:
            module = os.path.splitext(os.path.basename(path))[0]
    return f"{module}.{cls.__qualname__}"


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-friendly copy of ``value``: containers kept, anything else as its repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth > 4:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    if isinstance(value, type):
        return class_path(value)
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def capture_init_args(build: Callable[[], Any]) -> tuple[Any, dict[str, Any] | None]:
    """Call ``build()`` and return its result with the arguments of its ``__init__``.

    Watches ``__init__`` calls (through ``sys.setprofile``, only while ``build`` runs) and
    keeps the first one whose ``self`` is the object ``build`` returns.

    Returns:
        ``(obj, spec)`` where spec is ``{"class": "pkg.Cls", "args": {...}}`` or None.
    """
    # Holding each owner keeps its id from being reused by a later object during build.
    seen: dict[int, tuple[Any, dict[str, Any]]] = {}

    previous = sys.getprofile()
    # A Python profile function already set keeps receiving its events; a C profiler
    # (cProfile's, which getprofile() returns as a non-callable object) is re-enabled after.
    chained = previous if callable(previous) else None

    def profile(frame: Any, event: str, arg: Any) -> None:
        if chained is not None:
            chained(frame, event, arg)
        if event != "call" or frame.f_code.co_name != "__init__":
            return
        code = frame.f_code
        if code.co_argcount == 0:
            return
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        local = frame.f_locals
        owner = local.get(names[0])
        if owner is None or id(owner) in seen:
            return
        args = {n: local[n] for n in names[1:] if n in local}
        position = code.co_argcount + code.co_kwonlyargcount
        if code.co_flags & 0x04:  # *args
            args[code.co_varnames[position]] = list(local.get(code.co_varnames[position]) or ())
            position += 1
        if code.co_flags & 0x08:  # **kwargs
            args.update(local.get(code.co_varnames[position]) or {})
        seen[id(owner)] = (owner, args)

    sys.setprofile(profile)
    try:
        obj = build()
    finally:
        if previous is None or chained is not None:
            sys.setprofile(previous)
        elif hasattr(previous, "enable"):
            previous.enable()
        else:  # pragma: no cover - an unknown C-level profiler: nothing to restore it with
            sys.setprofile(None)
    entry = seen.get(id(obj))
    seen.clear()
    if entry is None:
        return obj, None
    args = entry[1]
    cls = type(obj)
    return obj, {"class": class_path(cls), "args": jsonable(args)}
