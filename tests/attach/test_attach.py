"""workbench.init(): a plain script, two lines, tracked like a launched run (no torch)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.attach import mask_secrets
from workbench.snapshot import list_refs
from workbench.store import RunIndex

SCRIPT = '''import argparse, sys, time
import workbench

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--api-key", default="s3cret")
p.add_argument("--fail", action="store_true")
p.add_argument("--hang", action="store_true")
args = p.parse_args()
run = workbench.init(config=vars(args), tags=["plain"])
for step in range(1, 51):
    run.log({"loss": 1.0 / step, "lr": args.lr}, step=step)
if args.hang:
    print("ready", flush=True)
    time.sleep(600)
if args.fail:
    raise ValueError("boom")
print("torch" in sys.modules)
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "plain"
    root.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    (root / "train.py").write_text(SCRIPT)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init"], cwd=root,
                   check=True, env=env)
    return root


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CEILING_DIRECTORIES": str(repo.parent)}
    env.pop("WORKBENCH_RUN_DIR", None)
    return subprocess.run([sys.executable, "train.py", *args], cwd=repo, capture_output=True, text=True,
                          timeout=120, env=env)


def _runs(repo: Path) -> list:
    with RunIndex(repo / ".workbench" / "index.db") as index:
        return index.list_runs()


def test_a_plain_script_becomes_a_completed_run_with_its_curves_and_snapshot(repo: Path) -> None:
    done = _run(repo, "--lr", "0.5", "--api-key", "abc")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # torch was never imported
    (run,) = _runs(repo)
    assert run.kind == "attached" and run.status == "completed" and run.task == "train"
    assert run.config["lr"] == 0.5 and run.config["api_key"] == "***" and run.tags == ("plain",)
    assert "abc" not in " ".join(run.command) and "--api-key" in run.command
    assert run.snapshot_commit and run.id in list_refs(repo, state_dir=repo / ".workbench")
    with RunIndex(repo / ".workbench" / "index.db") as index:
        assert [s for s, _, _ in index.points(run.id, "loss")] == list(range(1, 51))
    assert (repo / "workbench.toml").is_file() and ".workbench/" in (repo / ".gitignore").read_text()


def test_an_exception_fails_the_run_with_its_error(repo: Path) -> None:
    done = _run(repo, "--fail")

    assert done.returncode == 1 and "ValueError: boom" in done.stderr
    (run,) = _runs(repo)
    assert run.status == "failed" and run.error == "ValueError: boom" and "Traceback" in (run.traceback or "")


def test_a_killed_script_is_reconciled_interrupted(repo: Path) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CEILING_DIRECTORIES": str(repo.parent)}
    env.pop("WORKBENCH_RUN_DIR", None)
    proc = subprocess.Popen([sys.executable, "train.py", "--hang"], cwd=repo, stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        (run,) = _runs(repo)
        assert run.status == "running"
        listed = subprocess.run([sys.executable, "-m", "workbench.cli", "ls", "--json"], cwd=repo, text=True,
                                capture_output=True, env={**env, "WORKBENCH_STALE_AFTER": "0"})
        assert json.loads(listed.stdout)[0]["status"] == "running"  # alive: not reconciled away
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.2)
        listed = subprocess.run([sys.executable, "-m", "workbench.cli", "ls", "--json"], cwd=repo, text=True,
                                capture_output=True, env={**env, "WORKBENCH_STALE_AFTER": "0"})
        assert json.loads(listed.stdout)[0]["status"] == "interrupted", listed.stdout
    finally:
        proc.kill()


def test_secret_looking_arguments_are_masked() -> None:
    assert mask_secrets(["train.py", "--api-key", "abc", "--token=xyz", "--lr", "1", "PASSWORD=p", "--keyring",
                         "--epochs", "3"]) == [
        "train.py", "--api-key", "***", "--token=***", "--lr", "1", "PASSWORD=***", "--keyring", "--epochs", "3"]
