"""The queue's store methods: order, limits and atomic slot taking across connections."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from workbench.store import RunIndex, RunStatus


_CLOCK = itertools.count(int(time.time()))


def _waiting(index: RunIndex, n: int, **fields: object) -> list[str]:
    """``n`` runs waiting in the queue, each queued a second after the one before."""
    fields = {"device": "cpu", **fields}
    return [index.create_run(task="t", queued_at=next(_CLOCK), **fields).id for _ in range(n)]


def test_two_connections_taking_at_once_never_overfill(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    with RunIndex(path) as setup:
        ids = _waiting(setup, 20)
    taken: list[str] = []
    barrier = threading.Barrier(4)

    def taker(owner: int) -> None:
        with RunIndex(path) as index:
            barrier.wait()
            for run_id in ids:
                run, _ = index.take_slot(run_id, owner_pid=owner, owner_create_time=None, max_running=3)
                if run is not None:
                    taken.append(run.id)

    threads = [threading.Thread(target=taker, args=(n + 1,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 3 and len(set(taken)) == 3
    with RunIndex(path) as index:
        assert index.slot_usage().running == 3
        assert len(index.queued_runs()) == 17
        run, reason = index.take_slot(ids[-1], owner_pid=9, owner_create_time=None, max_running=3)
        assert run is None and reason == "waiting for a slot: 3 of 3 running (project limit)"


def test_order_sweep_and_gpu_limits(tmp_path: Path) -> None:
    with RunIndex(tmp_path / "index.db") as index:
        index.connection.execute(
            "INSERT INTO sweeps (id, task, kind, spec, parallel, created_at, updated_at)"
            " VALUES ('sw1', 't', 'grid', '{}', 1, 0, 0)")
        a, b = _waiting(index, 2, sweep_id="sw1")
        c, d = _waiting(index, 2)
        assert index.set_priority(d, 5)
        assert [r.id for r in index.queued_runs()] == [d, a, b, c]
        assert index.move_to_top(c) == 6
        assert index.take_slot(a, owner_pid=1, owner_create_time=None, max_running=None)[0] is not None
        run, reason = index.take_slot(b, owner_pid=1, owner_create_time=None, max_running=None)
        assert run is None and "1 of 1 running in sweep sw1 (sweep limit)" in reason
        gpus = ["cuda:0", "cuda:1"]
        first, _ = index.take_slot(c, owner_pid=1, owner_create_time=None, max_running=None, gpus=gpus)
        second, _ = index.take_slot(d, owner_pid=1, owner_create_time=None, max_running=None, gpus=gpus)
        assert (first.assigned_device, second.assigned_device) == ("cuda:0", "cuda:1")
        (e,) = _waiting(index, 1)
        run, reason = index.take_slot(e, owner_pid=1, owner_create_time=None, max_running=None, gpus=gpus)
        assert run is None and reason.startswith("waiting for a GPU")
        assert index.cancel_queued(e) and index.get_run(e).status is RunStatus.STOPPED
        assert not index.cancel_queued(c)  # it was taken: its owner delivers a stop
        assert index.release_slot(c, 1, "back") and index.get_run(c).supervisor_pid is None


def test_runs_on_a_cluster_hold_no_slot_of_this_machine(tmp_path: Path) -> None:
    """A run submitted to Slurm (its folder holds cluster.json) trains on the cluster: it takes
    neither a place under max_running nor this machine's GPU, however its row reads."""
    from workbench.runs.cluster_launch import PLACEMENT_FILE, is_cluster_run
    from workbench.runs.queue import slot_usage

    with RunIndex(tmp_path / "index.db") as index:
        folders = {name: tmp_path / name for name in ("here", "there")}
        for folder in folders.values():
            folder.mkdir()
        (folders["there"] / PLACEMENT_FILE).write_text("{}")
        index.create_run(task="t", device="cpu", status="running", run_dir=str(folders["here"]))
        index.create_run(task="t", device="cuda", status="running", run_dir=str(folders["there"]))
        assert index.slot_usage().running == 2 and index.slot_usage().gpus == {"cuda:0"}  # counted blindly
        usage = slot_usage(index)
        assert usage.running == 1 and usage.gpus == frozenset()
        (waiting,) = _waiting(index, 1, device="cuda")
        run, reason = index.take_slot(waiting, owner_pid=1, owner_create_time=None, max_running=2,
                                      gpus=["cuda:0"], elsewhere=is_cluster_run)
        assert reason is None and run is not None and run.assigned_device == "cuda:0"
        (another,) = _waiting(index, 1)
        run, reason = index.take_slot(another, owner_pid=1, owner_create_time=None, max_running=2,
                                      elsewhere=is_cluster_run)
        assert run is None and reason == "waiting for a slot: 2 of 2 running (project limit)"
