"""workbench.init()'s run.log_image: a plain script (numpy, no torch) keeps images that the
index lists with their key and step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.runs.images import images
from workbench.store import RunIndex

SCRIPT = '''import sys
import numpy as np
import workbench

run = workbench.init(config={})
for step in (1, 2):
    run.log({"loss": 1.0 / step}, step=step)
    run.log_image("noise", np.full((6, 4, 3), step * 0.25))
try:
    run.log_image("../out", np.zeros((2, 2)))
except Exception as exc:
    print(type(exc).__name__, str(exc).splitlines()[0])
print("torch" in sys.modules)
'''


def test_a_plain_script_logs_images_without_torch(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    env.pop("WORKBENCH_RUN_DIR", None)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True, env=env)
    (root / "train.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "train.py"], cwd=root, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    refused, torch_loaded = done.stdout.strip().splitlines()
    assert refused.startswith("ImageError image key '../out' would leave")
    assert torch_loaded == "False"
    with RunIndex(root / ".workbench" / "index.db") as index:
        (run,) = index.list_runs()
        found = images(index, run.id)
    assert [(key, step) for key, step, _ in found] == [("noise", 1), ("noise", 2)]
    assert all(path.is_file() and path.suffix == ".png" for _, _, path in found)
