"""Do runs repeat? The same SineRegression, trained in N fresh processes per setting.

Settings (each a fresh ``python`` with the numerics variables of the calling shell
removed, then these set):

* ``default``          nothing set: torch's thread count, MKL's own kernel dispatch;
* ``omp1``             ``OMP_NUM_THREADS=1``;
* ``no-dynamic``       ``OMP_DYNAMIC=FALSE MKL_DYNAMIC=FALSE``;
* ``cbwr-auto``        ``MKL_CBWR=AUTO`` (MKL's reproducible mode, best code path);
* ``cbwr-strict``      ``MKL_CBWR=AUTO,STRICT`` (also independent of thread count, for gemm);
* ``cbwr-compatible``  ``MKL_CBWR=COMPATIBLE`` (MKL's reproducible mode, SSE2 code path);
* ``deterministic``    workbench's deterministic mode: ``workbench.runs.numerics.DETERMINISTIC_ENV``
  in the environment and ``workbench.core.numerics.apply_numerics(True)`` in the process;
* ``deterministic-compatible``  the same with ``MKL_CBWR=COMPATIBLE``.

Rounds go through the settings in turn (a rotating order), so the machine's load drifts
over all of them alike. For each setting it prints how many runs ended with each distinct
weight set (``6`` is all equal, ``4 + 2`` two sets), the fit time (median, wall and CPU
seconds, the model's fit only: imports and data excluded) and the median of the per-round
ratios to ``default``. With ``--ops`` each process also hashes a set of single operations
(the matrix products and reductions of this model's forward and backward passes, on fixed
inputs), which shows which operation differs between processes. With ``--gemm`` each
process also times a large matrix product (256x1024 @ 1024x1024, float32): the cost of a
setting for a model whose time goes into BLAS, which this small model's does not.

    .venv/bin/python benchmarks/determinism.py [--runs 6] [--samples 8000] [--epochs 2]
        [--settings default,deterministic] [--ops] [--gemm]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "sample_projects" / "quickstart" / "tasks"
sys.path.insert(0, str(ROOT))

from workbench.runs.numerics import DETERMINISTIC_ENV, is_numerics_var  # noqa: E402

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "omp1": {"OMP_NUM_THREADS": "1"},
    "no-dynamic": {"OMP_DYNAMIC": "FALSE", "MKL_DYNAMIC": "FALSE"},
    "cbwr-auto": {"MKL_CBWR": "AUTO"},
    "cbwr-strict": {"MKL_CBWR": "AUTO,STRICT"},
    "cbwr-compatible": {"MKL_CBWR": "COMPATIBLE"},
    "deterministic": dict(DETERMINISTIC_ENV),
    "deterministic-compatible": {**DETERMINISTIC_ENV, "MKL_CBWR": "COMPATIBLE"},
}


def _hash_tensors(tensors: list) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def _op_hashes() -> dict[str, str]:
    """Hashes of this model's single operations on fixed inputs (batch 32, hidden 64)."""
    import torch

    g = torch.Generator().manual_seed(1)

    def rnd(*shape: int):
        return torch.randn(*shape, generator=g)

    x1, h, dy, w = rnd(32, 1), rnd(32, 64), rnd(32, 64), rnd(64, 64)
    big_h, big_dy = rnd(1024, 64), rnd(1024, 64)
    ops = {
        "linear fwd 32x64 @ 64x64 (addmm)": lambda: torch.addmm(rnd(64), h, w.t()),
        "linear fwd 32x1 @ 1x64 (addmm)": lambda: torch.addmm(rnd(64), x1, rnd(64, 1).t()),
        "linear fwd 32x64 @ 64x1 (addmm)": lambda: torch.addmm(rnd(1), h, rnd(1, 64).t()),
        "grad input 32x64 @ 64x64 (mm)": lambda: dy.mm(w),
        "grad weight 64x32 @ 32x64 (mm, transposed)": lambda: dy.t().mm(h),
        "grad weight 1x32 @ 32x64 (mm, transposed)": lambda: rnd(32, 1).t().mm(h),
        "grad bias sum(0) 32x64": lambda: dy.sum(0),
        "val fwd 1024x64 @ 64x64 (addmm)": lambda: torch.addmm(rnd(64), big_h, w.t()),
        "grad weight 64x1024 @ 1024x64": lambda: big_dy.t().mm(big_h),
        "mse 1024x1": lambda: torch.nn.functional.mse_loss(big_h[:, :1], big_dy[:, :1]),
        "sum 1e6": lambda: rnd(1_000_000).sum(),
    }
    out = {}
    for name, op in ops.items():
        results = [op() for _ in range(20)]
        out[name] = _hash_tensors(results)
    return out


