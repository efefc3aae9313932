"""What needs no Slurm: the launch check of ``--on`` against a cluster's declared resources,
refusals that leave nothing behind, parsing what Slurm's commands print (recorded
outputs, including ``sacct``, which the test cluster lacks), and the start-up context a
compute node reads instead of the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.projects import assert_nothing_written, index_of, wb

from workbench.errors import WorkbenchError
from workbench.runs.slurm import parse_sacct, parse_scontrol

GPU_CLUSTER = """
[clusters.lab]
kind = "slurm"
partition = "gpu"
gpus_per_node = 4
cpus_per_task = 8
"""


@pytest.mark.parametrize(("args", "expected"), [
    (["--on", "nowhere"], "unknown cluster 'nowhere': workbench.toml declares here"),
    (["--nodes", "2"], "--nodes and --gpus-per-node go with --on CLUSTER"),
    (["--on", "here", "--device", "cuda"], "--device cuda on cluster here needs GPUs"),
    (["--on", "here", "--nodes", "0"], "--nodes must be 1 or more"),
    (["--on", "here", "--queue"], "--queue is for this machine"),
])
def test_a_refused_cluster_launch_is_one_line_and_leaves_nothing(project: Path, args: list[str], expected: str) -> None:
    result = wb(project, "run", "SineRegression", *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert_nothing_written(project)


def test_a_bad_cluster_table_is_one_line_with_file_and_line(project: Path) -> None:
    toml = project / "workbench.toml"
    toml.write_text(toml.read_text() + '\n[clusters.bad]\nkind = "slurm"\ngpu_per_node = 2\n')
    result = wb(project, "run", "SineRegression", "--on", "bad")
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert "workbench.toml:" in lines[0] and "did you mean 'gpus_per_node'" in lines[0]
    assert_nothing_written(project)


def test_cuda_is_judged_by_the_clusters_declared_gpus_not_this_machine(project: Path) -> None:
    from workbench.project import load_project
    from workbench.runs import LaunchRequest, prepare

    toml = project / "workbench.toml"
    toml.write_text(toml.read_text() + GPU_CLUSTER)
    loaded = load_project(project)
    no_gpus_here = {"default": "cpu", "cuda": [], "mps": False}
    prepared = prepare(loaded, LaunchRequest("SineRegression", device="cuda", backend="ddp", on="lab"),
                       probe=no_gpus_here)
    assert (prepared.device, prepared.nproc, prepared.placement.gpus_per_node) == ("cuda", 4, 4)
    auto = prepare(loaded, LaunchRequest("SineRegression", on="lab"), probe=no_gpus_here)
    assert auto.device == "cuda" and auto.deterministic is False
    for request, message in [
        (LaunchRequest("SineRegression", on="lab", gpus_per_node=8), "declares gpus_per_node = 4"),
        (LaunchRequest("SineRegression", on="lab", device="cuda:1"), "use cuda"),
        (LaunchRequest("SineRegression", on="lab", backend="ddp", nproc=6), "needs 6 GPUs per node"),
        (LaunchRequest("SineRegression", on="lab", nodes=2), "--nodes 2 needs --backend ddp"),
    ]:
        with pytest.raises(WorkbenchError, match=message):
            prepare(loaded, request, probe=no_gpus_here)


SCONTROL_PENDING = (
    "JobId=42 JobName=wb-snowy-bat-1-2nr73h7j7pb3 UserId=ana(1000) GroupId=ana(1000) MCS_label=N/A "
    "Priority=4294901759 Nice=0 Account=ml QOS=normal JobState=PENDING Reason=Resources Dependency=(null) "
    "Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 TimeLimit=04:00:00 "
    "NodeList=(null) BatchHost=(null) NumNodes=1 NumCPUs=1\n")
SCONTROL_REQUEUED = (
    "JobId=42 JobName=wb-x JobState=PENDING Reason=BeginTime Dependency=(null) Requeue=1 Restarts=2 "
    "BatchFlag=1 ExitCode=0:0 NodeList=(null)\n")
SCONTROL_KILLED = (
    "JobId=9 JobName=wb-x JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 "
    "BatchFlag=1 ExitCode=0:9 NodeList=vm BatchHost=vm\n")
SACCT = ("77|TIMEOUT|0:0|TimeLimit|gpu-node-3\n"
         "78|CANCELLED by 1000|0:15|None|gpu-node-4\n")


def test_scontrol_and_sacct_outputs_are_read() -> None:
    pending = parse_scontrol(SCONTROL_PENDING)
    assert pending is not None and pending.pending and pending.active
    assert (pending.job_id, pending.state, pending.reason, pending.nodes) == ("42", "PENDING", "Resources", "")
    assert pending.describe() == "PENDING (Resources)"
    killed = parse_scontrol(SCONTROL_KILLED)
    assert killed is not None and not killed.active and (killed.exit_code, killed.signal) == (0, 9)
    assert parse_scontrol("") is None
    assert pending.restarts == 0
    requeued = parse_scontrol(SCONTROL_REQUEUED)
    assert requeued is not None and requeued.pending and requeued.restarts == 2 and requeued.reason == "BeginTime"
    timeout = parse_sacct(SACCT, "77")
    assert timeout is not None and (timeout.state, timeout.reason, timeout.nodes) == ("TIMEOUT", "TimeLimit", "gpu-node-3")
    cancelled = parse_sacct(SACCT, "78")
    assert cancelled is not None and cancelled.state == "CANCELLED" and cancelled.signal == 15
    assert parse_sacct(SACCT, "79") is None


def test_the_start_up_context_answers_as_the_index_does(project: Path) -> None:
    """A finished local run's index answers, written to context.json and read back."""
    from workbench.runs.cluster_context import ContextReader, write_context

    result = wb(project, "run", "SineRegression", "-s", "epochs=2", "-s", "samples=400", "--wait")
    assert result.returncode == 0, result.stderr
    with index_of(project) as index:
        run = index.list_runs()[0]
        path = write_context(index, run, Path(run.run_dir or ""), 2)
        reader = ContextReader(path)
        assert reader.get_run(run.id).attempt == 2
        assert reader.metric_keys(run.id) == index.metric_keys(run.id)
        assert reader.run_steps(run.id) == index.run_steps(run.id)
        checkpoints = sorted((Path(run.run_dir or "") / "checkpoints").glob("step-*.pt"))
        for step in [int(p.stem.split("-")[1]) for p in checkpoints] + [2**63 - 1]:
            for key in index.metric_keys(run.id):
                assert reader.step_span(run.id, key, step) == index.step_span(run.id, key, step)


