"""Stages, fixtures and extension hooks: checked when attached, called in order, scoped."""

from __future__ import annotations

import pytest
import torch
from core_tasks import Recorder, TinyRegression, make_task

from workbench.core.stages import (
    DEFAULT_STAGES,
    ExtensionError,
    FixtureError,
    Hooks,
    StageSpec,
    StageTree,
)
from workbench.extensions import (
    BatchLeakageCheck,
    EarlyStopping,
    GradientStats,
    MetricLogger,
    NanGuard,
    Progress,
    ReproducibilityRecord,
)

# -- the stage tree -------------------------------------------------------------------


def test_a_stage_that_redefines_an_enclosing_fixture_is_refused() -> None:
    with pytest.raises(FixtureError, match=r"stage 'inner' redefines fixture 'x' of the enclosing stage 'outer'"):
        StageTree([
            StageSpec("outer", None, enter=("x",)),
            StageSpec("middle", "outer", enter=("y",)),
            StageSpec("inner", "middle", enter=("x",)),
        ])


def test_sibling_stages_may_both_define_a_fixture() -> None:
    tree = StageTree([
        StageSpec("root", None, enter=("model",)),
        StageSpec("validate", "root", enter=("loader",)),
        StageSpec("test", "root", enter=("loader",)),
    ])
    assert tree.available("test", "before") == ["model", "loader"]


def test_a_stage_with_an_unknown_parent_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown parent 'nowhere'"):
        StageTree([StageSpec("orphan", "nowhere")])


def test_the_default_tree_gives_after_hooks_their_exit_fixtures_only() -> None:
    before = DEFAULT_STAGES.available("batch", "before")
    after = DEFAULT_STAGES.available("batch", "after")
    assert {"model", "epoch", "batch", "batch_idx"} <= set(before)
    assert "loss" not in before and "outputs" not in before
    assert {"loss", "outputs"} <= set(after)
    assert DEFAULT_STAGES.path("batch") == "fit › epoch › batch"


@pytest.mark.parametrize("stage", [s for s, spec in DEFAULT_STAGES.specs.items() if spec.hookable])
def test_every_hookable_stage_is_documented(stage: str) -> None:
    assert DEFAULT_STAGES.specs[stage].doc.strip()


# -- attaching: fail early, with the list of what exists --------------------------------


class Typo:
    def before_bacth(self, batch):
        pass


class UnknownFixture:
    def after_epoch(self, epoch, learning_rate):
        pass


class LossTooEarly:
    def before_batch(self, loss):
        pass


class StarArgs:
    def after_batch(self, *args):
        pass


class StarKwargs:
    def after_batch(self, **fixtures):
        pass


class HalfGood:
    def before_fit(self, model):
        pass

    def after_fit(self, nothing_called_this):
        pass


def test_an_unknown_hook_name_fails_at_attach_and_lists_the_valid_hooks() -> None:
    with pytest.raises(ExtensionError) as info:
        Hooks().attach(Typo())
    message = str(info.value)
    assert "Typo" in message and "before_bacth" in message
    for hook in ("before_batch", "after_epoch", "after_validate", "before_teardown"):
        assert hook in message


def test_the_session_stage_is_not_hookable() -> None:
    class Session:
        def before_session(self):
            pass

    with pytest.raises(ExtensionError, match="no stage for hook before_session"):
        Hooks().attach(Session())


def test_an_unknown_fixture_fails_at_attach_and_lists_the_available_ones() -> None:
    with pytest.raises(ExtensionError) as info:
        Hooks().attach(UnknownFixture())
    message = str(info.value)
    assert "'learning_rate'" in message
    assert "available: " in message
    available = message.split("available: ", 1)[1].split(", ")
    assert available == DEFAULT_STAGES.available("epoch", "after")


def test_a_before_hook_asking_for_an_after_only_fixture_says_where_it_exists() -> None:
    with pytest.raises(ExtensionError, match=r"'loss' exists only in after_batch"):
        Hooks().attach(LossTooEarly())


