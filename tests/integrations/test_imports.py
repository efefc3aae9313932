"""Importing the integrations package loads neither Lightning, transformers nor torch."""

from __future__ import annotations

import json
import subprocess
import sys


def test_the_package_imports_no_training_library() -> None:
    probe = ("import sys, json, workbench, workbench.integrations\n"
             "assert 'WorkbenchLogger' in dir(workbench.integrations)\n"
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert not loaded & {"torch", "lightning", "pytorch_lightning", "transformers"}
