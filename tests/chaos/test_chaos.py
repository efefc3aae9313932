"""Chaos: runs SIGKILLed at random moments and resumed keep the promise of docs/resume.md.

Three runs of the sample task with a checkpoint every 5 steps, each killed twice (its
training process, its supervisor, or both; mid-training, while starting, within
milliseconds of a new checkpoint, or during a validation) and resumed after each kill: the
first kills of the three runs cover each target and each moment but start-up. Every run
must end ``completed`` with one point per step on every per-step curve, the curves and final
weights of an uninterrupted run (deterministic mode, ``OMP_NUM_THREADS=1``), no process
left behind and the user's git state as it was. The seed is printed; ``CHAOS_SEED=N``
replays a campaign's plan. ``scripts/chaos.py`` is the long version (100+ kills).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from chaos_lib import TARGETS, Settings, run_chaos

pytestmark = pytest.mark.slow


def _seed() -> int:
    text = os.environ.get("CHAOS_SEED", "").strip()
    return int(text) if text else random.SystemRandom().randrange(1, 1_000_000)


def test_runs_killed_anywhere_resume_to_the_uninterrupted_end(tmp_path: Path, probe_cache: Path) -> None:
    seed = _seed()
    print(f"\nchaos: CHAOS_SEED={seed}")
    report = run_chaos(Settings(seed=seed), tmp_path, probe_cache, log=print)
    print(report.summary())

    histories = "\n".join(f"  {name}: " + "; ".join(lines) for name, lines in report.histories.items())
    assert not report.failures, (f"CHAOS_SEED={seed} broke the promise:\n" + "\n".join(report.failures)
                                 + f"\nwhat happened:\n{histories}")
    assert report.runs == 3
    assert all(report.kills[t] for t in TARGETS), f"not every target was killed: {dict(report.kills)}\n{histories}"
    assert all(report.moments[m] for m in ("random", "checkpoint", "validation")), f"{dict(report.moments)}\n{histories}"
    assert report.resumes >= 2 and report.points >= 3 * Settings(seed=seed).total, report.summary()