@pytest.mark.parametrize("ext", [StarArgs(), StarKwargs()], ids=["*args", "**kwargs"])
def test_hooks_must_name_their_fixtures(ext: object) -> None:
    with pytest.raises(ExtensionError, match="name each fixture"):
        Hooks().attach(ext)


def test_a_failed_attach_attaches_nothing() -> None:
    hooks = Hooks()
    with pytest.raises(ExtensionError, match="nothing_called_this"):
        hooks.attach(HalfGood())
    assert not hooks.has("before_fit")
    assert hooks.extensions == []


def test_task_attach_fails_before_anything_is_built() -> None:
    task = make_task()
    with pytest.raises(ExtensionError):
        task.attach(LossTooEarly())
    assert not task._built


@pytest.mark.parametrize("ext", [MetricLogger(), NanGuard(), EarlyStopping(), GradientStats(),
                                 BatchLeakageCheck(), Progress(), ReproducibilityRecord()],
                         ids=lambda e: type(e).__name__)
def test_every_builtin_extension_attaches_and_documents_its_hooks(ext: object) -> None:
    hooks = Hooks()
    hooks.attach(ext)
    methods = [a for a in dir(type(ext)) if a.startswith(("before_", "after_"))]
    assert methods
    for name in methods:
        assert hooks.has(name)
        assert (getattr(type(ext), name).__doc__ or "").strip(), f"{type(ext).__name__}.{name} has no docstring"


# -- calling: values, order, lifetime ----------------------------------------------------


TREE = StageTree([
    StageSpec("outer", None, enter=("a",)),
    StageSpec("inner", "outer", enter=("b",), exit=("c",)),
])


class Listener:
    def __init__(self, log: list) -> None:
        self.log = log

    def before_outer(self, a):
        self.log.append(("before_outer", a))

    def before_inner(self, b, a):
        self.log.append(("before_inner", b, a))

    def after_inner(self, c, b):
        self.log.append(("after_inner", c, b))

    def after_outer(self, a):
        self.log.append(("after_outer", a))


def test_hooks_get_the_fixtures_they_name_in_stage_order_and_attach_order() -> None:
    log: list = []
    hooks = Hooks(TREE)
    hooks.attach(Listener(log))
    second: list = []
    hooks.attach(Listener(second))
    hooks.enter("outer", a=1)
    for i in range(2):
        hooks.enter("inner", b=10 + i)
        hooks.provide("inner", c=100 + i)
        hooks.exit("inner")
        assert set(hooks.values) == {"a"}
    hooks.exit("outer")
    assert log == [
        ("before_outer", 1),
        ("before_inner", 10, 1), ("after_inner", 100, 10),
        ("before_inner", 11, 1), ("after_inner", 101, 11),
        ("after_outer", 1),
    ]
    assert second == log
    assert hooks.values == {}


def test_providing_an_enclosing_stages_fixture_at_run_time_is_refused() -> None:
    hooks = Hooks(TREE)
    hooks.enter("outer", a=1)
    with pytest.raises(FixtureError, match="redefines fixture 'a'"):
        hooks.enter("inner", a=2)


def test_a_fit_calls_every_hook_in_order_with_the_right_values() -> None:
    rec = Recorder()
    task = make_task(epochs=2, samples=24, batch_size=8, val_samples=10, extensions=[rec])
    task.fit()
    expected: list[tuple] = [("before_setup",), ("after_setup",), ("before_fit", 2, 6)]
    for epoch in range(2):
        expected.append(("before_epoch", epoch))
        for b in range(3):
            expected += [("before_batch", epoch, b), ("after_batch", epoch, b)]
        expected.append(("after_epoch", epoch))
        expected.append(("before_validate",))
        for b in range(2):  # 10 validation samples, 8 per batch
            expected += [("before_validate_batch", b), ("after_validate_batch", b)]
        expected.append(("after_validate", ("loss",)))
    expected += [("after_fit",), ("before_teardown",), ("after_teardown",)]
    assert rec.calls == expected


