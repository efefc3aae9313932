"""``workbench.init()``: track a plain script as a run, with two lines and no Task.

```python
import workbench
run = workbench.init(config=vars(args))
for step in range(steps):
    ...
    run.log({"loss": loss, "acc": acc}, step=step)
```

Started by hand (``python train.py``), ``init`` finds the project (the nearest
``workbench.toml`` above the working folder, or a minimal one written at the git root),
creates a run of kind ``attached`` in the index, takes the same git snapshot a launched run
gets, records the command line (secret-looking values masked), holds the run's trainer lock,
and marks the run ``completed``, ``failed`` or ``interrupted`` when the process ends (a
crash or ``kill -9`` is reconciled like any run). Launched by the workbench (the
environment names the run), it attaches to that run instead. It never imports torch.
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["AttachedRun", "init", "mask_secrets"]

_SECRET_NAME = re.compile(r"(token|key|password|secret|passwd|credential)", re.IGNORECASE)
_MASK = "***"


def mask_secrets(argv: Sequence[str]) -> list[str]:
    """A command line with the values of secret-looking options replaced by ``***``.

    ``--api-key X``, ``--token=X`` and ``PASSWORD=X`` keep their names, lose their values.
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):  # a flag's next word is its value, unless it is an option
                out.append(_MASK)
                continue
        name, sep, _ = arg.partition("=")
        if _SECRET_NAME.search(name.lstrip("-")) and (sep or arg.startswith("-")):
            if sep:
                out.append(f"{name}={_MASK}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def _plain(config: Any) -> dict[str, Any]:
    """A config as plain JSON-able values (an argparse Namespace, a dict, a dataclass)."""
    if config is None:
        return {}
    if hasattr(config, "__dataclass_fields__"):
        import dataclasses

        config = dataclasses.asdict(config)
    elif not isinstance(config, Mapping):
        config = vars(config)
    out: dict[str, Any] = {}
    for key, value in config.items():
        if _SECRET_NAME.search(str(key)):
            out[str(key)] = _MASK
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[str(key)] = value
        elif isinstance(value, Mapping):
            out[str(key)] = _plain(value)
        elif isinstance(value, (list, tuple)):
            out[str(key)] = [v if isinstance(v, (bool, int, float, str)) else str(v) for v in value]
        else:
            out[str(key)] = str(value)
    return out


def _find_project(start: Path) -> Path:
    """The project root: the nearest ``workbench.toml`` above ``start``; else write a minimal
    one at the git root (or ``start``), as ``workbench init`` would."""
    from workbench.project import ProjectNotFound, find_project_root

    try:
        return find_project_root(start)
    except ProjectNotFound:
        pass
    root = start
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            root = folder
            break
    (root / "workbench.toml").write_text(
        "# Written by workbench.init(): a project with the defaults. See docs/getting-started.md.\n"
        "[project]\n", encoding="utf-8")
    ignore = root / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    if ".workbench/" not in lines and ".workbench" not in lines:
        with ignore.open("a", encoding="utf-8") as fh:
            fh.write(("\n" if lines and lines[-1] else "") + ".workbench/\n")
    return root


class AttachedRun:
    """A run this process reports to: ``log`` points, then (automatically) its end.

    Attributes:
        id: The run's id.
        name: Its name.
        run_dir: Its folder (``artifacts/`` is yours to write to).
    """

    def __init__(self, index_path: Path, run_id: str, name: str | None, run_dir: Path, attempt: int,
                 owns: bool, lock: Any = None) -> None:
        from workbench.store import MetricWriter

        self.id = run_id
        self.name = name
        self.run_dir = run_dir
        self._index_path = index_path
        self._owns = owns
        self._lock = lock
        self._writer = MetricWriter(index_path, run_id, attempt=attempt)
        self._log = self._writer.log
        self._step = 0
        self._finished = False
        self._guard = threading.Lock()

    @property
    def artifacts(self) -> Path:
        """The run's artifacts folder (made on first use)."""
        folder = self.run_dir / "artifacts"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def log(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record scalars at ``step`` (default: one more than the last call's).

        Costs about a list append per scalar; a background thread writes them to the index.
        """
        if step is None:
            step = self._step + 1
        self._step = step
        log = self._log
        for key, value in values.items():
            log(key, value, step)

    def log_image(self, key: str, image: Any, step: int | None = None) -> Path:
        """Keep an image at ``step`` (default: the last step logged) as
        ``artifacts/images/<key>/step-<step>.png``, recorded for the app's Images tab.

        ``image`` is a torch tensor (CxHxW or HxW) or a numpy array (HxWxC or HxW); floats
        in [0, 1], or uint8. Needs Pillow (``pip install workbench[images]``).

        Raises:
            ImageError: A key that would leave the folder, another shape, or no Pillow.
        """
        from workbench.image_files import write_image

        return write_image(self.artifacts, key, image, self._step if step is None else step,
                           self._writer.add_artifacts)

    def finish(self, status: str = "completed", error: str | None = None, tb: str | None = None) -> None:
        """End the run: flush its points and record how it ended (called at exit for you)."""
        with self._guard:
            if self._finished:
                return
            self._finished = True
        from workbench.store import RunIndex

        try:
            self._writer.close()
        except Exception as exc:  # noqa: BLE001 - the outcome still gets written
            status, error = "failed", error or f"metric writer: {exc}"
        if self._owns:
            from workbench.runs.outcome import Outcome, write_outcome
            from workbench.store import RunStatus

            ended = time.time()  # the outcome file first; the index mirrors it
            write_outcome(self.run_dir, Outcome(1, RunStatus(status), ended, reason=error or "",
                                                last_step=self._step))
            with RunIndex(self._index_path) as index:
                fields: dict[str, Any] = {"status": status, "ended_at": ended, "step": self._step}
                if error:
                    fields["error"] = error
                if tb:
                    fields["traceback"] = tb
                index.update_run(self.id, **fields)
                index.add_event(self.id, status, error or f"after step {self._step}")
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> AttachedRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.finish("completed")
        else:
            self.finish("failed", f"{kind.__name__ if kind else 'error'}: {exc}",
                        "".join(traceback.format_exception(kind, exc, tb)))


_current: AttachedRun | None = None


def init(config: Any = None, *, name: str | None = None, tags: Sequence[str] = (),
         task: str | None = None, project: str | Path | None = None) -> AttachedRun:
    """Report this process as a workbench run (see the module's docstring).

    Args:
        config: The run's settings (a dict, an argparse ``Namespace``, a dataclass).
        name: A name for the run (default: a friendly one).
        tags: Tags.
        task: What the run is called in the task column (default: the script's file name).
        project: The project folder (default: found from the working folder).

    Returns:
        The run; ``log`` points to it. Calling ``init`` again returns the same run.

    Raises:
        WorkbenchError: The project, the index or the snapshot could not be used (one line).
    """
    global _current
    if _current is not None:
        return _current
    launched = os.environ.get("WORKBENCH_RUN_DIR")
    if launched:
        _current = _attach_to_launch(Path(launched))
        return _current
    _current = _create(config, name, tags, task, Path(project) if project else Path.cwd())
    return _current


def _attach_to_launch(run_dir: Path) -> AttachedRun:
    from workbench.runs.spec import read_spec

    spec = read_spec(run_dir)
    attempt = int(os.environ.get("WORKBENCH_ATTEMPT") or 1)
    run = AttachedRun(Path(spec.index), spec.id, spec.name or None, run_dir, attempt, owns=False)
    atexit.register(run.finish)
    return run


def _create(config: Any, name: str | None, tags: Sequence[str], task: str | None, start: Path) -> AttachedRun:
    from workbench.project import load_project
    from workbench.runs.locks import TRAINER_LOCK, FileLock
    from workbench.runs.names import check_run_name, friendly_name
    from workbench.runs.spec import run_dir_of
    from workbench.snapshot import take_snapshot
    from workbench.store import RunIndex, RunStatus, new_run_id

    root = _find_project(start.resolve())
    project = load_project(root)
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    label = task or (script.stem if script else "script")
    with RunIndex(project.index_path) as index:
        taken = index.run_names()
        if name:
            check_run_name(name, taken, index.run_ids())
        else:
            name = friendly_name(len(taken) + 1, taken)
        run_id = new_run_id()
        run_dir = run_dir_of(project, run_id)
        run_dir.mkdir(parents=True)
        lock = FileLock(run_dir / TRAINER_LOCK).acquire()
        snap = take_snapshot(project.root, run_id, state_dir=project.state_dir,
                             max_file_bytes=project.snapshot.max_file_bytes, exclude=project.snapshot.exclude)
        now = time.time()
        index.create_run(id=run_id, name=name, task=label, kind="attached", status=RunStatus.RUNNING,
                         created_at=now, started_at=now, heartbeat_at=now, pid=os.getpid(),
                         device="cpu", backend="single", nproc=1, precision="32", config=_plain(config),
                         tags=list(tags), run_dir=str(run_dir), git_head=snap.head, git_branch=snap.branch,
                         git_dirty=snap.dirty if snap.code_dirty is None else snap.code_dirty,
                         snapshot_commit=snap.commit,
                         command=mask_secrets([sys.executable, *sys.argv]))
        index.add_event(run_id, "started", f"attached: {' '.join(mask_secrets(sys.argv))}",
                        {"snapshot": snap.commit, "cwd": str(Path.cwd())})
    run = AttachedRun(project.index_path, run_id, name, run_dir, 1, owns=True, lock=lock)
    _hook_exit(run)
    return run


def _hook_exit(run: AttachedRun) -> None:
    """Record the run's end: completed at a normal exit, failed on an uncaught exception,
    interrupted on SIGINT/SIGTERM. A kill -9 leaves it to reconcile (the heartbeat stops)."""
    previous = sys.excepthook

    def on_exception(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            run.finish("interrupted", "interrupted (Ctrl-C)")
        else:
            run.finish("failed", f"{kind.__name__}: {exc}", "".join(traceback.format_exception(kind, exc, tb)))
        previous(kind, exc, tb)

    sys.excepthook = on_exception
    atexit.register(run.finish)
    if threading.current_thread() is threading.main_thread():
        old = signal.getsignal(signal.SIGTERM)

        def on_term(signum: int, frame: Any) -> None:
            run.finish("interrupted", "stopped by SIGTERM")
            if callable(old):
                old(signum, frame)
            else:
                raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_term)
