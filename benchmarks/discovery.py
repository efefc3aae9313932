"""Benchmark static task discovery on a synthetic project of 200 task files.

The project has 20 framework files (abstract tasks with a Config, a nested dataclass and
abstract methods) and 180 model files whose tasks inherit from a framework in another
file, through absolute, relative and sibling imports. The baseline, measured in the same
run, is the least any static discovery must do: read every file and ``ast.parse`` it
(also shown with the garbage collector held off, as discovery does while parsing).

Four ways of running ``discover(project)``:

* cold: nothing cached, in memory or on disk (the project's first discovery; it includes
  writing ``<state_dir>/cache/discovery-v1.json``);
* warm in-process: the summaries are in memory (the TUI re-discovering);
* warm from disk: memory cleared, the disk cache kept (each CLI command is a new process).

The files are left to age a few seconds before timing: a file changed within the last
two seconds is checked against its digest, as real task files mostly are not.

Run: ``.venv/bin/python benchmarks/discovery.py``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import ast
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.project import DISCOVERY_CACHE_FILE, clear_discovery_cache, discover, load_project  # noqa: E402

FRAMEWORKS = 20
MODELS = 180
REPEATS = 15

FRAMEWORK = '''"""Framework {k}: how to train family {k}."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from workbench import Task


@dataclass
class Optim{k}:
    lr: float = 1e-3  # learning rate
    momentum: float = 0.9
    betas: tuple[float, ...] = (0.9, 0.999)


class Framework{k}(Task):
    """Train family {k} with early stopping.

    Subclasses choose the model.
    """

    abstract = True

    @dataclass
    class Config:
        epochs: int = 10
        batch_size: int = 64
        seed: int = 0
        optim: Optim{k} = field(default_factory=Optim{k})
        layers: list[int] = field(default_factory=lambda: [64, 64])
        opt: str = "adam"

    def build_data(self):
        data = [i * 0.5 for i in range(100)]
        return data, data

    @abc.abstractmethod
    def build_model(self):
        """The model."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = ((self.model(x) - y) ** 2).mean()
        return {{"loss": loss}}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {{"loss": ((self.model(x) - y) ** 2).mean()}}
'''

MODEL = '''"""Model {i} for framework {k}."""

from __future__ import annotations

from dataclasses import dataclass

{import_line}


def helper_{i}(width: int) -> list[int]:
    return [width] * 3


class Model{i}Task({base}):
    """Model {i}: a small network trained by framework {k}.

    It has a longer description, too, as real tasks do.
    """

    @dataclass
    class Config({base}.Config):
        hidden: int = {i}
        dropout: float = 0.1
        lr: float = 0.01

    def build_model(self):
        sizes = helper_{i}(self.config.hidden)
        return sizes

    def configure(self) -> None:
        for step in range(3):
            if step % 2:
                continue
'''


def make_project(root: Path) -> None:
    (root / "workbench.toml").write_text('[project]\nname = "bench"\n')
    frameworks = root / "tasks" / "frameworks"
    frameworks.mkdir(parents=True)
    (root / "tasks" / "frameworks" / "__init__.py").write_text("")
    for k in range(FRAMEWORKS):
        (frameworks / f"fw{k}.py").write_text(FRAMEWORK.format(k=k))
    models = root / "tasks" / "models"
    models.mkdir()
    for i in range(MODELS):
        k = i % FRAMEWORKS
        style = i % 3
        if style == 0:
            import_line, base = f"from tasks.frameworks.fw{k} import Framework{k}", f"Framework{k}"
        elif style == 1:
            import_line, base = f"from ..frameworks.fw{k} import Framework{k} as Base", "Base"
        else:
            import_line, base = f"import tasks.frameworks.fw{k} as fw", f"fw.Framework{k}"
        (models / f"model{i}.py").write_text(MODEL.format(i=i, k=k, import_line=import_line, base=base))


def interleaved(runs: dict[str, tuple[Callable[[], object], Callable[[], object]]]) -> dict[str, tuple[float, float]]:
    """Median wall and CPU time of each (before, call) pair, taking turns so that noise hits all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, (before, call) in runs.items():
            before()
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return {
        name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
        for name, values in samples.items()
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project(root)
        time.sleep(2.5)  # let the files age past the racy window (see the module docs)
        project = load_project(root)
        files = sorted(root.glob("tasks/**/*.py"))
        cache_file = project.state_dir / "cache" / DISCOVERY_CACHE_FILE

        def baseline() -> None:
            for path in files:
                ast.parse(path.read_bytes())

        def baseline_no_gc() -> None:
            gc.disable()
            try:
                baseline()
            finally:
                gc.enable()

        def cold() -> None:  # nothing in memory, nothing on disk
            clear_discovery_cache()
            cache_file.unlink(missing_ok=True)

        result = discover(project)
        assert len(result.tasks) == FRAMEWORKS + MODELS and not result.errors, result.errors
        assert sum(not t.abstract for t in result.tasks) == MODELS
        assert len(result.get("Model7Task").config) == 11
        assert cache_file.is_file()

        nothing = lambda: None  # noqa: E731
        times = interleaved(
            {
                "base": (nothing, baseline),
                "base_no_gc": (nothing, baseline_no_gc),
                "cold": (cold, lambda: discover(project)),
                "warm": (nothing, lambda: discover(project)),
                "disk": (clear_discovery_cache, lambda: discover(project)),  # a new process, but for imports
            }
        )
        base_wall, base_cpu = times["base"]
        print(f"files: {len(files)}  tasks: {len(result.tasks)}  (median of {REPEATS} runs; CPU time in brackets)")
        line = "{:<35}{:7.1f} ms  ({:6.1f} ms)  {:5.2f} x baseline  ({:4.2f} x)"
        for name, label in [
            ("base", "baseline, read + ast.parse:"),
            ("base_no_gc", "baseline, GC held off:"),
            ("cold", "discover(), cold (no cache):"),
            ("warm", "discover(), warm in-process:"),
            ("disk", "discover(), warm from disk cache:"),
        ]:
            wall, cpu = times[name]
            print(line.format(label, wall * 1000, cpu * 1000, wall / base_wall, cpu / base_cpu))
        print(f"disk cache: {cache_file.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