def test_a_two_node_job_is_wired_through_srun_and_each_nodes_slurm_environment() -> None:
    """What a 2-node job runs (the CI cluster has one node, so such a job is never started
    there): the batch script, the sbatch options, and each node's rank and rendezvous from
    the environment Slurm gives a step on that node (the node list expanded by the real
    ``scontrol show hostnames``)."""
    import shlex

    from workbench.project.clusters import Cluster
    from workbench.runs.cluster_launch import Placement, batch_script, sbatch_options
    from workbench.runs.cluster_nodes import Rendezvous, slurm_port, slurm_rendezvous, torchrun_command
    from workbench.runs.spec import RunSpec

    cluster = Cluster("lab", partition="gpu", gpus_per_node=4, cpus_per_task=8, signal_lead=90,
                      setup=("source .venv/bin/activate",))
    spec = RunSpec(id="r1", task="T", task_file="t.py", task_module="t", config={}, device="cuda", backend="ddp",
                   nproc=4, precision="32", project_root="/p", index="/i.db", code_dir="/p/.workbench/runs/r1/code")
    run_dir = Path("/p/.workbench/runs/r1")
    script = batch_script(spec, cluster, run_dir, 1, {"WORKBENCH_ATTEMPT": "1"}, nodes=2)
    last = shlex.split(script.strip().splitlines()[-1])
    assert last == ["exec", "srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
                    "--export=ALL", "--cpus-per-task=8", "python", "-m", "workbench.runs.cluster_job",
                    "--slurm-rendezvous", "4", str(run_dir)]
    options = sbatch_options(spec, cluster, Placement(cluster.to_dict(), 2, 4), run_dir, 1)
    assert {"--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=4", "--signal=USR1@90", "--requeue"} <= set(options)
    single = sbatch_options(spec, cluster, Placement(cluster.to_dict(), 1, 4), run_dir, 1)
    assert "--signal=B:USR1@90" in single  # one node: the batch step itself (cluster_job or the trainer)

    first = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NUM_NODES": "2", "SLURM_NNODES": "2", "SLURM_NODEID": "0",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NTASKS": "2", "SLURM_STEP_NUM_NODES": "2",
             "SLURM_JOB_NODELIST": "gpu-node[07-08]", "SLURM_NODELIST": "gpu-node[07-08]",
             "SLURMD_NODENAME": "gpu-node07"}
    second = {**first, "SLURM_NODEID": "1", "SLURM_PROCID": "1", "SLURMD_NODENAME": "gpu-node08"}
    port = slurm_port("4242")
    from workbench.runs.slurm import SlurmError, hostnames

    try:
        assert hostnames("gpu-node[07-08]") == ["gpu-node07", "gpu-node08"]
        expand = None  # the real scontrol, as on a cluster
    except SlurmError:  # no Slurm client here (the slurm-marked tests say why)
        expand = {"gpu-node[07-08]": ["gpu-node07", "gpu-node08"]}.__getitem__
    assert slurm_rendezvous(first, expand) == Rendezvous(2, 0, "gpu-node07", port)
    assert slurm_rendezvous(second, expand) == Rendezvous(2, 1, "gpu-node07", port)
    assert 29500 <= port < 38500 and slurm_port("4243") != port
    assert slurm_rendezvous({**second, "MASTER_ADDR": "10.1.0.7", "MASTER_PORT": "6000"}) == \
        Rendezvous(2, 1, "10.1.0.7", 6000)
    with pytest.raises(WorkbenchError, match="SLURM_JOB_NUM_NODES is not set"):
        slurm_rendezvous({"SLURM_PROCID": "0"})
    with pytest.raises(WorkbenchError, match="not below the job's 2 node"):
        slurm_rendezvous({**first, "SLURM_NODEID": "2"}, expand)
    # Node 1's command: the same torchrun as node 0's, and as a --nnodes launch without Slurm.
    assert torchrun_command("python", 4, run_dir, slurm_rendezvous(second, expand))[3:7] == [
        "--nnodes=2", "--node-rank=1", "--master-addr=gpu-node07", f"--master-port={port}"]