def _gemm_seconds(reps: int = 40) -> float:
    """CPU seconds per 256x1024 @ 1024x1024 product (best of three batches of ``reps``)."""
    import torch

    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(256, 1024, generator=g), torch.randn(1024, 1024, generator=g)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(reps):
            a @ b
        best = min(best, (time.process_time() - start) / reps)
    return best


def child(samples: int, epochs: int, deterministic: bool, ops: bool, gemm: bool = False) -> None:
    """Train once in this process and print one JSON line."""
    import torch

    from workbench.sinks import MemorySink

    if deterministic:
        from workbench.core.numerics import apply_numerics

        apply_numerics(True)
    sys.path.insert(0, str(TASKS))
    from sine import SineRegression

    task = SineRegression({"samples": samples, "epochs": epochs}, device="cpu", sink=MemorySink())
    start, cpu = time.perf_counter(), time.process_time()
    task.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    weights = _hash_tensors(list(task.raw_model.state_dict().values()))
    print(json.dumps({"weights": weights, "wall": wall, "cpu": cpu, "threads": torch.get_num_threads(),
                      "ops": _op_hashes() if ops else {}, "gemm": _gemm_seconds() if gemm else None}))


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not is_numerics_var(k)}
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def run_one(setting: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", "--samples", str(args.samples), "--epochs", str(args.epochs)]
    if setting.startswith("deterministic"):
        command.append("--apply")
    if args.ops:
        command.append("--ops")
    if args.gemm:
        command.append("--gemm")
    done = subprocess.run(command, env=_env(SETTINGS[setting]), capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{setting}: the training process failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sets(values: list[str]) -> str:
    counts = collections.Counter(values).most_common()
    return " + ".join(str(n) for _, n in counts) + "  (" + ", ".join(h[:8] for h, _ in counts) + ")"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="fresh processes per setting")
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated, from: " + ", ".join(SETTINGS))
    parser.add_argument("--ops", action="store_true", help="also hash single operations in each process")
    parser.add_argument("--gemm", action="store_true", help="also time a large matrix product in each process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--apply", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.samples, args.epochs, args.apply, args.ops, args.gemm)
        return
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    load_before = os.getloadavg()
    started = time.time()
    results: dict[str, list[dict]] = {n: [] for n in names}
    for round_ in range(args.runs):
        order = names[round_ % len(names):] + names[:round_ % len(names)]
        for name in order:
            results[name].append(run_one(name, args))
        print(f"  round {round_ + 1}/{args.runs} done ({time.time() - started:.0f} s, "
              f"load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    print(f"determinism: SineRegression samples={args.samples} epochs={args.epochs}, {args.runs} fresh "
          f"processes per setting, {os.cpu_count()} CPUs; load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after ({time.time() - started:.0f} s)")
    base = results.get("default")
    print(f"  {'setting':24} {'threads':>7}  {'wall s':>7} {'cpu s':>7}  {'wall/def':>8} {'cpu/def':>8}  weight sets")
    for name in names:
        rows = results[name]
        wall = statistics.median(r["wall"] for r in rows)
        cpu = statistics.median(r["cpu"] for r in rows)
        ratio = cpu_ratio = float("nan")
        if base:
            ratio = statistics.median(r["wall"] / b["wall"] for r, b in zip(rows, base))
            cpu_ratio = statistics.median(r["cpu"] / b["cpu"] for r, b in zip(rows, base))
        print(f"  {name:24} {rows[0]['threads']:>7}  {wall:7.2f} {cpu:7.2f}  {ratio:8.2f} {cpu_ratio:8.2f}  "
              f"{_sets([r['weights'] for r in rows])}")
    if args.gemm:
        print("  256x1024 @ 1024x1024, CPU ms per product (median), ratio to default (median of per-round ratios):")
        for name in names:
            rows = results[name]
            ratio = statistics.median(r["gemm"] / b["gemm"] for r, b in zip(rows, base)) if base else float("nan")
            print(f"    {name:24} {statistics.median(r['gemm'] for r in rows) * 1e3:7.2f}  {ratio:5.2f}")
    if args.ops:
        print("  single operations whose result differed between processes of one setting:")
        for name in names:
            rows = results[name]
            varied = [op for op in rows[0]["ops"] if len({r["ops"][op] for r in rows}) > 1]
            print(f"    {name:24} {', '.join(varied) if varied else 'none'}")


if __name__ == "__main__":
    main()
