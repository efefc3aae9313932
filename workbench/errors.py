"""Errors shown to the user as one line."""

from __future__ import annotations

__all__ = ["WorkbenchError"]


class WorkbenchError(Exception):
    """Base class of errors that are shown to the user as one line."""
