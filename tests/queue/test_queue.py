"""The run queue with real processes: limits, order, the runner's life, stops and rm.

Runs are tiny (``epochs=1, samples=200``). A test that needs every run queued before any
starts holds the queue lock itself while it queues (``enqueue`` then finds a runner "alive"
and starts none), then lets go and starts the runner.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from support.projects import index_of, pids_gone, poll, wait_ended

from workbench.project import load_project
from workbench.runs.control import remove_run, stop_run
from workbench.runs.launch import LaunchRequest
from workbench.runs.locks import FileLock
from workbench.runs.queue import enqueue, ensure_queue_runner, queue_runner_alive
from workbench.store import RunIndex, RunStatus

TINY = ["epochs=1", "samples=200"]


def _request() -> LaunchRequest:
    return LaunchRequest("SineRegression", TINY, device="cpu")


def _dequeued_at(index: RunIndex, run_id: str) -> float | None:
    times = [e.time for e in index.events(run_id) if e.kind == "dequeued"]
    return times[0] if times else None


def _runner_pid(root: Path, other_than: int | None = None) -> int:
    """The pid in the queue lock file (the runner writes it as it starts)."""
    def read() -> int | None:
        words = (root / ".workbench" / "queue.lock").read_text().split()
        pid = int(words[0]) if words else None
        return pid if pid is not None and pid != other_than else None

    return poll(read, "a queue runner to write its pid in queue.lock", every=0.05)


def test_limit_order_and_the_runner_exits(project: Path) -> None:
    proj = load_project(project)
    with index_of(project) as index:
        # Four: two take the slots, two wait (each run is a training process, ~6 s of CPU).
        with FileLock(proj.state_dir / "queue.lock"):  # nothing starts until all four wait
            runs = [enqueue(proj, _request(), index=index) for _ in range(4)]
            assert all(r.status is RunStatus.QUEUED and r.queued_at for r in runs)
            assert index.set_priority(runs[3].id, 1)  # the last queued jumps the queue
            assert [r.id for r in index.queued_runs()] == [runs[i].id for i in (3, 0, 1, 2)]
        pid = ensure_queue_runner(proj)
        assert pid is not None
        poll(lambda: (index.get_run(runs[2].id).status_reason or "").startswith("waiting for a slot: 2 of 2"),
             "a waiting run to say it waits for the project limit")
        ended = wait_ended(project, [r.id for r in runs])
        assert [ended[r.id].status for r in runs] == [RunStatus.COMPLETED] * 4, \
            [(r.status, r.error) for r in ended.values()]
        spans = {r.id: (_dequeued_at(index, r.id), ended[r.id].ended_at) for r in runs}
    assert all(start is not None and end is not None and start <= end for start, end in spans.values()), spans
    # Never more than 2 at once: count the slots held at each moment a slot was taken.
    for start, _ in spans.values():
        held = sum(1 for s, e in spans.values() if s <= start < e)
        assert held <= 2, f"{held} runs held a slot at {start}: {spans}"
    order = sorted(spans, key=lambda run_id: spans[run_id][0])
    assert order == [runs[i].id for i in (3, 0, 1, 2)], "the priority jump first, then FIFO"
    assert pids_gone([pid], timeout=30), "the queue runner exits once the queue is empty"
    assert not queue_runner_alive(proj.state_dir)


def test_a_killed_runner_is_replaced_and_every_run_completes(project: Path) -> None:
    (project / "workbench.toml").write_text((project / "workbench.toml").read_text().replace(
        "max_running = 2", "max_running = 1"))
    proj = load_project(project)
    with index_of(project) as index:
        # Both wait before a runner starts: a runner started by the first enqueue could find
        # the queue empty once it took the first run, exit, and leave its pid in queue.lock
        # for the test to kill (a second runner, started by the second enqueue, not yet
        # having written its own).
        with FileLock(proj.state_dir / "queue.lock"):
            first = [enqueue(proj, _request(), index=index) for _ in range(2)]
        pid = ensure_queue_runner(proj)
        assert pid is not None and _runner_pid(project, other_than=os.getpid()) == pid
        poll(lambda: _dequeued_at(index, first[0].id), "the runner to start the first run")
        os.kill(pid, signal.SIGKILL)
        assert pids_gone([pid], timeout=30)
        assert index.get_run(first[1].id).status is RunStatus.QUEUED  # it waits, ownerless
        # Two slots from now on (the new runner reads the file), so the test takes less time.
        (project / "workbench.toml").write_text((project / "workbench.toml").read_text().replace(
            "max_running = 1", "max_running = 2"))
        late = enqueue(proj, _request(), index=index)  # starts a new runner
        assert _runner_pid(project, other_than=pid)
        ended = wait_ended(project, [first[0].id, first[1].id, late.id])
    assert {r.status for r in ended.values()} == {RunStatus.COMPLETED}, [(r.status, r.error) for r in ended.values()]


def test_two_runners_at_once_start_one_and_it_exits_when_the_queue_empties(project: Path) -> None:
    proj = load_project(project)
    with index_of(project) as index:
        # The only slot is held (a "running" row owned by this live process) and one run
        # waits behind it: the runner stays, waiting.
        index.create_run(task="SineRegression", status="running", supervisor_pid=os.getpid(),
                         heartbeat_at=time.time(), device="cpu")
        (project / "workbench.toml").write_text((project / "workbench.toml").read_text().replace(
            "max_running = 2", "max_running = 1"))
        proj = load_project(project)
        with FileLock(proj.state_dir / "queue.lock"):
            waiting = enqueue(proj, _request(), index=index)
        pids: list[int | None] = []
        barrier = threading.Barrier(2)

        def start() -> None:
            barrier.wait()
            pids.append(ensure_queue_runner(proj))

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        started = [pid for pid in pids if pid is not None]
        assert len(started) == 1, pids
        assert _runner_pid(project, other_than=os.getpid()) == started[0]  # (this test wrote its own)
        assert queue_runner_alive(proj.state_dir)
        assert "waiting for a slot: 1 of 1" in (index.get_run(waiting.id).status_reason or "")
        assert ensure_queue_runner(proj) is None
        result = stop_run(index, index.get_run(waiting.id))  # the queue is empty now
        assert result.outcome == "cancelled"
    assert pids_gone(started, timeout=30), "the runner exits when nothing waits"


def test_stop_and_rm_of_a_waiting_run(project: Path) -> None:
    proj = load_project(project)
    with index_of(project) as index, FileLock(proj.state_dir / "queue.lock"):
        a, b = (enqueue(proj, _request(), index=index) for _ in range(2))
        result = stop_run(index, a)
        assert result.outcome == "cancelled" and "never started" in result.message
        stopped = index.get_run(a.id)
        assert stopped.status is RunStatus.STOPPED
        assert stopped.started_at is None and stopped.supervisor_pid is None and stopped.pid is None
        assert _dequeued_at(index, a.id) is None
        assert [r.id for r in index.queued_runs()] == [b.id]
        remove_run(proj, index, index.get_run(b.id))
        assert index.get_run(b.id) is None and not Path(b.run_dir).exists()
        assert index.queued_runs() == []
