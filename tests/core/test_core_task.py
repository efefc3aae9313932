"""Task: fit/test/evaluate on real tiny models — repeatability, counters, steps, errors."""

from __future__ import annotations

import abc
import math
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from core_tasks import TinyRegression, make_task, regression_data, same_weights, weights
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from workbench import DataModule, Task
from workbench.core import DeviceError, TaskError
from workbench.sinks import MemorySink

# -- repeatability -----------------------------------------------------------------------


def test_two_fits_with_the_same_seed_give_identical_weights() -> None:
    a = make_task(seed=3, dropout=0.3, epochs=2)
    b = make_task(seed=3, dropout=0.3, epochs=2)
    a.fit()
    b.fit()
    assert same_weights(weights(a), weights(b))


def test_a_different_seed_gives_different_weights() -> None:
    a = make_task(seed=3, dropout=0.3, epochs=2)
    b = make_task(seed=4, dropout=0.3, epochs=2)
    a.fit()
    b.fit()
    assert not same_weights(weights(a), weights(b))


def test_fit_changes_the_weights_and_lowers_the_validation_loss() -> None:
    task = make_task(epochs=3, samples=64, lr=0.05)
    before = task.evaluate()["loss"]
    built = weights(task)
    task.fit()
    assert not same_weights(built, weights(task))
    assert task.evaluate()["loss"] < before


# -- counters and stopping -----------------------------------------------------------------


def test_state_counts_steps_epochs_and_total_steps() -> None:
    task = make_task(epochs=3, samples=40, batch_size=8)  # 5 batches per epoch
    task.fit()
    state = task.state
    assert state.total_steps == 15
    assert state.step == 15
    assert state.optimizer_steps == 15
    assert state.epoch == 3 and state.max_epochs == 3
    assert state.batch_in_epoch == 0
    assert not state.stopped_early


def test_request_stop_from_an_extension_ends_after_that_batch() -> None:
    class StopAtThree:
        def after_batch(self, state, task):
            if state.step == 3:
                task.request_stop("enough")

    sink = MemorySink()
    task = make_task(epochs=2, samples=64, batch_size=8, sink=sink, extensions=[StopAtThree()])

    class Losses:
        def after_batch(self, loss, log):
            log("seen", loss)

    task.attach(Losses())
    task.fit()
    assert task.state.step == 3
    assert task.state.stopped_early
    assert task.state.stop_reason == "enough"
    assert [s for s, _ in sink.series("seen")] == [1, 2, 3]


def test_fit_with_a_scheduler_steps_it_once_per_epoch() -> None:
    class Decaying(TinyRegression):
        def build_scheduler(self, optimizer):
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    task = make_task(Decaying, epochs=3, lr=0.08)
    task.fit()
    assert task.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


# -- accumulation, clipping, precision ---------------------------------------------------


def test_gradient_accumulation_matches_a_batch_twice_as_large() -> None:
    common = dict(optimizer="sgd", lr=0.1, epochs=2, samples=64, shuffle=True)
    accumulated = make_task(batch_size=8, accumulate_grad_batches=2, **common)
    large = make_task(batch_size=16, **common)
    single = make_task(batch_size=8, **common)
    for task in (accumulated, large, single):
        task.fit()
    assert accumulated.state.step == 16 and large.state.step == 8
    assert accumulated.state.optimizer_steps == large.state.optimizer_steps == 8
    a, b = weights(accumulated), weights(large)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    c = weights(single)
    assert not all(torch.allclose(a[k], c[k], atol=1e-4) for k in a)


def test_accumulation_steps_on_the_last_short_group_of_an_epoch() -> None:
    task = make_task(batch_size=8, samples=40, accumulate_grad_batches=2, epochs=2)  # 5 batches
    task.fit()
    assert task.state.optimizer_steps == 6  # 2 full groups + 1 short one, per epoch


class OneStep(TinyRegression):
    """A bias-free linear model, far from targets that are large: one big gradient."""

    def build_model(self):
        return nn.Linear(3, 1, bias=False)

    def build_data(self):
        x = torch.ones(8, 3)
        return DataLoader(TensorDataset(x, torch.full((8, 1), 1000.0)), batch_size=8)


