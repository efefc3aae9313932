"""The launch form's "where" choice: this machine or a ``[clusters.NAME]``, with the cluster's
fields and the launch check judged against the cluster's declared resources."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import make_test_app, settle
from test_tui_launch import open_form, set_field
from textual.widgets import Input, RadioSet, Static

from workbench.tui.screens.launch import LaunchForm

CLUSTER = """
[clusters.lab]
kind = "slurm"
partition = "gpu"
time = "04:00:00"
gpus_per_node = 4
"""


def _with_cluster(project: Path) -> Path:
    toml = project / "workbench.toml"
    toml.write_text(toml.read_text() + CLUSTER)
    subprocess.run(["git", "commit", "-qam", "a cluster"], cwd=project, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "T",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})
    return project


async def _choose(pilot, form: LaunchForm, radio: str, name: str) -> None:
    chooser = form.query_one(f"#{radio}", RadioSet)
    chooser.focus()
    for _ in range(len(chooser.query("RadioButton"))):  # arrows move, space picks
        if form._radio(radio) == name:
            break
        await pilot.press("right", "space")
    assert form._radio(radio) == name


def _status(form: LaunchForm) -> str:
    return str(form.query_one("#launch-status", Static).render())


async def test_choosing_a_cluster_shows_its_fields_and_checks_against_it(project: Path) -> None:
    app = make_test_app(_with_cluster(project))
    async with app.run_test(size=(120, 44)) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "SineRegression")
        await settle(pilot, ticks=0)
        row = form.query_one("#cluster-row")
        assert form._radio("where") == "local" and not row.display
        assert form.request().on is None

        # On lab, cuda is a valid device although this machine has none: 4 GPUs a node.
        await _choose(pilot, form, "where", "lab")
        await _choose(pilot, form, "device", "cuda")  # offered: a cluster declares GPUs
        await settle(pilot, ticks=0)
        assert row.display
        note = str(form.query_one("#cluster-note", Static).render())
        assert "partition gpu" in note and "time 04:00:00" in note and "4 GPUs a node" in note
        assert form.query_one("#gpus-per-node", Input).placeholder == "4"

        # 2 nodes need DDP: the check says so in the form's words, not the CLI's flags
        form.query_one("#nodes", Input).value = "2"
        await settle(pilot, ticks=0)
        assert "nodes 2 needs backend ddp" in _status(form), _status(form)
        await _choose(pilot, form, "backend", "ddp")
        form.query_one("#gpus-per-node", Input).value = "8"
        await settle(pilot, ticks=0)
        assert "GPUs per node 8: cluster lab declares gpus_per_node = 4" in _status(form), _status(form)
        form.query_one("#gpus-per-node", Input).value = ""
        await settle(pilot, ticks=0)
        assert "✓ ready" in _status(form), _status(form)
        request = form.request()
        assert (request.on, request.nodes, request.gpus_per_node, request.device, request.backend) == \
            ("lab", 2, None, "cuda", "ddp")

        # a sweep from the app stays on this machine
        await _choose(pilot, form, "backend", "single")
        form.query_one("#nodes", Input).value = ""
        await set_field(pilot, form, "lr", "1e-3, 1e-2")
        await settle(pilot, ticks=0)
        assert "runs on this machine's queue, not on lab" in _status(form), _status(form)

        await _choose(pilot, form, "where", "local")
        await settle(pilot, ticks=0)
        assert not row.display and form.request().on is None


async def test_without_clusters_there_is_no_where_choice(project: Path) -> None:
    app = make_test_app(project)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "SineRegression")
        assert not form.query("#where") and form.where_request() == {}


async def test_a_pending_cluster_run_shows_why_it_waits(filled_project: Path) -> None:
    from workbench.store import RunIndex, RunStatus
    from workbench.tui.widgets.run_table import RunTable

    with RunIndex(filled_project / ".workbench" / "index.db") as index:
        index.update_run("2n0000000002", status=RunStatus.QUEUED, ended_at=None,
                         status_reason="slurm job 1234: PENDING (Resources)")
        index.update_run("2n0000000004", status=RunStatus.QUEUED, ended_at=None, status_reason="slurm job 77: submitted")
    app = make_test_app(filled_project)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(RunTable)
        lines = {run_id: table.render_line(1 + app.runs.view.index(run_id)).text
                 for run_id in ("2n0000000002", "2n0000000004", "2n0000000001")}
    assert "queued" in lines["2n0000000002"] and "Resources" in lines["2n0000000002"], lines
    assert "submitted" in lines["2n0000000004"], lines
    assert "Resources" not in lines["2n0000000001"] and "100%" in lines["2n0000000001"], lines
