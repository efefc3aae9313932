"""The Hugging Face callback against a real ``transformers.Trainer``: a tiny GPT-2 built from a
config object (no download, no network) trained by a script in a temporary git project.

transformers is not in the dev extra (about 40 s and 220 MB to install with accelerate, 6 s
to import here): these tests run where it is installed (`pip install -e '.[huggingface]'`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="transformers is not installed (pip install -e '.[huggingface]')")
pytest.importorskip("accelerate", reason="transformers' Trainer needs accelerate (pip install -e '.[huggingface]')")

from workbench.store import RunIndex  # noqa: E402

pytestmark = pytest.mark.slow

SCRIPT = '''import sys
import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments
from workbench.integrations.huggingface import WorkbenchCallback, output_dir


class Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        ids = torch.arange(i, i + 8) % 50
        return {"input_ids": ids, "labels": ids}


torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=16,
                                   bos_token_id=0, eos_token_id=0))
callback = WorkbenchCallback(config={"data": "synthetic"}, tags=["hf"])
args = TrainingArguments(output_dir=output_dir(), num_train_epochs=2, per_device_train_batch_size=8,
                         logging_steps=1, save_strategy="epoch", report_to=[], use_cpu=True,
                         disable_tqdm=True, learning_rate=1e-3)
Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[callback]).train()
print("checkpoint", callback.last_checkpoint)
if sys.argv[1] == "fail":
    raise RuntimeError("after training")
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "hf"
    root.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    (root / "train.py").write_text(SCRIPT)
    return root


def _run(repo: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "HF_HUB_OFFLINE": "1",
           "GIT_CEILING_DIRECTORIES": str(repo.parent), "OMP_NUM_THREADS": "1", "HF_HOME": str(repo.parent / "hf")}
    env.pop("WORKBENCH_RUN_DIR", None)
    return subprocess.run([sys.executable, "train.py", mode], cwd=repo, capture_output=True, text=True,
                          timeout=240, env=env)


def test_a_trainer_records_config_curves_checkpoints_and_completion(repo: Path) -> None:
    done = _run(repo, "plain")

    assert done.returncode == 0, done.stderr[-3000:]
    with RunIndex(repo / ".workbench" / "index.db") as index:
        (run,) = index.list_runs()
        loss = index.points(run.id, "loss")
        artifacts = {a["path"] for a in index.artifacts(run.id)}
        events = [e.kind for e in index.events(run.id)]
    assert run.status == "completed" and run.kind == "attached" and run.tags == ("hf",)
    assert run.config["learning_rate"] == 0.001 and run.config["model"]["n_layer"] == 1
    assert run.config["data"] == "synthetic" and "output_dir" not in run.config
    assert [s for s, _, _ in loss] == list(range(1, 9))  # 4 steps an epoch, logged every step
    assert {"hf/checkpoint-4/model.safetensors", "hf/checkpoint-8/model.safetensors"} <= artifacts
    assert "trained" in events
    assert done.stdout.strip().endswith(str(Path(run.run_dir) / "artifacts" / "hf" / "checkpoint-8"))


def test_an_error_after_training_fails_the_run(repo: Path) -> None:
    done = _run(repo, "fail")

    assert done.returncode == 1 and "RuntimeError: after training" in done.stderr
    with RunIndex(repo / ".workbench" / "index.db") as index:
        (run,) = index.list_runs()
    assert run.status == "failed" and run.error == "RuntimeError: after training"
