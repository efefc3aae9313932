"""The typed way for a screen or widget to reach the app (``cast``, as Posting does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from workbench.tui.app import WorkbenchApp

__all__ = ["workbench_app"]


def workbench_app(node: DOMNode) -> WorkbenchApp:
    """The :class:`~workbench.tui.app.WorkbenchApp` that ``node`` belongs to."""
    return cast("WorkbenchApp", node.app)
