"""Run names that could pass for another run's id are refused at launch and fork."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.runs.names import check_run_name

IDS = {"2nqa0000abcd", "2nqb1111wxyz"}


@pytest.mark.parametrize("name", ["2nqa0000abcd", "2nqc2222mnpq", "2nqa", "2NQA00", "2nqb1111"])
def test_id_like_names_are_refused(name: str) -> None:
    with pytest.raises(WorkbenchError, match="run id|prefix of run"):
        check_run_name(name, set(), IDS)


@pytest.mark.parametrize("name", ["brisk-otter-41", "2nq", "baseline", "lr.0.1", "2nqz-run", "zzzz"])
def test_ordinary_names_pass(name: str) -> None:
    check_run_name(name, set(), IDS)


@pytest.mark.parametrize("name,why", [("", "bad run name"), ("123", "bad run name"), ("a b", "bad run name"),
                                      ("taken", "already exists")])
def test_other_bad_names(name: str, why: str) -> None:
    with pytest.raises(WorkbenchError, match=why):
        check_run_name(name, {"taken"}, IDS)


def test_resources_refuse_what_the_machine_cannot_do_and_warn_on_oversubscription() -> None:
    from workbench.runs.probe import check_resources

    cpu = {"devices": ["cpu"], "default": "cpu"}
    gpu = {"devices": ["cpu", "cuda:0"], "default": "cuda:0"}
    with pytest.raises(WorkbenchError, match="16-mixed.*CUDA"):
        check_resources("cpu", "single", 1, "16-mixed", cpu)
    with pytest.raises(WorkbenchError, match="16-mixed"):
        check_resources("auto", "single", 1, "16-mixed", cpu)
    assert check_resources("cuda", "single", 1, "16-mixed", gpu) == []
    assert check_resources("cpu", "single", 1, "bf16-mixed", cpu) == []
    assert check_resources("cpu", "ddp", 2, "32", cpu, cpus=2) == []
    (warning,) = check_resources("cpu", "ddp", 3, "32", cpu, cpus=2)
    assert "more than this machine's 2 cores" in warning
    with pytest.raises(WorkbenchError, match="at most 8"):
        check_resources("cpu", "ddp", 99, "32", cpu, cpus=2)