@pytest.mark.parametrize("clip", [0.5, 0.0])
def test_gradient_clip_val_limits_the_update(clip: float) -> None:
    task = make_task(OneStep, optimizer="sgd", lr=1.0, epochs=1, gradient_clip_val=clip)
    task.setup()
    before = task.model.weight.detach().clone()
    task.fit()
    moved = torch.linalg.vector_norm(task.model.weight.detach() - before).item()
    if clip:
        assert moved == pytest.approx(clip, rel=1e-4)
    else:
        assert moved > 100


@pytest.mark.parametrize("precision, dtype", [("bf16-mixed", torch.bfloat16), ("16-mixed", torch.float16)])
def test_mixed_precision_trains_on_cpu_with_finite_losses(precision: str, dtype: torch.dtype) -> None:
    seen = []

    class Look:
        def after_batch(self, loss, outputs):
            seen.append((loss.float().item(), outputs.dtype))

    task = make_task(precision=precision, epochs=2, samples=32, extensions=[Look()])
    task.setup()
    built = weights(task)
    metrics = task.fit()
    assert len(seen) == 8
    assert all(math.isfinite(loss) for loss, _ in seen)
    assert {d for _, d in seen} == {dtype}  # the forward really ran under autocast
    assert not same_weights(built, weights(task))
    assert all(torch.isfinite(w).all() for w in weights(task).values())
    assert (task.precision.scaler is not None) == (precision == "16-mixed")
    assert math.isfinite(task.evaluate()["loss"])
    assert metrics == task.metrics


def test_an_unknown_precision_is_a_device_error_listing_the_choices() -> None:
    task = make_task(precision="fp8")
    with pytest.raises(DeviceError, match=r"unknown precision 'fp8'; expected one of 32, bf16-mixed, 16-mixed"):
        task.fit()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_missing_device_is_a_device_error_naming_the_available_ones(device: str) -> None:
    task = make_task(device=device)
    with pytest.raises(DeviceError) as info:
        task.fit()
    assert f"'{device}'" in str(info.value)
    assert "available: cpu" in str(info.value)


def test_an_unknown_device_lists_the_device_kinds() -> None:
    with pytest.raises(DeviceError, match=r"unknown device 'tpu'; expected one of auto, cpu, cuda"):
        make_task(device="tpu").fit()


# -- what build_data may return ----------------------------------------------------------


def _loader(n: int, seed: int, batch: int = 8) -> DataLoader:
    return DataLoader(regression_data(n, seed), batch_size=batch)


def _module() -> DataModule:
    return DataModule(regression_data(32, 1), regression_data(16, 2), regression_data(16, 3), batch_size=8)


@pytest.mark.parametrize("make, has_val, has_test", [
    (lambda: (_loader(32, 1), _loader(16, 2)), True, False),
    (lambda: [_loader(32, 1), _loader(16, 2), _loader(16, 3)], True, True),
    (lambda: {"train": _loader(32, 1), "test": _loader(16, 3)}, False, True),
    (lambda: _loader(32, 1), False, False),
    (_module, True, True),
], ids=["tuple", "list-of-3", "dict", "dataloader", "datamodule"])
def test_build_data_may_return_loaders_in_several_shapes(make, has_val: bool, has_test: bool) -> None:
    class Shaped(TinyRegression):
        def build_data(self):
            return make()

    validations = []

    class CountValidations:
        def after_validate(self, metrics):
            validations.append(metrics)

    task = make_task(Shaped, epochs=2, extensions=[CountValidations()])
    task.fit()
    assert task.state.step == 8  # 32 samples, 8 per batch, 2 epochs
    assert len(validations) == (2 if has_val else 0)
    if has_val:
        assert set(task.evaluate()) == {"loss"}
    else:
        with pytest.raises(TaskError, match="no validation data"):
            task.evaluate()
    if has_test:
        assert math.isfinite(task.test()["loss"])
    else:
        with pytest.raises(TaskError, match="no test data"):
            task.test()


def test_build_data_returning_something_else_is_refused() -> None:
    class Wrong(TinyRegression):
        def build_data(self):
            return 42

    with pytest.raises(TypeError, match="build_data\\(\\) must return a DataModule"):
        make_task(Wrong).fit()


