"""The training side of ``workbench verify``: replay a run from one of its checkpoints.

``python -m workbench.runs.train_verify RUN_DIR SCRATCH CHECKPOINT [FINAL]`` imports the
task from the run's code snapshot, restores ``CHECKPOINT`` (a file of the run), trains to
the end into the scratch folder — its points go to ``SCRATCH/metrics.jsonl``, its
checkpoints to ``SCRATCH/checkpoints`` — and compares its final weights with the run's
``FINAL`` checkpoint, tensor by tensor (``torch.equal``). The run's own folder and its
points in the index are never written. The result is ``SCRATCH/result.json``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["compare_states", "main"]


def compare_states(a: Any, b: Any, where: str = "model") -> str | None:
    """The first place two checkpoint states differ (bit for bit), or None when equal."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return where
        if a.shape != b.shape or a.dtype != b.dtype or not torch.equal(a, b):
            return where
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where} (keys differ)"
        for key in sorted(a, key=str):
            found = compare_states(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return f"{where} (lengths differ)"
        for i, (x, y) in enumerate(zip(a, b)):
            found = compare_states(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b or (a != a and b != b) else where


def main(argv: list[str] | None = None) -> int:
    """Replay; write ``result.json``; return 0 (the comparison's verdict is in the file)."""
    args = sys.argv[1:] if argv is None else argv
    run_dir, scratch, start = Path(args[0]), Path(args[1]), Path(args[2])
    final = Path(args[3]) if len(args) > 3 else None
    result: dict[str, Any] = {"ok": False}
    try:
        from workbench.extensions import assemble_task
        from workbench.extensions.checkpoint import load_checkpoint, load_latest
        from workbench.runs.spec import read_spec
        from workbench.runs.train import import_task
        from workbench.sinks import JsonlSink

        spec = read_spec(run_dir)
        from workbench.core.numerics import apply_numerics
        from workbench.runs.numerics import NumericsSettings

        settings = NumericsSettings.from_env(os.environ, default_deterministic=spec.deterministic)
        apply_numerics(settings.deterministic, settings.threads, settings.interop_threads)
        task_cls = import_task(Path(spec.code_dir), spec.task_file, spec.task_module, spec.task)
        sink = JsonlSink(scratch / "metrics.jsonl")
        task = assemble_task(task_cls, spec.config, device=spec.device, precision=spec.precision,
                             backend=spec.backend, run_dir=scratch, sink=sink, reporter=None, checkpoints=True)
        task.restore(load_checkpoint(start))
        task.fit()
        for step in (spec.steps or ["fit"])[1:]:  # a pipeline's later steps log points too
            task.test() if step == "test" else task.evaluate()
        sink.close()
        result.update(ok=True, final_step=task.state.step)
        if final is not None:
            mine = load_latest(scratch / "checkpoints")
            theirs = load_checkpoint(final)
            if mine is None:
                result["weights"] = "the replay wrote no checkpoint"
            else:
                result["weights_step"] = theirs.get("state", {}).get("step") if isinstance(theirs.get("state"), dict) \
                    else None
                result["weights"] = compare_states(mine[1].get("model"), theirs.get("model")) or "equal"
    except BaseException as exc:  # noqa: BLE001 - reported in result.json, never a traceback to the user
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        traceback.print_exc()
    (scratch / "result.json").write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
