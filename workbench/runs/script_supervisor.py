"""The supervisor's part for script runs (``[scripts.NAME]``, ``spec.kind == "script"``).

``workbench.runs.supervisor`` hands a script run's attempt to :func:`supervise_script`:
the script's command runs in its own process group with ``output.log`` as its stdout and
stderr, the working folder the project's, and the run's trainer lock held through an
inherited descriptor (it dies with the script). A thread reads the lines back from
``output.log`` — as the app does, never through a pipe the script could die on — and logs
the scalars they hold (``workbench.runs.capture``) with a ``MetricWriter``. A stop request
is SIGINT to the group, then SIGKILL after the grace period; the run ends ``stopped`` even
when the script exits non-zero on SIGINT. A non-zero exit otherwise is ``failed``, with
the attempt's last lines of output as the error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from workbench.runs.control import STOP_GRACE
from workbench.runs.spec import RunSpec
from workbench.runs._ending import (
    end_attempt,
    finish,
    record_sample,
    rotate_log,
    sampler_for,
    signal_name,
    stopped,
)
from workbench.store import Run, RunIndex, RunStatus, StopMode

__all__ = ["script_command", "supervise_script"]


def script_command(spec: RunSpec, secrets: dict[str, str]) -> list[str]:
    """The argument list of a script run's attempt: the spec's command with its secret
    params filled in, and the ``resume`` arguments when the attempt continues from a
    checkpoint (``spec.resume_from``)."""
    from workbench.project.scripts import CHECKPOINT_PLACEHOLDER, placeholders, render

    table = spec.script or {}
    secret = {name: secrets.get(name, "") for name in table.get("secret", [])}
    argv = render(spec.command, {**{n: "" for a in spec.command for n in placeholders(a)}, **secret})
    if spec.resume_from and table.get("resume"):
        values = {**spec.config, **secret, CHECKPOINT_PLACEHOLDER: spec.resume_from}
        argv += render(table["resume"], values)
    return argv


class _Tail(threading.Thread):
    """Reads a script's lines back from ``output.log`` and logs the scalars they hold."""

    def __init__(self, path: Path, offset: int, spec: RunSpec, attempt: int) -> None:
        super().__init__(name="workbench-capture", daemon=True)
        from workbench.runs.capture import Capture
        from workbench.store import MetricWriter

        table = spec.script or {}
        self.path = path
        self.pos = offset
        self.capture = Capture(table.get("pattern", ""), table.get("step", "auto") or "auto")
        self.writer = MetricWriter(spec.index, spec.id, attempt=attempt)
        self.done = threading.Event()
        self._buffer = b""
        self._progress: tuple[int, int | None] = (0, None)

    def run(self) -> None:
        while not self.done.wait(0.25):
            self._read()
        self._read(final=True)

    def _read(self, final: bool = False) -> None:
        try:
            if self.path.stat().st_size < self.pos:  # rotated (copy-truncate): start over
                self.pos = 0
            with self.path.open("rb") as fh:
                fh.seek(self.pos)
                data = fh.read(4 * 1024 * 1024)
        except OSError:
            return
        self.pos += len(data)
        parts = re.split(rb"\r\n|\r|\n", self._buffer + data)
        self._buffer = b"" if final else parts.pop()
        log, epoch = self.writer.log, self._progress[1]
        step = self._progress[0]
        for raw in parts:
            for key, value, step in self.capture.feed(raw.decode("utf-8", "replace")):
                log(key, value, step)
                if key == "epoch" and value == value:
                    epoch = int(value)
        if (step, epoch) != self._progress:
            self._progress = (step, epoch)
            self.writer.progress(step, epoch=epoch)

    def stop(self) -> None:
        """Read what is left, write it, close the writer."""
        self.done.set()
        self.join(timeout=30)
        self.writer.close()


