"""The Lightning logger against real Lightning: a tiny LightningModule trained by a script in a
temporary git project; its config, curves, checkpoints and end land in the real index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightning.pytorch" if __import__("importlib").util.find_spec("lightning")
                    else "pytorch_lightning", reason="Lightning is not installed (pip install -e '.[lightning]')")

from workbench.store import RunIndex  # noqa: E402

pytestmark = pytest.mark.slow

SCRIPT = '''import sys
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
try:
    import lightning.pytorch as pl
except ImportError:
    import pytorch_lightning as pl
from workbench.integrations.lightning import WorkbenchLogger


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.1, hidden: int = 4, fail_at: int = -1, interrupt_at: int = -1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def training_step(self, batch, i):
        if self.global_step == self.hparams.fail_at:
            raise ValueError("boom")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, generator=g)
    return DataLoader(TensorDataset(x, 2 * x), batch_size=16)


def trainer(epochs, logger):
    return pl.Trainer(max_epochs=epochs, logger=logger, accelerator="cpu", log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False)


mode = sys.argv[1]
logger = WorkbenchLogger(config={"data": "synthetic"}, tags=["lightning"])
model = Tiny(fail_at=2 if mode == "fail" else -1, interrupt_at=2 if mode == "interrupt" else -1)
trainer(2, logger).fit(model, loader(), loader())
print("checkpoint", logger.last_checkpoint)
if mode == "resume":
    again = WorkbenchLogger()  # a fresh logger finds the checkpoint through the index
    start = again.last_checkpoint
    print("resumed from", start)
    trainer(3, again).fit(Tiny(), loader(), loader(), ckpt_path=start)
print("torch-free index:", "workbench.core" not in sys.modules)
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "lit"
    root.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    (root / "train.py").write_text(SCRIPT)
    return root


def _run(repo: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CEILING_DIRECTORIES": str(repo.parent), "OMP_NUM_THREADS": "1"}
    env.pop("WORKBENCH_RUN_DIR", None)
    return subprocess.run([sys.executable, "train.py", mode], cwd=repo, capture_output=True, text=True,
                          timeout=240, env=env)


def _only_run(repo: Path):
    with RunIndex(repo / ".workbench" / "index.db") as index:
        (run,) = index.list_runs()
        return run, index.artifacts(run.id), {k: index.points(run.id, k) for k in ("train_loss", "val_loss", "epoch")}


def test_an_exception_in_training_fails_the_run_with_its_error(repo: Path) -> None:
    done = _run(repo, "fail")

    assert done.returncode != 0 and "ValueError: boom" in done.stderr
    run, _, points = _only_run(repo)
    assert run.status == "failed" and run.error == "ValueError: boom" and "Traceback" in (run.traceback or "")
    assert [s for s, _, _ in points["train_loss"]] == [0, 1]


def test_ctrl_c_interrupts_the_run(repo: Path) -> None:
    done = _run(repo, "interrupt")

    assert done.returncode == 1  # Lightning exits 1 after a graceful shutdown
    run, _, _ = _only_run(repo)
    assert run.status == "interrupted"


def test_two_epochs_record_everything_and_a_restart_resumes_from_the_last_checkpoint(repo: Path) -> None:
    """One script run (a Lightning process costs ~10 s of CPU): two epochs, then a fresh
    logger that finds the last checkpoint through the index and trains a third epoch."""
    done = _run(repo, "resume")

    assert done.returncode == 0, done.stderr[-3000:]
    run, artifacts, points = _only_run(repo)  # the restart went on in the same run
    assert run.kind == "attached" and run.status == "completed" and run.tags == ("lightning",)
    assert run.config["lr"] == 0.1 and run.config["hidden"] == 4 and run.config["data"] == "synthetic"
    # 64 samples in batches of 16: 4 steps an epoch, a train_loss point at steps 0..7; the
    # third epoch continues the step count (8..11) instead of starting again at 0
    assert [s for s, _, _ in points["train_loss"]] == list(range(12))
    assert [s for s, _, _ in points["val_loss"]] == [3, 7, 11]  # after each epoch, at its last step
    # each epoch's save is recorded when it is written (ModelCheckpoint then keeps the newest only;
    # the index keeps rows of removed files, as it does for rotated task checkpoints)
    saved = [a for a in artifacts if a["kind"] == "checkpoint"]
    assert [a["path"] for a in saved] == ["lightning/checkpoints/epoch=0-step=4.ckpt",
                                          "lightning/checkpoints/epoch=1-step=8.ckpt",
                                          "lightning/checkpoints/epoch=2-step=12.ckpt"]
    second = saved[1]
    assert second["size"] > 0
    second_path = Path(run.run_dir) / "artifacts" / second["path"]
    assert done.stdout.splitlines()[0] == f"checkpoint {second_path}"  # after the first two epochs
    assert "resumed from " + str(second_path) in done.stdout
    assert (Path(run.run_dir) / "artifacts" / saved[-1]["path"]).is_file()