def test_build_data_without_training_data_is_a_task_error() -> None:
    class NoTrain(TinyRegression):
        def build_data(self):
            return {"val": _loader(16, 2)}

    with pytest.raises(TaskError, match="no training data"):
        make_task(NoTrain).fit()


# -- step results and abstract tasks -------------------------------------------------------


@pytest.mark.parametrize("result", [1.5, {"outputs": 1}, None], ids=["float", "dict-without-loss", "none"])
def test_a_training_step_that_returns_no_loss_is_a_task_error(result) -> None:
    class NoLoss(TinyRegression):
        def training_step(self, batch, batch_idx):
            return result

    with pytest.raises(TaskError, match=r"NoLoss.training_step\(\) must return a loss tensor"):
        make_task(NoLoss).fit()


def test_a_task_without_a_criterion_says_what_to_define() -> None:
    class NoCriterion(TinyRegression):
        def build_criterion(self):
            return None

    with pytest.raises(TaskError, match="build_criterion"):
        make_task(NoCriterion).fit()


def test_build_model_must_return_a_module() -> None:
    class NotAModule(TinyRegression):
        def build_model(self):
            return lambda x: x

    with pytest.raises(TaskError, match="not a torch.nn.Module"):
        make_task(NotAModule).fit()


class Framework(Task):
    """How to train; the model is for subclasses to choose."""

    abstract = True

    @dataclass
    class Config:
        epochs: int = 1
        seed: int = 0

    def build_data(self):
        return _loader(16, 1)

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """Each model task defines it."""

    def build_criterion(self):
        return nn.MSELoss()


class LinearOnFramework(Framework):
    """A model task built on the framework."""

    def build_model(self):
        return nn.Linear(3, 1)


class FlaggedFramework(LinearOnFramework):
    """Complete, but marked as not launchable by itself."""

    abstract = True


def test_a_framework_task_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match="build_model"):
        Framework()
    with pytest.raises(TaskError, match="FlaggedFramework is a framework task"):
        FlaggedFramework(device="cpu")


def test_a_task_built_on_a_framework_is_concrete_and_trains() -> None:
    assert Framework.abstract and FlaggedFramework.abstract
    assert not LinearOnFramework.abstract
    task = LinearOnFramework(device="cpu")
    task.fit()
    assert task.state.step == 2


# -- evaluate and test ------------------------------------------------------------------


class Counting(TinyRegression):
    """Validation and test report per-batch means of the targets; 10 samples, batches of 4."""

    def build_data(self):
        x = torch.zeros(10, 3)
        y = torch.arange(10.0).unsqueeze(1)
        data = TensorDataset(x, y)
        return DataModule(data, data, TensorDataset(x, 2 * y), batch_size=4, shuffle=False)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        return {"y_mean": y.mean(), "first": float(y[0]), "vector": y.squeeze(1), "name": "skip me"}


def test_evaluate_and_test_return_means_weighted_by_batch_size() -> None:
    task = make_task(Counting)
    metrics = task.evaluate()
    # Batches [0..3], [4..7], [8, 9]: their means 1.5, 5.5, 8.5 (unweighted mean 5.1667).
    assert metrics["y_mean"] == pytest.approx(4.5)
    assert metrics["first"] == pytest.approx((0 * 4 + 4 * 4 + 8 * 2) / 10)
    assert set(metrics) == {"y_mean", "first"}  # non-scalars are left out
    assert task.test()["y_mean"] == pytest.approx(9.0)


def test_evaluate_leaves_the_model_in_the_mode_it_found_it() -> None:
    task = make_task()
    task.setup()
    task.model.train()
    task.evaluate()
    assert task.model.training
    task.model.eval()
    task.evaluate()
    assert not task.model.training


# -- weights -------------------------------------------------------------------------------


class FrozenBackbone(TinyRegression):
    """A backbone that does not train and a head that does."""

    def backbone(self) -> nn.Module:
        return nn.Sequential(nn.Linear(3, 8), nn.ReLU())

    def build_model(self):
        backbone = self.backbone()
        for p in backbone.parameters():
            p.requires_grad_(False)
        return nn.Sequential(backbone, nn.Linear(8, 1))

    def build_optimizer(self, model):
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)


