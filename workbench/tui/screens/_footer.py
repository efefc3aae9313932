"""A footer that fits: on a narrow terminal some keys leave the footer (they still work).

Textual's footer clips what does not fit, and glues the last key to the command palette's
label (``/ Fi^p Commands``). A screen names the actions its footer can do without when the
terminal is narrower than its ``FOOTER_WIDTH``; ``?`` and Ctrl+P still list every key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

from textual.screen import Screen
from textual.widgets import Footer as _TextualFooter

__all__ = ["Footer", "fit_footer"]


class Footer(_TextualFooter):
    """Textual's footer, composed once for a burst of key changes.

    Textual's footer composes itself again on every change of the screen's keys, each time
    removing and mounting every key (and styling each twice); a screen changes them several
    times before its first paint (focus moves, a resize fits the footer). Here a change while
    a recompose is already waiting adds none: that one reads the keys as they are when it
    runs, so the footer shows the same keys.
    """

    _recompose_waiting = False

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._recompose_waiting:
            self._recompose_waiting = True
            self.call_after_refresh(self._recompose_once)

    async def _recompose_once(self) -> None:
        self._recompose_waiting = False
        await self.recompose()


def fit_footer(node: Any, hidden: Collection[str], narrow: bool) -> None:
    """Leave the ``hidden`` actions of ``node`` (a screen or the app) out of the footer while
    ``narrow``; show them again otherwise. Their keys keep working either way."""
    bindings = node._bindings.key_to_bindings
    shown: dict[tuple[str, str], bool] = node.__dict__.setdefault("_footer_shown", {})
    changed = False
    for key, found in bindings.items():
        fitted = []
        for binding in found:
            want = shown.setdefault((key, binding.action), binding.show) and not (
                narrow and binding.action.split("(", 1)[0] in hidden)
            if binding.show != want:
                binding = dataclasses.replace(binding, show=want)
                changed = True
            fitted.append(binding)
        bindings[key] = fitted
    if changed:
        node.refresh_bindings()
