"""The long chaos campaign: 100+ SIGKILLs of real runs, each run resumed and checked.

The same code as ``tests/chaos/test_chaos.py`` (``tests/chaos/chaos_lib.py``), longer: runs
of the sample task are launched until at least ``--kills`` kills happened, ``--parallel``
at a time; each is killed up to ``--kills-per-run`` times (its training process, its
supervisor or both; mid-training, at start-up, right after a checkpoint or during a
validation) and resumed after each kill. Every run must end ``completed`` with one point
per step, the curves and final weights of an uninterrupted run, no process left behind,
and the user's git state untouched. Prints the figures; exits 1 if a promise was broken.

    .venv/bin/python scripts/chaos.py [--kills 100] [--kills-per-run 8] [--parallel 3]
                                      [--epochs 5] [--seed N] [--keep]

``--seed`` replays a campaign's plan (which kill, when); the machine's timing does not repeat.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "chaos")]

from chaos_lib import Settings, probe_cache, run_chaos  # noqa: E402 - after the path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="Launch runs until this many kills happened.")
    parser.add_argument("--kills-per-run", type=int, default=8, help="Kills planned per run.")
    parser.add_argument("--parallel", type=int, default=3, help="Runs driven at once.")
    parser.add_argument("--epochs", type=int, default=5, help="Epochs of 32 steps per run.")
    parser.add_argument("--seed", type=int, help="The campaign's seed (default: a fresh one, printed).")
    parser.add_argument("--keep", action="store_true", help="Keep the projects' folder (printed).")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    settings = Settings(seed=seed, runs=args.parallel, kills_per_run=args.kills_per_run, min_kills=args.kills,
                        parallel=args.parallel, epochs=args.epochs)
    workdir = Path(tempfile.mkdtemp(prefix="workbench-chaos-"))
    print(f"chaos: seed {seed}, {settings.total} steps per run, a checkpoint every {settings.every}; "
          f"projects in {workdir}", flush=True)
    try:
        report = run_chaos(settings, workdir, probe_cache(workdir / "device-probe"),
                           log=lambda line: print(line, flush=True))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report.summary())
    for failure in report.failures:
        print(f"FAILED {failure}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