class FrozenNormedBackbone(FrozenBackbone):
    """A frozen backbone whose batch norm still updates its running statistics in training."""

    def backbone(self) -> nn.Module:
        return nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.ReLU())


def test_partial_weights_hold_the_head_and_load_over_a_freshly_built_backbone(tmp_path) -> None:
    trained = make_task(FrozenBackbone, seed=1, epochs=2)
    trained.fit()
    path = trained.save_weights(tmp_path / "head.pt", trainable_only=True)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"1.weight", "1.bias"}

    fresh = make_task(FrozenBackbone, seed=2)
    fresh.setup()
    built = weights(fresh)
    missing = fresh.load_weights(path)
    now = weights(fresh)
    assert torch.equal(now["1.weight"], weights(trained)["1.weight"])
    assert torch.equal(now["1.bias"], weights(trained)["1.bias"])
    assert not torch.equal(built["1.weight"], now["1.weight"])
    backbone = ["0.0.weight", "0.0.bias"]
    assert all(torch.equal(now[k], built[k]) for k in backbone)
    assert not torch.equal(built["0.0.weight"], weights(trained)["0.0.weight"])  # seeds differ
    assert sorted(missing) == sorted(backbone)


def test_partial_weights_keep_what_training_changed_in_a_frozen_part(tmp_path) -> None:
    trained = make_task(FrozenNormedBackbone, seed=1, epochs=2)
    trained.fit()
    path = trained.save_weights(tmp_path / "head.pt", trainable_only=True)
    assert not any(k.endswith(("weight", "bias")) and k.startswith("0.")
                   for k in torch.load(path, weights_only=True))
    rebuilt = make_task(FrozenNormedBackbone, seed=1)  # the same frozen backbone, as built
    rebuilt.load_weights(path)
    assert same_weights(weights(rebuilt), weights(trained))
    assert rebuilt.evaluate() == trained.evaluate()


def test_full_weights_round_trip(tmp_path) -> None:
    trained = make_task(epochs=1)
    trained.fit()
    path = trained.save_weights(tmp_path / "sub" / "model.pt")
    fresh = make_task(seed=9)
    assert fresh.load_weights(path) == []
    assert same_weights(weights(fresh), weights(trained))
    assert fresh.evaluate() == trained.evaluate()


def test_loading_weights_of_another_model_is_a_task_error(tmp_path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, foreign)
    with pytest.raises(TaskError, match="parameters the model does not have: encoder.weight"):
        make_task().load_weights(foreign)
    wrong_shape = tmp_path / "shape.pt"
    torch.save({"0.weight": torch.zeros(5, 5)}, wrong_shape)
    with pytest.raises(TaskError, match="weights do not fit"):
        make_task().load_weights(wrong_shape)
    with pytest.raises(TaskError, match="no such weights file"):
        make_task().load_weights(tmp_path / "missing.pt")


# -- artifacts, logging ------------------------------------------------------------------------


def test_artifact_path_stays_inside_the_artifacts_folder(tmp_path) -> None:
    task = make_task(run_dir=tmp_path / "run")
    path = task.artifact_path("plots/loss.png")
    assert path == (tmp_path / "run" / "artifacts" / "plots" / "loss.png").resolve()
    assert path.parent.is_dir()
    for bad in ("../x", "plots/../../x", str(tmp_path / "elsewhere.txt"), "/etc/passwd"):
        with pytest.raises(TaskError, match="leaves the artifacts folder"):
            task.artifact_path(bad)
    assert not (tmp_path / "run" / "x").exists()


def test_artifact_path_needs_a_run_folder() -> None:
    with pytest.raises(TaskError, match="no run folder"):
        make_task().artifact_path("model.pt")


