"""``E`` on the main screen: export the marked runs (or the selected one) as ``workbench export`` does.

A small input asks for the format and the path (``csv .workbench/exports/runs-20260115-120000``:
inside the state folder, so never part of a code snapshot), one confirmation lists the runs,
and a thread worker writes them with :func:`workbench.runs.export.export_runs` — the command's
own code — then a notice says where. A bad answer (an unknown format, a folder that is not
empty) is one line, before anything is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError

__all__ = ["FORMATS", "ask_export", "default_target", "parse_target"]

#: The formats of ``workbench export`` (a test checks them against workbench.runs.export.FORMATS).
FORMATS = ("csv", "json", "jsonl", "sqlite", "tensorboard")
_SUFFIX = {"json": ".json", "jsonl": ".jsonl", "sqlite": ".db"}
_BY_SUFFIX = {".json": "json", ".jsonl": "jsonl", ".db": "sqlite", ".sqlite": "sqlite"}


def default_target(state_dir: Path, fmt: str = "csv", now: float | None = None) -> Path:
    """``.workbench/exports/runs-YYYYMMDD-HHMMSS`` (a folder for csv and tensorboard, else a file)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return Path(state_dir) / "exports" / f"runs-{stamp}{_SUFFIX.get(fmt, '')}"


def parse_target(text: str, root: Path, state_dir: Path) -> tuple[str, Path]:
    """The format and path of an answer: ``FORMAT [PATH]`` or ``PATH`` (the format from its suffix).

    A relative path is taken from the project's root; no path: :func:`default_target`.

    Raises:
        WorkbenchError: An unknown format, or nothing given (one line, naming the formats).
    """
    words = text.split(maxsplit=1)
    if not words:
        raise WorkbenchError(f"give a format ({', '.join(FORMATS)}) and a path")
    if words[0] in FORMATS:
        fmt, rest = words[0], (words[1].strip() if len(words) > 1 else "")
        path = Path(rest).expanduser() if rest else default_target(state_dir, fmt)
    elif len(words) > 1:
        raise WorkbenchError(f"unknown format {words[0]!r}: one of {', '.join(FORMATS)}")
    else:
        path = Path(words[0]).expanduser()
        fmt = _BY_SUFFIX.get(path.suffix.lower(), "csv")
    return fmt, path if path.is_absolute() else Path(root) / path


def ask_export(screen: Any, rows: list[Any]) -> None:
    """Ask where to export ``rows`` (``Run`` records), confirm once, then export in a worker."""
    from workbench.runs import present
    from workbench.tui.screens.prompt import TextPrompt

    app = screen.app
    project = app.project
    root, state_dir = Path(project.root), Path(project.state_dir)
    if not rows:
        app.notify("no run to export: select one, or mark runs with space", title="Export", severity="warning")
        return
    what = f"{len(rows)} run{'s' if len(rows) != 1 else ''}"
    target = default_target(state_dir)
    shown = target.relative_to(root) if target.is_relative_to(root) else target

    def answered(text: str | None) -> None:
        if text is None:
            return
        from workbench.runs.export import check_target

        try:
            fmt, path = parse_target(text, root, state_dir)
            check_target(fmt, path, False)
        except WorkbenchError as exc:
            why = str(exc).replace("pass --force to write into it (the export's own files are replaced)",
                                   "give another path")
            app.notify(why, title="Export", severity="error", timeout=10)
            return
        from workbench.tui.screens.confirm import ConfirmScreen

        names = [f"▸ {row.name or row.id}  ({row.task or '—'}, {row.status.value})" for row in rows]
        app.push_screen(ConfirmScreen(f"Export {what} as {fmt} to {present.tilde(str(path))}?",
                                      "their config, metrics and events, as `workbench export` writes them",
                                      yes="Export", items=names),
                        lambda yes: _start(app, [row.id for row in rows], fmt, path) if yes else None)

    app.push_screen(TextPrompt(
        f"Export {what}: format and path",
        f"formats: {', '.join(FORMATS)} (csv and tensorboard write a folder); a path relative to the "
        "project, or a suffix alone (.json, .jsonl, .db) to pick the format",
        value=f"csv {shown}"), answered)


def _start(app: Any, run_ids: list[str], fmt: str, path: Path) -> None:
    app.run_worker(lambda: _export(app, run_ids, fmt, path), thread=True, group="actions", name="export")


def _export(app: Any, run_ids: list[str], fmt: str, path: Path) -> None:
    """The worker: the command's own export, then a notice (from the thread, through the app)."""
    from workbench.runs import present
    from workbench.runs.export import export_runs

    where = present.tilde(str(path))
    index = app.index
    rows = [r for r in (index.get_run(i) for i in run_ids) if r is not None]
    try:
        result = export_runs(index, rows, fmt, path)
    except WorkbenchError as exc:
        app.call_from_thread(app.notify, f"{where}: {exc}", title="Export failed", severity="error", timeout=12)
        return
    except OSError as exc:
        app.call_from_thread(app.notify, f"{where}: {exc.strerror or exc}", title="Export failed",
                             severity="error", timeout=12)
        return
    events = "" if fmt == "tensorboard" else f" and {result.events} events"
    app.call_from_thread(app.notify, f"{result.runs} runs, {result.points} points{events} → {where} ({fmt})",
                         title="Exported", timeout=15)