def _secrets_from_env() -> dict[str, str]:
    import json

    from workbench.runs.launch_script import SECRETS_ENV

    try:
        found = json.loads(os.environ.get(SECRETS_ENV) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def supervise_script(spec: RunSpec, run_dir: Path, index: RunIndex, row: Run | None, attempt: int,
                      signalled: threading.Event) -> int:
    """Supervise one attempt of a script run (see the module's docstring)."""
    from workbench.runs.launch_script import script_env
    from workbench.runs.locks import TRAINER_LOCK, FileLock, LockHeld

    log_path = run_dir / "output.log"

    def stop_request() -> Run | None:
        if signalled.is_set():
            signalled.clear()
            index.request_stop(spec.id, StopMode.GRACEFUL, "signal to the supervisor")
        current = index.get_run(spec.id)
        return current if current is not None and current.stop_requested_at is not None else None

    argv = script_command(spec, _secrets_from_env())
    env = script_env(spec, run_dir, attempt, dict(os.environ))
    how = f" from {Path(spec.resume_from).name}" if spec.resume_from and (spec.script or {}).get("resume") else ""
    with log_path.open("ab") as log:
        log.write(f"\n=== attempt {attempt} · {time.strftime('%Y-%m-%d %H:%M:%S')} · script {spec.task}"
                  f"{how} ===\n".encode())
        log.flush()
        offset = log_path.stat().st_size
        if stop_request() is not None:
            log.write(b"stopped before the script started\n")
            stopped(index, spec.id, None, None, "stopped before the script started")
            index.close()
            return 0
        try:
            lock = FileLock(run_dir / TRAINER_LOCK).acquire()
        except LockHeld:
            finish(index, spec.id, RunStatus.FAILED, None, None,
                    "another process still runs this run (its trainer lock is held)", "")
            index.close()
            return 1
        try:
            # The script holds the trainer lock (an inherited descriptor) for as long as it lives.
            child = subprocess.Popen(argv, cwd=spec.project_root, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     pass_fds=(lock._fd,) if lock._fd is not None else ())
        except OSError as exc:
            lock.release()
            finish(index, spec.id, RunStatus.FAILED, None, None, f"could not start the script: {exc}", "")
            index.close()
            return 1
        lock.release()
        now = time.time()
        fields: dict[str, Any] = {"status": RunStatus.RUNNING, "pid": child.pid, "pgid": child.pid,
                                  "heartbeat_at": now}
        if row is None or row.started_at is None or attempt > 1:
            fields["started_at"] = now
        index.update_run(spec.id, **fields)
        index.add_event(spec.id, "started", f"attempt {attempt}: {' '.join(row.command if row else argv[:2])}",
                        {"attempt": attempt, "pid": child.pid})
        tail = _Tail(log_path, offset, spec, attempt)
        tail.start()
        sampler = sampler_for(child.pid)
        stopping = killed = False
        while True:
            request = stop_request()
            if request is not None and not killed:
                late = (request.stop_requested_at or 0) + STOP_GRACE < time.time()
                if request.stop_mode is StopMode.KILL or late:
                    log.write(b"stop: killing the script's processes\n" if not late else
                              f"stop: no exit {STOP_GRACE:g} s after SIGINT; killing the script's processes\n".encode())
                    log.flush()
                    _signal_group(child.pid, signal.SIGKILL)
                    killed = True
                elif not stopping:
                    stopping = True
                    _signal_group(child.pid, signal.SIGINT)
            try:
                code = child.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if spec.max_log_bytes:
                    rotate_log(log_path, spec.max_log_bytes)
                if sampler is not None and sampler.due():
                    record_sample(index, spec.id, attempt, sampler)
        _signal_group(child.pid, signal.SIGKILL)  # what the script left behind in its group
        if sampler is not None:
            sampler.close()
        try:
            tail.stop()
        except Exception as exc:  # noqa: BLE001 - the outcome still gets written
            log.write(f"supervisor: some captured points were not written: {exc}\n".encode())
    _conclude_script(index, spec, code, stopping, killed, log_path, offset, attempt)
    from workbench.runs.artifacts import record_artifacts

    record_artifacts(index, spec.id, run_dir)
    index.close()
    return 0


def _attempt_tail(path: Path, offset: int, lines: int) -> list[str]:
    """The last ``lines`` non-empty lines this attempt wrote to ``output.log``."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            start = offset if offset <= size else 0
            fh.seek(max(start, size - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _conclude_script(index: RunIndex, spec: RunSpec, code: int, stopping: bool, killed: bool, log_path: Path,
                     offset: int, attempt: int) -> None:
    """A script run's final status: a stop request makes it ``stopped`` whatever the exit code."""
    run = index.get_run(spec.id)
    if run is None or run.attempt != attempt:
        return
    sig = -code if code < 0 else None
    if killed and run.stop_mode is StopMode.KILL:
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
                "killed on request (workbench stop --kill); restart it to run it again", "")
    elif stopping or killed:
        late = f"; killed {STOP_GRACE:g} s after SIGINT" if killed else ""
        stopped(index, spec.id, code, sig, f"stopped on request (exit {'signal ' + signal_name(sig) if sig else code}"
                                            f"{late})")
    elif code == 0:
        end_attempt(index, spec.id, RunStatus.COMPLETED, "the script exited with code 0", {"exit_code": 0, "signal": None})
    elif sig is not None:
        finish(index, spec.id, RunStatus.INTERRUPTED, code, sig,
                f"the script was killed by {signal_name(sig)}; restart it to run it again", "")
    else:
        last = _attempt_tail(log_path, offset, 30)
        error = f"the script exited with code {code}" + (": " + " | ".join(last[-3:]) if last else "")
        finish(index, spec.id, RunStatus.FAILED, code, None, error, "\n".join(last))