def test_a_requeued_attempt_reads_its_context_else_the_previous_attempts_never_the_index(tmp_path: Path) -> None:
    """A job Slurm requeued runs as the next attempt; if its watcher has not written that
    attempt's context.json (none was running), the trainer waits, then reads the newest
    earlier one as its own attempt. A local journal run (no cluster.json) reads the index."""
    import json
    import types

    from workbench.runs.cluster_context import ContextReader, context_path, open_reader
    from workbench.store import RunIndex

    run_dir = tmp_path / "run"
    spec = types.SimpleNamespace(index=str(tmp_path / "index.db"))
    (run_dir / "attempts" / "1").mkdir(parents=True)
    context_path(run_dir, 1).write_text(json.dumps({"format": 1, "run": "r1", "attempt": 1, "steps": [],
                                                    "spans": {"train/loss": {"7": [7, 1, 7]}}}))
    local = open_reader(spec, run_dir, 3, wait=0.1)
    assert isinstance(local, RunIndex)  # no cluster.json: a local journal run reads its index
    local.close()
    (run_dir / "cluster.json").write_text("{}")
    reader = open_reader(spec, run_dir, 3, wait=0.1)
    assert isinstance(reader, ContextReader) and reader.get_run("r1").attempt == 3
    assert reader.step_span("r1", "train/loss", 7) == (7, 1, 7)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "cluster.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="attempts/2/context.json is missing"):
        open_reader(spec, bare, 2, wait=0.1)