def test_log_sends_scalars_to_the_sink_at_the_current_step() -> None:
    sink = MemorySink()

    class LogMean:
        def after_batch(self, outputs, log):
            log("train/out_mean", outputs.mean())

    task = make_task(epochs=1, samples=24, sink=sink, extensions=[LogMean()])
    task.fit()
    series = sink.series("train/out_mean")
    assert [s for s, _ in series] == [1, 2, 3]
    assert all(isinstance(v, float) for _, v in series)
    assert task.metrics["train/out_mean"] == series[-1][1]
    task.log("custom", torch.tensor(2.5), step=99)
    assert sink.series("custom") == [(99, 2.5)]


# -- the model's constructor args ------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, width: int, depth: int = 2, *extra: int, act: str = "relu", **opts) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])

    def forward(self, x):
        return self.layers(x)


def test_model_spec_records_the_class_and_constructor_args() -> None:
    class WithBlock(TinyRegression):
        def build_model(self):
            nn.Linear(2, 2)  # built and dropped: not the model
            return Block(3, 4, 7, act="gelu", scale=0.5)

    task = make_task(WithBlock)
    task.setup()
    assert task.model_spec == {
        "class": f"{__name__}.Block",
        "args": {"width": 3, "depth": 4, "act": "gelu", "extra": [7], "scale": 0.5},
    }


def test_model_spec_of_a_sequential_lists_its_layers() -> None:
    task = make_task(hidden=5)
    task.setup()
    spec = task.model_spec
    assert spec["class"] == "torch.nn.modules.container.Sequential"
    layers = spec["args"]["args"]
    assert layers[0] == "Linear(in_features=3, out_features=5, bias=True)"
    assert len(layers) == 4 and layers[1] == "ReLU()"


def test_recording_the_model_spec_leaves_a_running_profiler_working() -> None:
    import cProfile
    import pstats

    task = make_task(hidden=5)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        task.setup()
        task.build_criterion()
    finally:
        profiler.disable()
    assert task.model_spec["args"]["args"][0] == "Linear(in_features=3, out_features=5, bias=True)"
    profiled = {name for _, _, name in pstats.Stats(profiler).stats}
    assert "build_criterion" in profiled  # still profiling after the model was built


def test_recording_the_model_spec_passes_events_on_to_a_python_profile_function() -> None:
    events = []

    def watch(frame, event, arg):
        if event == "call":
            events.append(frame.f_code.co_name)

    task = make_task(hidden=5)
    sys.setprofile(watch)
    try:
        task.setup()
    finally:
        sys.setprofile(None)
    assert "build_model" in events and "build_optimizer" in events
    assert task.model_spec is not None


# -- the import boundary -------------------------------------------------------------------------


def test_importing_workbench_does_not_import_torch() -> None:
    code = (
        "import sys, workbench, workbench.errors, workbench.sinks, workbench.runner\n"
        "assert 'workbench.runner' in sys.modules\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_task_built_from_a_dict_does_not_load_the_project_layer() -> None:
    # The core coerces its config with workbench.configtypes; workbench.project (settings,
    # discovery) belongs to the workbench process.
    code = (
        "import sys\n"
        "from dataclasses import dataclass\n"
        "from workbench import Task\n"
        "class T(Task):\n"
        "    @dataclass\n"
        "    class Config:\n"
        "        epochs: int = 1\n"
        "        lr: float = 0.1\n"
        "    def build_data(self): return None\n"
        "    def build_model(self): return None\n"
        "t = T({'epochs': 3, 'lr': 1})\n"
        "assert (t.config.epochs, t.config.lr) == (3, 1.0) and type(t.config.lr) is float\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('workbench.project'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


class _Warmed(TinyRegression):
    """TinyRegression whose config checks two fields together."""

    @dataclass
    class Config(TinyRegression.Config):
        warmup: int = 1

        def validate(self) -> None:
            if self.warmup >= self.epochs:
                raise ValueError(f"warmup ({self.warmup}) must be below epochs ({self.epochs})")


def test_config_validate_refuses_a_bad_combination_when_the_task_is_built() -> None:
    assert _Warmed({"warmup": 1, "epochs": 2}, device="cpu").config.warmup == 1
    with pytest.raises(TaskError, match=r"^_Warmed.Config.validate\(\): warmup \(3\) must be below epochs \(2\)$"):
        _Warmed({"warmup": 3, "epochs": 2}, device="cpu")
