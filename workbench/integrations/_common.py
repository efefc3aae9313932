"""What the Lightning logger and the Hugging Face callback share: the run they report to
(through :func:`workbench.init`), its config, its checkpoint files and how it ended.

Imports neither torch nor any training library: each integration module imports its own.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.attach import AttachedRun

__all__ = ["RunHandle"]

_CHECKPOINT_SUFFIXES = (".ckpt", ".pt", ".pth", ".safetensors", ".bin")


class RunHandle:
    """The run an integration reports to, created (or attached to) on first use.

    Args:
        config: Settings recorded when the run is created by hand.
        name: The run's name when it is created by hand.
        tags: Its tags.
        project: The project folder (default: found from the working folder).
    """

    def __init__(self, config: Any = None, name: str | None = None, tags: Iterable[str] = (),
                 project: str | Path | None = None) -> None:
        self._kwargs: dict[str, Any] = {"config": config, "name": name, "tags": tuple(tags), "project": project}
        self._run: AttachedRun | None = None
        self.last_checkpoint: Path | None = None

    @property
    def run(self) -> AttachedRun:
        """The run (``workbench.init()``: the launched run, or one created now)."""
        if self._run is None:
            import workbench

            self._run = workbench.init(**self._kwargs)
            # init returns the process's run when there is one already (created by another
            # handle, or launched): this handle's config and tags are added to it.
            self._add(self._kwargs["config"], self._kwargs["tags"])
        return self._run

    def _add(self, config: Any, tags: tuple[str, ...]) -> None:
        if config is not None:
            self.record_config(config)
        if tags:
            with self._index() as index:
                current = index.get_run(self.run.id)
                have = tuple(current.tags) if current is not None else ()
                if set(tags) - set(have):
                    index.update_run(self.run.id, tags=[*have, *(t for t in tags if t not in have)])

    @property
    def started(self) -> bool:
        """Whether the run has been created or attached to."""
        return self._run is not None

    def _index(self) -> Any:
        from workbench.store import RunIndex

        # AttachedRun knows its index; it keeps the path under a private name.
        return RunIndex(self.run._index_path)

    def record_config(self, values: Any) -> None:
        """Merge ``values`` (a mapping, a Namespace, a dataclass) into the run's config."""
        from workbench.attach import _plain  # one rule for what a config holds and what is masked

        plain = _plain(values)
        if not plain:
            return
        with self._index() as index:
            current = index.get_run(self.run.id)
            merged = {**(dict(current.config) if current is not None and current.config else {}), **plain}
            index.update_run(self.run.id, config=merged)

    def log(self, values: Mapping[str, Any], step: int | None) -> None:
        """Log the numeric values of ``values`` at ``step`` (others are left out)."""
        scalars = {}
        for key, value in values.items():
            if isinstance(value, bool):
                continue
            try:
                scalars[key] = float(value)
            except (TypeError, ValueError):
                continue
        if scalars:
            self.run.log(scalars, step=step)

    def register(self, paths: Iterable[str | Path], what: str) -> list[str]:
        """Record files as the run's artifacts; return their artifact paths.

        A file inside the run's ``artifacts/`` folder becomes an artifacts row; one elsewhere
        (the training library's own output folder) is recorded as a ``checkpoint`` event
        with its absolute path, since artifact rows are relative to the run folder.

        Args:
            paths: Files, or folders whose files are recorded.
            what: One line for the event (``Lightning checkpoint``).
        """
        from workbench.runs.artifacts import artifact_kind

        root = (self.run.run_dir / "artifacts").resolve()
        rows, outside = [], []
        for given in paths:
            path = Path(given).resolve()
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if not file.is_file():
                    continue
                if file.is_relative_to(root):
                    rel = file.relative_to(root).as_posix()
                    kind = "checkpoint" if file.suffix in _CHECKPOINT_SUFFIXES else artifact_kind(rel)
                    stat = file.stat()
                    rows.append({"path": rel, "size": stat.st_size, "kind": kind, "created_at": stat.st_mtime})
                else:
                    outside.append(str(file))
            self.last_checkpoint = path
        with self._index() as index:
            if rows:
                index.add_artifacts(self.run.id, rows)
            for given in paths:
                index.add_event(self.run.id, "checkpoint", f"{what}: {given}",
                                {"path": str(Path(given).resolve()), "outside_run_folder": bool(outside)})
        return [row["path"] for row in rows]

    def event(self, kind: str, message: str) -> None:
        """Record an event of the run."""
        with self._index() as index:
            index.add_event(self.run.id, kind, message)

    def newest_checkpoint(self, suffix: str = ".ckpt") -> Path | None:
        """The newest checkpoint file recorded for the run that still exists (any attempt's)."""
        if self.last_checkpoint is not None and self.last_checkpoint.exists():
            return self.last_checkpoint
        root = self.run.run_dir / "artifacts"
        with self._index() as index:
            rows = index.artifacts(self.run.id)
        found = [(row["created_at"] or 0, root / row["path"]) for row in rows
                 if row["kind"] == "checkpoint" and row["path"].endswith(suffix)]
        existing = [(when, path) for when, path in found if path.is_file()]
        return max(existing)[1] if existing else None

    def fail(self, what: str) -> None:
        """End the run now, from inside the training library's exception handling: the
        exception being handled decides ``interrupted`` (Ctrl-C) or ``failed``."""
        if self._run is None:
            return
        kind, exc, tb = sys.exc_info()
        if isinstance(exc, KeyboardInterrupt):
            self._run.finish("interrupted", "interrupted (Ctrl-C)")
        elif exc is not None:
            self._run.finish("failed", f"{type(exc).__name__}: {exc}",
                             "".join(traceback.format_exception(kind, exc, tb)))
        else:
            self._run.finish("failed", f"{what} reported a failure")


def artifacts_folder(handle: RunHandle, *parts: str) -> str:
    """A folder inside the run's ``artifacts/`` (made), as a string for the libraries."""
    folder = handle.run.artifacts.joinpath(*parts)
    os.makedirs(folder, exist_ok=True)
    return str(folder)