def test_after_batch_gets_the_detached_loss_and_the_outputs() -> None:
    seen = []

    class Look:
        def after_batch(self, loss, outputs, batch):
            seen.append((loss, outputs, batch))

    make_task(epochs=1, samples=16, batch_size=8, extensions=[Look()]).fit()
    assert len(seen) == 2
    for loss, outputs, batch in seen:
        assert loss.dim() == 0 and not loss.requires_grad
        assert torch.isfinite(loss)
        assert outputs.shape == (8, 1)
        assert batch[0].shape == (8, 3)


def test_fixtures_are_gone_when_their_stage_ends() -> None:
    snapshots: dict[str, set[str]] = {}

    class Peek:
        def __init__(self) -> None:
            self.task = None

        def before_setup(self, task):
            self.task = task

        def after_epoch(self):
            snapshots.setdefault("after_epoch", set(self.task.hooks.values))

        def before_validate(self):
            snapshots.setdefault("before_validate", set(self.task.hooks.values))

        def after_fit(self):
            snapshots["after_fit"] = set(self.task.hooks.values)

        def before_teardown(self):
            snapshots["teardown"] = set(self.task.hooks.values)

    task = make_task(epochs=2, samples=16, extensions=[Peek()])
    task.fit()
    assert "epoch" in snapshots["after_epoch"]
    assert not {"batch", "batch_idx", "loss", "outputs"} & snapshots["after_epoch"]
    assert not {"epoch", "batch"} & snapshots["before_validate"]
    assert "train_loader" in snapshots["after_fit"]
    assert not {"epoch", "batch", "loader", "metrics"} & snapshots["after_fit"]
    assert not {"train_loader", "epoch"} & snapshots["teardown"]
    assert "model" in snapshots["teardown"]
    assert task.hooks.values == {}


class StopAtStep:
    def __init__(self, step: int) -> None:
        self.step = step

    def after_batch(self, state, task):
        if state.step == self.step:
            task.request_stop(f"stop at {self.step}")


def test_after_epoch_is_not_called_for_an_epoch_cut_short_by_a_stop() -> None:
    rec = Recorder()
    task = make_task(epochs=3, samples=32, batch_size=8, extensions=[StopAtStep(2), rec])
    task.fit()
    assert task.state.step == 2
    assert task.state.stopped_early and task.state.stop_reason == "stop at 2"
    assert rec.count["before_epoch"] == 1
    assert rec.count["after_epoch"] == 0
    assert rec.count["before_validate"] == 0
    assert rec.count["after_fit"] == 1 and rec.count["after_teardown"] == 1
    assert task.hooks.values == {}


def test_a_stop_on_the_last_batch_still_completes_that_epoch() -> None:
    rec = Recorder()
    task = make_task(epochs=3, samples=32, batch_size=8, extensions=[StopAtStep(4), rec])
    task.fit()
    assert task.state.step == 4
    assert task.state.stopped_early
    assert rec.count["after_epoch"] == 1
    assert rec.count["before_epoch"] == 1


class Explodes(TinyRegression):
    """Raises in the third training batch."""

    def training_step(self, batch, batch_idx):
        if self.state.step == 2:
            raise RuntimeError("boom in training_step")
        return super().training_step(batch, batch_idx)


def test_teardown_runs_when_training_raises() -> None:
    rec = Recorder()
    task = make_task(Explodes, epochs=2, samples=32, extensions=[rec])
    with pytest.raises(RuntimeError, match="boom in training_step"):
        task.fit()
    assert rec.count["before_teardown"] == 1 and rec.count["after_teardown"] == 1
    assert rec.count["after_batch"] == 2
    assert rec.count["after_fit"] == 0
    assert task.hooks.values == {}


def test_teardown_runs_when_an_extension_raises() -> None:
    class Fails:
        def after_validate(self):
            raise ValueError("extension failed")

    rec = Recorder()
    task = make_task(epochs=2, samples=16, extensions=[Fails(), rec])
    with pytest.raises(ValueError, match="extension failed"):
        task.fit()
    assert rec.count["after_teardown"] == 1
    assert task.hooks.values == {}
