"""The palette's "Settings: …" commands (Ctrl+P): theme, smoothing, refresh interval, chart keys.

Each writes ``.workbench/app.toml`` and applies at once (``WorkbenchApp.change_settings``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from workbench.tui.settings import REFRESH_CHOICES, SMOOTHING_CHOICES

__all__ = ["SettingsCommands"]


class SettingsCommands(Provider):
    """Commands that change the app's settings."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app: Any = self.app
        settings = app.settings
        now = lambda on: " (now)" if on else ""  # noqa: E731
        out: list[tuple[str, Callable[[], Any], str]] = []
        for weight in SMOOTHING_CHOICES:
            label = f"{weight:g}" + (" (none)" if not weight else "")
            out.append((f"Settings: smoothing {label}{now(weight == settings.smoothing)}",
                        partial(app.change_settings, smoothing=weight),
                        "The charts' moving-average weight, now and at every start"))
        for seconds in REFRESH_CHOICES:
            out.append((f"Settings: refresh interval {seconds:g} s{now(seconds == settings.refresh_interval)}",
                        partial(app.change_settings, refresh_interval=seconds),
                        "How often the app reads the run index"))
        keys = " ".join(settings.chart_keys) or "automatic"
        out.append((f"Settings: chart keys … ({keys})", self._ask_chart_keys,
                    "Metric keys or globs the charts show first"))
        for name in sorted(app.available_themes):
            out.append((f"Settings: theme {name}{now(name == app.theme)}", partial(app.change_settings, theme=name),
                        "The app's colours (and the runs' colours made for them)"))
        return out

    def _ask_chart_keys(self) -> None:
        from workbench.tui.screens.prompt import TextPrompt

        app: Any = self.app

        def answered(text: str | None) -> None:
            if text is not None:
                app.change_settings(chart_keys=text.replace(",", " ").split())

        app.push_screen(TextPrompt("Chart keys", "Metric keys or globs, in order, that the charts show first "
                                   "(e.g. val/loss train/*). Empty: automatic (losses first).",
                                   value=" ".join(app.settings.chart_keys), placeholder="val/loss train/*"),
                        answered)

    async def discover(self) -> Hits:
        """Every settings command, for the empty palette."""
        for title, command, help in self._commands():
            yield DiscoveryHit(title, command, help=help)

    async def search(self, query: str) -> Hits:
        """The settings commands matching ``query``."""
        matcher = self.matcher(query)
        for title, command, help in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help)
