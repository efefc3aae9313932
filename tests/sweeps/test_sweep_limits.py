"""``[sweep] max_runs`` in workbench.toml, and ``--prune hyperband`` from the flags and a sweep
file: checked before anything is written (no processes are started here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.projects import index_of, make_project
from test_sweeps import invoke

from workbench.errors import WorkbenchError
from workbench.project import load_project
from workbench.runs.sweep import SweepRequest, load_sweep_file, plan_sweep


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, probe_cache: Path) -> Path:
    """A project whose sweeps may make at most 4 runs (nothing in this module writes to it)."""
    root = make_project(tmp_path_factory.mktemp("limited"), probe_cache)
    with open(root / "workbench.toml", "a", encoding="utf-8") as toml:
        toml.write("\n[sweep]\nmax_runs = 4\n")
    return root


def test_the_run_limit_is_the_projects_and_the_refusal_names_the_setting(limited: Path) -> None:
    result = invoke(limited, "sweep", "SineRegression", "-g", "lr=1e-3,1e-2,3e-2", "-g", "hidden=16,32")

    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "this sweep makes 6 runs, more than 4: pass --yes" in result.output
    assert "[sweep] max_runs in workbench.toml" in result.output
    with index_of(limited) as index:
        assert index.count_runs() == 0 and index.list_sweeps() == []
        project = load_project(limited)
        assert project.sweep_max_runs == 4
        plan = plan_sweep(project, SweepRequest("SineRegression", ["lr=1e-3,1e-2", "hidden=16,32"]), index=index)
        assert len(plan.trials) == 4  # at the limit: allowed
        yes = SweepRequest("SineRegression", ["lr=1e-3,1e-2,3e-2", "hidden=16,32"], yes=True)
        assert len(plan_sweep(project, yes, index=index).trials) == 6
        assert index.count_runs() == 0  # planning writes nothing


def test_hyperband_is_a_pruner_of_the_flags_and_of_sweep_files(limited: Path) -> None:
    pytest.importorskip("optuna")
    sweep_file = limited / "hb.toml"
    sweep_file.write_text('task = "SineRegression"\ntrials = 3\nprune = "hyperband"\n'
                          '[optuna]\nlr = "loguniform(1e-4, 1e-1)"\n')
    project = load_project(limited)
    with index_of(limited) as index:
        plan = plan_sweep(project, load_sweep_file(project, sweep_file), index=index)
        assert plan.kind == "optuna" and plan.spec()["prune"] == "hyperband"
        sweep_file.write_text(sweep_file.read_text().replace('"hyperband"', '"asha"'))
        with pytest.raises(WorkbenchError, match="--prune must be median or hyperband"):
            plan_sweep(project, load_sweep_file(project, sweep_file), index=index)
    result = invoke(limited, "sweep", "SineRegression", "-g", "lr=1e-3,1e-2", "--prune", "hyperband")
    assert result.exit_code == 2 and "--prune is for --optuna sweeps" in result.output


@pytest.mark.parametrize("table, message", [
    ("[sweep]\nmax_runs = 0\n", "workbench.toml:2: sweep.max_runs must be a whole number of runs >= 1"),
    ('[sweep]\nmax_runs = "5000"\n', "sweep.max_runs must be a whole number of runs >= 1 (default 1000); got '5000'"),
    ("[sweep]\nmax_run = 5000\n", "unknown key 'max_run' in [sweep]; valid keys: max_runs"),
])
def test_a_bad_sweep_table_is_one_line_with_its_file_and_line(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "workbench.toml").write_text(table)
    result = invoke(tmp_path, "sweep", "ls")

    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
