"""The launch form's "where" choice: this machine, or one of the project's ``[clusters.NAME]``.

A mixin of :class:`~workbench.tui.screens.launch.LaunchForm`, shown only when
``workbench.toml`` names a cluster. Choosing a cluster shows its fields — nodes and GPUs per
node, which the launch asks for, and its partition, time limit and account, which come from
the table — and the same live check as the CLI's ``--on NAME``: the request is judged against
the cluster's declared resources (``workbench.runs.cluster_launch.check_placement``), never
this machine's devices, so ``cuda`` is a valid device from a login node without GPUs.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Input, Label, RadioButton, Static

from workbench.tui._typed import workbench_app
from workbench.tui.screens._choices import Choices

__all__ = ["LOCAL", "WhereFields", "cluster_summary"]

#: The "where" choice that means this machine.
LOCAL = "local"


def cluster_summary(cluster: Any) -> str:
    """``slurm · partition gpu · time 04:00:00 · 4 GPUs a node``: what the table fixes."""
    parts = [cluster.kind, f"partition {cluster.partition or '(default)'}",
             f"time {cluster.time or '(partition default)'}"]
    if cluster.account:
        parts.append(f"account {cluster.account}")
    parts.append(f"{cluster.gpus_per_node} GPU{'s' if cluster.gpus_per_node != 1 else ''} a node"
                 if cluster.gpus_per_node else "no GPUs")
    return " · ".join(parts)


class WhereFields:
    """The "where" rows of the launch form and what they do (mixed into ``LaunchForm``)."""

    # Provided by LaunchForm.
    clone_of: Any
    query_one: Any
    _radio: Any
    _value: Any

    def _clusters(self) -> tuple[Any, ...]:
        return tuple(workbench_app(self).project.clusters)  # type: ignore[arg-type]

    def _where_rows(self) -> ComposeResult:
        """A "where" choice and the chosen cluster's fields (nothing without clusters)."""
        clusters = self._clusters()
        if not clusters:
            return
        with Horizontal(classes="field-row"):
            yield Label("where", classes="field-name")
            with Choices(id="where", classes="choices"):
                yield RadioButton("this machine", value=True, name=LOCAL)
                for cluster in clusters:
                    yield RadioButton(cluster.name, value=False, name=cluster.name)
        with Horizontal(id="cluster-row", classes="field-row"):
            yield Label("nodes", classes="field-name")
            yield Input("", placeholder="1", id="nodes", type="integer", compact=True, classes="small-input",
                        tooltip="Nodes to ask the cluster for (DDP across them)")
            yield Label("GPUs per node", classes="field-name")
            yield Input("", placeholder="", id="gpus-per-node", type="integer", compact=True,
                        classes="small-input", tooltip="GPUs to ask for on each node")
            yield Static("", id="cluster-note", classes="field-type")

    def where(self) -> Any:
        """The chosen cluster (None: this machine)."""
        chosen = self._radio("where")
        return next((c for c in self._clusters() if c.name == chosen), None)

    def _where_int(self, id: str) -> int | None:
        text = self._value(id).strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def where_request(self) -> dict[str, Any]:
        """The ``LaunchRequest`` fields of the choice: ``on``, ``nodes``, ``gpus_per_node``."""
        cluster = self.where()
        if cluster is None:
            return {}
        return {"on": cluster.name, "nodes": self._where_int("nodes"), "gpus_per_node": self._where_int("gpus-per-node")}

    def _show_where(self) -> None:
        """Show the cluster's fields while a cluster is chosen."""
        try:
            row = self.query_one("#cluster-row")
        except Exception:  # no clusters: no rows
            return
        cluster = self.where()
        row.display = cluster is not None
        if cluster is not None:
            self.query_one("#gpus-per-node", Input).placeholder = str(cluster.gpus_per_node) \
                if cluster.gpus_per_node else "0"
            self.query_one("#cluster-note", Static).update(Content.from_markup("[dim]$s", s=cluster_summary(cluster)))
