"""A DDP run across two "machines" without Slurm (``--nnodes 2``, two launches over
loopback, gloo): node 0 owns and records the run, node 1 records nothing; the weights equal
a local 2-process DDP run's. Bad ``--nnodes`` input is one line and writes nothing."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.projects import CLI, assert_nothing_written, clean_env, index_of, wait_ended, wb

from workbench.errors import WorkbenchError
from workbench.runs.cluster_nodes import Rendezvous, check_nodes, parse_endpoint, torchrun_command
from workbench.store import RunStatus


@pytest.mark.parametrize(("args", "expected"), [
    (["--node-rank", "1"], "--node-rank and --rdzv go with --nnodes N"),
    (["--nnodes", "2", "--node-rank", "2", "--rdzv", "127.0.0.1:29500"], "--node-rank must be from 0 to 1"),
    (["--nnodes", "2", "--node-rank", "0", "--rdzv", "localhost"], "--rdzv must be HOST:PORT"),
    (["--nnodes", "2", "--node-rank", "1", "--rdzv", "127.0.0.1:70000"], "--rdzv port must be"),
    (["--nnodes", "2", "--node-rank", "0"], "needs --rdzv HOST:PORT"),
])
def test_bad_nnodes_input_is_one_line_and_writes_nothing(project: Path, args: list[str], expected: str) -> None:
    result = wb(project, "run", "SineRegression", "--backend", "ddp", *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1 and expected in lines[0], result.stderr
    assert_nothing_written(project)


def test_the_nnodes_checks_and_the_torchrun_command() -> None:
    with pytest.raises(WorkbenchError, match="needs --backend ddp"):
        check_nodes(2, 0, "h:1", backend="single")
    with pytest.raises(WorkbenchError, match="on a cluster ask for --nodes"):
        check_nodes(2, 0, "h:1", backend="ddp", on="lab")
    with pytest.raises(WorkbenchError, match="needs --node-rank K"):
        check_nodes(2, None, "h:1", backend="ddp")
    assert check_nodes(None, None, None, backend="single") is None
    assert parse_endpoint("[fe80::1]:29500") == ("fe80::1", 29500)
    rdzv = check_nodes(3, 2, "node-a.lab:29400", backend="ddp")
    assert rdzv == Rendezvous(3, 2, "node-a.lab", 29400)
    assert torchrun_command("py", 4, "/r", rdzv) == [
        "py", "-m", "torch.distributed.run", "--nnodes=3", "--node-rank=2", "--master-addr=node-a.lab",
        "--master-port=29400", "--nproc-per-node=4", "--max-restarts=0", "-m", "workbench.runs.train", "/r"]
    assert torchrun_command("py", 2, "/r")[3] == "--standalone"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _weights(run_dir: str | None) -> tuple[str, dict[str, Any]]:
    import torch

    files = sorted((Path(run_dir or "") / "checkpoints").glob("step-*.pt"))
    assert files, f"no step checkpoint in {run_dir}"
    return files[-1].name, torch.load(files[-1], map_location="cpu", weights_only=True)["model"]


def test_two_nodes_over_loopback_end_with_a_local_two_process_runs_weights(project: Path) -> None:
    env = clean_env(project.parent)
    small = ["-s", "samples=400", "-s", "epochs=2", "--backend", "ddp"]
    rdzv = ["--nnodes", "2", "--rdzv", f"127.0.0.1:{_free_port()}"]
    # Node 1 first: it waits for node 0's rendezvous, in the foreground, recording nothing.
    node1 = subprocess.Popen([*CLI, "run", "SineRegression", *small, "--nproc", "1", *rdzv, "--node-rank", "1"],
                             cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        node0 = wb(project, "run", "SineRegression", *small, "--nproc", "1", *rdzv, "--node-rank", "0", "--json",
                   env=env)
        assert node0.returncode == 0, node0.stderr
        run_id = json.loads(node0.stdout)["id"]
        out, err = node1.communicate(timeout=240)
    finally:
        if node1.poll() is None:
            node1.kill()
    assert node1.returncode == 0, err[-3000:]
    # The local 2-process run after the 2-node one, not beside it: four gloo ranks at once on
    # a 2-core machine starve each other (CI: 76 s for what takes 18 s alone).
    wait_ended(project, [run_id])
    local = json.loads(wb(project, "run", "SineRegression", *small, "--nproc", "2", "--json", env=env).stdout)["id"]
    assert "joining 127.0.0.1:" in err
    done = wait_ended(project, [run_id, local])
    assert done[run_id].status is RunStatus.COMPLETED, done[run_id].error
    assert done[local].status is RunStatus.COMPLETED, done[local].error
    with index_of(project) as index:
        assert [r.id for r in index.list_runs()] == [local, run_id]  # node 1 added no run
        steps = [s for s, _, _ in index.points(run_id, "train/loss")]
        assert steps == list(range(1, done[run_id].total_steps + 1))
        assert any(e.kind == "nodes" and "node 0 of 2" in e.message for e in index.events(run_id))
    assert done[run_id].total_steps == done[local].total_steps
    name, weights = _weights(done[run_id].run_dir)
    local_name, local_weights = _weights(done[local].run_dir)
    assert name == local_name and set(weights) == set(local_weights)
    import torch

    for key in weights:
        assert torch.equal(weights[key], local_weights[key]), key


def test_ctrl_c_on_the_other_machine_stops_every_rank_at_one_batch(project: Path) -> None:
    """Ctrl-C on node 1 reaches only node 1's rank; it is handed to the loop at a batch's
    end, where the ranks agree: both stop after the same batch, node 1 exits 0, and the run
    (node 0's) ends stopped with a checkpoint — not hung, not completed early."""
    import signal

    from support.projects import poll, run_row

    env = clean_env(project.parent)
    args = ["run", "SineRegression", "-s", "samples=400", "-s", "epochs=300", "--backend", "ddp", "--nproc", "1",
            "--nnodes", "2", "--rdzv", f"127.0.0.1:{_free_port()}"]
    node1 = subprocess.Popen([*CLI, *args, "--node-rank", "1"], cwd=project, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        node0 = wb(project, *args, "--node-rank", "0", "--json", env=env)
        assert node0.returncode == 0, node0.stderr
        run_id = json.loads(node0.stdout)["id"]

        def past_a_checkpoint() -> bool:
            row = run_row(project, run_id)
            assert row.status.is_live, f"ended before the stop: {row.status} {row.error}"
            with index_of(project) as index:
                return any(e.kind == "checkpoint" for e in index.events(run_id))

        poll(past_a_checkpoint, "a checkpoint of the 2-node run")
        node1.send_signal(signal.SIGINT)  # what Ctrl-C in node 1's terminal sends
        _, err = node1.communicate(timeout=120)
    finally:
        if node1.poll() is None:
            node1.kill()
    assert node1.returncode == 0, err[-3000:]
    row = wait_ended(project, [run_id])[run_id]
    assert row.status is RunStatus.STOPPED, (row.status, row.error)
    assert row.step is not None and 0 < row.step < (row.total_steps or 0)
    with index_of(project) as index:
        stopped = [e.message for e in index.events(run_id) if e.kind == "stopped"]
    assert stopped == ["stopped: another rank was asked to stop"], stopped
    assert (Path(row.run_dir or "") / "checkpoints" / f"step-{row.step:09d}.pt").is_file()
    # resuming a run across machines is not built: refused in one line, nothing started
    refused = wb(project, "resume", run_id, env=env)
    assert refused.returncode == 2 and "trained across machines (--nnodes): resuming it is not built" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and run_row(project, run_id).attempt == 1
