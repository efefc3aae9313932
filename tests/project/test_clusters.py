"""``[clusters.NAME]`` tables and ``[project] index`` in workbench.toml: parsed, checked, one
line (file, line, table, key) for anything wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.project import ProjectError
from workbench.project.settings import load_project

LAB = '''[project]
name = "demo"

[clusters.lab]
kind = "slurm"
partition = "gpu"
account = "ml"
time = "04:00:00"
gpus_per_node = 4
cpus_per_task = 8
setup = ["module load cuda/12.4", "source .venv/bin/activate"]
sbatch = ["--qos=normal"]
signal_lead = 120

[clusters.cpu-only]
kind = "slurm"
'''


def _project(tmp_path: Path, text: str):
    (tmp_path / "workbench.toml").write_text(text)
    return load_project(tmp_path)


def test_clusters_are_parsed_in_file_order(tmp_path: Path) -> None:
    project = _project(tmp_path, LAB)
    lab, cpu = project.clusters
    assert (lab.name, lab.partition, lab.account, lab.time, lab.gpus_per_node, lab.cpus_per_task) == \
        ("lab", "gpu", "ml", "04:00:00", 4, 8)
    assert lab.setup == ("module load cuda/12.4", "source .venv/bin/activate") and lab.sbatch == ("--qos=normal",)
    assert (lab.signal_lead, lab.line) == (120, 4)
    assert (cpu.name, cpu.partition, cpu.gpus_per_node, cpu.cpus_per_task, cpu.signal_lead) == ("cpu-only", "", 0, None, 120)
    assert project.cluster("lab") is lab and project.cluster("nope") is None


@pytest.mark.parametrize(("line", "replacement", "message"), [
    ("gpus_per_node = 4", "gpus_per_node = \"4\"",
     "workbench.toml:9: [clusters.lab] gpus_per_node must be a whole number >= 0; got '4'"),
    ("gpus_per_node = 4", "gpu_per_node = 4",
     "workbench.toml:9: unknown key 'gpu_per_node' in [clusters.lab]; valid keys: kind, partition, account, time, "
     "gpus_per_node, cpus_per_task, setup, sbatch, signal_lead; did you mean 'gpus_per_node'?"),
    ("kind = \"slurm\"\npartition", "kind = \"pbs\"\npartition",
     "workbench.toml:5: [clusters.lab] kind must be one of 'slurm'; got 'pbs'"),
    ("time = \"04:00:00\"", "time = \"4 hours\"", "workbench.toml:8: [clusters.lab] time must be a Slurm time limit"),
    ("sbatch = [\"--qos=normal\"]", "sbatch = [\"--qos\", \"normal\"]",
     "workbench.toml:12: [clusters.lab] sbatch must be a list of sbatch options"),
    ("sbatch = [\"--qos=normal\"]", "sbatch = \"--qos=normal\"",
     "workbench.toml:12: [clusters.lab] sbatch must be a list of non-empty one-line strings"),
    ("signal_lead = 120", "signal_lead = 1e3", "workbench.toml:13: [clusters.lab] signal_lead must be a whole number"),
    ("cpus_per_task = 8", "cpus_per_task = 0", "workbench.toml:10: [clusters.lab] cpus_per_task must be a whole number >= 1"),
    ("setup = [", "setup = [1, ", "workbench.toml:11: [clusters.lab] setup must be a list"),
    ("[clusters.cpu-only]\nkind = \"slurm\"\n", "[clusters.cpu-only]\npartition = \"x\"\n",
     "workbench.toml:15: [clusters.cpu-only] needs kind = \"slurm\""),
])
def test_a_bad_cluster_table_is_one_line_naming_file_line_table_and_key(
        tmp_path: Path, line: str, replacement: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the file is named as the user would reach it
    assert line in LAB
    with pytest.raises(ProjectError) as info:
        _project(tmp_path, LAB.replace(line, replacement, 1))
    text = str(info.value)
    assert "\n" not in text and text.startswith(message), text


def test_the_index_can_live_outside_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_INDEX", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    root = tmp_path / "proj"
    root.mkdir()
    assert _project(root, "").index_path == root / ".workbench" / "index.db"
    project = _project(root, '[project]\nindex = "~/.cache/workbench/demo/index.db"\n')
    assert project.index_path == tmp_path / "home" / ".cache" / "workbench" / "demo" / "index.db"
    assert project.runs_dir == root / ".workbench" / "runs"  # only the index moves
    monkeypatch.setenv("WORKBENCH_INDEX", str(tmp_path / "elsewhere.db"))
    assert project.index_path == tmp_path / "elsewhere.db"
    monkeypatch.delenv("WORKBENCH_INDEX")
    monkeypatch.chdir(root)
    with pytest.raises(ProjectError, match=r"^workbench.toml:2: project.index must be a non-empty string"):
        _project(root, "[project]\nindex = 3\n")
