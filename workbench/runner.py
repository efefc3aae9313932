"""Run a task file on its own: ``python tasks/sine.py fit -s epochs=3``.

This is what ``Task.main()`` calls. It resolves the config the way a workbench run does
(defaults < ``--profile`` < ``-s KEY=VALUE``), attaches the default extensions with a
console progress bar, trains, and prints where its output went. It needs no run index
and no git: the output goes to ``<state_dir>/local/<task>-<time>/``.

A task file imports the same modules on its own as in a tracked run: the project root (the
folder of ``workbench.toml``, found upwards from the task file) and the task file's folder
are on ``sys.path``, as ``workbench.runs.train.import_task`` puts the snapshot's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from workbench.errors import WorkbenchError

__all__ = ["add_import_roots", "add_main_script_roots", "import_roots", "main"]


def import_roots(script: Path) -> list[Path]:
    """The folders a task file imports from, first first: the project root, its own folder.

    Args:
        script: The task file.

    Returns:
        The project root (the nearest folder holding ``workbench.toml``, from the task
        file's folder upwards; left out when there is none) and the task file's folder.
    """
    from workbench.project.errors import ProjectNotFound
    from workbench.project.settings import find_project_root

    folder = Path(script).resolve().parent
    try:
        return list(dict.fromkeys([find_project_root(folder), folder]))
    except ProjectNotFound:
        return [folder]


def add_import_roots(script: Path) -> None:
    """Put :func:`import_roots` at the front of ``sys.path`` (each once, in that order).

    A folder already on ``sys.path`` (Python puts a script's own folder first) is not
    added again.
    """
    present = set()
    for entry in sys.path:
        try:
            present.add(Path(entry or ".").resolve())
        except (OSError, RuntimeError):
            continue
    missing = [folder for folder in import_roots(script) if folder not in present]
    sys.path[0:0] = [str(folder) for folder in missing]


def add_main_script_roots() -> None:
    """When a ``.py`` file runs as the main script, add its :func:`import_roots`.

    For ``python tasks/x.py fit``, this must happen before the file's own imports of
    modules at the project root: the training core calls it when it is first imported
    (by the task file's ``from workbench import Task``). Nothing happens under
    ``python -m`` (the run processes, which import from the snapshot), in an interactive
    session, or under an entry-point script.
    """
    main_module = sys.modules.get("__main__")
    if main_module is None or getattr(main_module, "__spec__", None) is not None:
        return
    file = getattr(main_module, "__file__", None)
    if isinstance(file, str) and file.endswith(".py") and os.path.isfile(file):
        add_import_roots(Path(file))


def _parser(task_cls: type, prog: str) -> argparse.ArgumentParser:
    doc = (task_cls.__doc__ or "").strip().splitlines()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"{task_cls.__name__}: {doc[0] if doc else 'a workbench task'}",
        epilog="Config fields: " + ", ".join(_field_help(task_cls)) if _field_help(task_cls) else None,
    )
    parser.add_argument("command", choices=["fit", "test", "eval"],
                        help="fit: train (and validate each epoch); test: run the test data; "
                             "eval: run the validation data")
    parser.add_argument("-s", "--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="set a config field (a TOML value: lr=1e-3, layers=[64,64])")
    parser.add_argument("--profile", help="a TOML profile: a name in configs/ or a path")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: workbench.toml's, else auto)")
    parser.add_argument("--precision", help="32, bf16-mixed or 16-mixed")
    parser.add_argument("--out", type=Path, help="the output folder (default: <state_dir>/local/<task>-<time>)")
    parser.add_argument("--weights", type=Path,
                        help="load these weights before running: a model.pt from a fit, or a workbench "
                             "run's checkpoint (.workbench/runs/<id>/checkpoints/step-N.pt or best.pt)")
    parser.add_argument("--untrained", action="store_true",
                        help="test/eval the model as build_model() makes it (a model that loads its own "
                             "pretrained weights); without it, test and eval need --weights")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epoch lines")
    return parser


def _field_help(task_cls: type) -> list[str]:
    from workbench.project.config import fields_of

    try:
        return [f"{f.name}: {f.type} = {f.default!r}" if f.has_default else f"{f.name}: {f.type}"
                for f in fields_of(task_cls.Config)]
    except Exception:  # noqa: BLE001 - help text must never fail
        return []


def _project(start: Path) -> tuple[Path, Any]:
    from workbench.project.errors import ProjectNotFound
    from workbench.project.settings import find_project_root, load_project

    try:
        root = find_project_root(start)
    except ProjectNotFound:
        return Path.cwd(), None
    return root, load_project(root)


def main(task_cls: type, argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run ``fit``/``test``/``eval``, and return an exit status."""
    script = Path(sys.modules[task_cls.__module__].__file__ or "task.py") \
        if task_cls.__module__ in sys.modules else Path("task.py")
    prog = f"python {os.path.relpath(script)}" if script.exists() else task_cls.__name__
    args = _parser(task_cls, prog).parse_args(argv)
    try:
        return _run(task_cls, args, script)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(task_cls: type, args: argparse.Namespace, script: Path) -> int:
    from workbench.project.config import fields_of, find_profile, resolve_config

    if getattr(task_cls, "abstract", False) or getattr(task_cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(getattr(task_cls, "__abstractmethods__", ()))) or "abstract = True"
        raise WorkbenchError(f"{task_cls.__name__} is a framework task and cannot run by itself "
                             f"({missing}); run a task that builds on it")
    if args.command != "fit" and not args.weights and not args.untrained:
        raise WorkbenchError(f"{args.command} needs the weights to {args.command}: --weights PATH (a model.pt "
                             "from a fit, or a run's checkpoint: workbench test RUN does this for a tracked "
                             "run); a freshly built model has random weights (--untrained to "
                             f"{args.command} it anyway)")
    if args.weights and args.untrained:
        raise WorkbenchError("--weights and --untrained exclude each other")
    if script.is_file():
        add_import_roots(script)  # for the imports a task makes when it builds its parts
    root, project = _project(script.resolve().parent)
    profile = find_profile(root, args.profile) if args.profile else None
    values = resolve_config(fields_of(task_cls.Config), profile=profile,
                            overrides=args.overrides, task_name=task_cls.__name__)
    defaults = project.defaults if project is not None else None
    device = args.device or (defaults.device if defaults else "auto")
    precision = args.precision or (defaults.precision if defaults else "32")
    state_dir = project.state_dir if project is not None else root / ".workbench"
    out = args.out or state_dir / "local" / f"{task_cls.__name__}-{time.strftime('%Y%m%d-%H%M%S')}"

    from workbench.extensions import ConsoleReporter, assemble_task
    from workbench.sinks import JsonlSink

    out.mkdir(parents=True, exist_ok=True)
    sink = JsonlSink(out / "metrics.jsonl")
    try:
        task = assemble_task(task_cls, values, device=device, precision=precision, run_dir=out, sink=sink,
                             reporter=None if args.quiet else ConsoleReporter())
        if args.weights:
            task.load_weights(args.weights)
    except BaseException:
        sink.close()
        raise

    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: Any) -> None:
        # First Ctrl-C: finish the batch and stop cleanly; a second one aborts.
        signal.signal(signal.SIGINT, previous)
        task.request_stop("interrupted from the keyboard")
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_interrupt)
    try:
        if args.command == "fit":
            metrics = task.fit()
            task.save_weights(task.artifact_path("model.pt"))
        elif args.command == "test":
            metrics = task.test()
        else:
            metrics = task.evaluate()
    finally:
        signal.signal(signal.SIGINT, previous)
        sink.close()
    shown = "  ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())
                      if k.startswith(("val/", "test/", "train/loss_epoch")) or args.command != "fit")
    if task.state.stopped_early:
        print(f"stopped: {task.state.stop_reason}")
    print(f"{args.command} done: {shown}" if shown else f"{args.command} done")
    print(f"output: {out}")
    if args.command == "fit":
        print("  metrics.jsonl, artifacts/model.pt, artifacts/reproducibility.json")
    return 0
