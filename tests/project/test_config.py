"""Config values: overrides, type checks, profiles, precedence, and the runtime helpers."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from workbench.project import (
    ConfigError,
    ConfigField,
    build_config,
    coerce,
    config_to_dict,
    discover_paths,
    fields_of,
    find_profile,
    parse_override,
    resolve_config,
    type_text,
)

SINE = [
    ConfigField("epochs", "int", 5, True),
    ConfigField("lr", "float", 3e-3, True),
    ConfigField("batch_size", "int", 32, True),
    ConfigField("hidden", "list[int]", [64, 64], True),
    ConfigField("seed", "int", 0, True),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def config_error(call: typing.Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


# -------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lr=1e-3", ("lr", 0.001)),
        ("layers=[64, 64]", ("layers", [64, 64])),
        ('name="x"', ("name", "x")),
        ("flag=true", ("flag", True)),
        ("n=3", ("n", 3)),
        ("name=foo", ("name", "foo")),  # not TOML: kept as typed
        ("name= foo bar ", ("name", "foo bar")),
        ("expr=a=b", ("expr", "a=b")),  # split on the first '='
        (" optim.lr = 0.5", ("optim.lr", 0.5)),
        ("empty=", ("empty", "")),
        ("x=1\ny = 2", ("x", "1\ny = 2")),  # not one value: kept as text
        ("x=__import__('os').system('echo hi')", ("x", "__import__('os').system('echo hi')")),
        ("t={a = 1}", ("t", {"a": 1})),
    ],
)
def test_parse_override(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["lr", "=3", "  =x", ""])
def test_parse_override_needs_key_and_equals(text: str) -> None:
    assert config_error(lambda: parse_override(text)) == f"bad override {text!r}: expected KEY=VALUE, e.g. lr=0.01"


# ------------------------------------------------------------------------------ types


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        (3, "int", 3),
        (3, "float", 3.0),
        (2.5, "float", 2.5),
        (True, "bool", True),
        ("x", "str", "x"),
        ("data/x", "Path", Path("data/x")),
        ("data/x", "pathlib.Path", Path("data/x")),
        ([1, 2], "list[int]", [1, 2]),
        ([1, 2], "List[float]", [1.0, 2.0]),
        ([1, 2, 3], "tuple[int, ...]", (1, 2, 3)),
        ([1, "a"], "tuple[int, str]", (1, "a")),
        ({"a": 1}, "dict[str, int]", {"a": 1}),
        (None, "int | None", None),
        ("none", "int | None", None),
        ("NULL", "Optional[int]", None),
        (4, "Optional[int]", 4),
        (4, "Union[int, str]", 4),
        ("4", "Union[int, str]", "4"),
        (1, "int | float", 1),
        (1.5, "int | float", 1.5),
        ("adam", "Literal['adam', 'sgd']", "adam"),
        (2, "Literal[1, 2]", 2),
        ({"anything": [1]}, "SomeClass", {"anything": [1]}),
        (object, "Callable[[int], int]", object),
        ("x", "Any", "x"),
        (3, "'int'", 3),
        ([[1, 2], [3]], "list[list[int]]", [[1, 2], [3]]),
    ],
)
def test_coerce_accepts(value: object, type_: str, expected: object) -> None:
    result = coerce(value, type_, "k")
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "type_", "message"),
    [
        ("abc", "float", "lr: expected float, got 'abc'"),
        (True, "float", "lr: expected float, got True"),
        (1.5, "int", "lr: expected int, got 1.5"),
        (True, "int", "lr: expected int, got True"),
        (1, "bool", "lr: expected bool, got 1"),
        (3, "str", "lr: expected str, got 3"),
        ([64, "x"], "list[int]", "lr: expected list[int], got [64, 'x']"),
        ("64", "list[int]", "lr: expected list[int], got '64'"),
        ([1, 2, 3], "tuple[int, int]", "lr: expected tuple[int, int], got [1, 2, 3]"),
        ({"a": "b"}, "dict[str, int]", "lr: expected dict[str, int], got {'a': 'b'}"),
        ("x", "int | None", "lr: expected int | None, got 'x'"),
        ("adamw", "Literal['adam', 'sgd']", "lr: expected one of 'adam', 'sgd', got 'adamw'"),
        ("adamw", "Optional[Literal['adam', 'sgd']]", "lr: expected one of 'adam', 'sgd' or None, got 'adamw'"),
        (True, "Literal[1, 2]", "lr: expected one of 1, 2, got True"),
        (3, "Path", "lr: expected Path, got 3"),
    ],
)
def test_coerce_rejects_with_one_line(value: object, type_: str, message: str) -> None:
    assert config_error(lambda: coerce(value, type_, "lr")) == message


class _Local:
    pass


@pytest.mark.parametrize(
    ("tp", "text"),
    [
        (int, "int"),
        (list[int], "list[int]"),
        (typing.List[int], "list[int]"),
        (typing.Optional[int], "int | None"),
        (int | None, "int | None"),
        (typing.Union[int, str], "int | str"),
        (Literal["adam", "sgd"], "Literal['adam', 'sgd']"),
        (tuple[int, ...], "tuple[int, ...]"),
        (dict[str, float], "dict[str, float]"),
        (Path, "Path"),
        (typing.Any, "Any"),
        (_Local, "_Local"),
        ("list[int]", "list[int]"),
        (type(None), "None"),
    ],
)
def test_type_text(tp: object, text: str) -> None:
    assert type_text(tp) == text


def test_type_text_round_trips_through_coerce() -> None:
    assert coerce([1, 2], type_text(typing.Tuple[int, ...]), "k") == (1, 2)
    assert coerce("null", type_text(Optional[Path]), "k") is None
    assert config_error(lambda: coerce("x", type_text(Literal[1, 2]), "k")) == "k: expected one of 1, 2, got 'x'"


# ------------------------------------------------------------------------ resolution


def test_defaults_only() -> None:
    assert resolve_config(SINE) == {"epochs": 5, "lr": 3e-3, "batch_size": 32, "hidden": [64, 64], "seed": 0}


def test_precedence_defaults_profile_overrides(tmp_path: Path) -> None:
    profile = tmp_path / "fast.toml"
    profile.write_text("epochs = 1\nlr = 0.1\n")
    resolved = resolve_config(SINE, profile=profile, overrides=["lr=0.5", "seed=7", "seed=8"])
    assert resolved == {"epochs": 1, "lr": 0.5, "batch_size": 32, "hidden": [64, 64], "seed": 8}
    assert type(resolve_config(SINE, overrides=["lr=1"])["lr"]) is float


def test_unknown_override_key_lists_valid_keys_and_suggests() -> None:
    message = config_error(lambda: resolve_config(SINE, overrides=["lrr=0.1"], task_name="SineRegression"))
    assert message == (
        "unknown config key 'lrr' for SineRegression; valid keys: batch_size, epochs, hidden, lr, seed; "
        "did you mean 'lr'?"
    )
    assert config_error(lambda: resolve_config(SINE, overrides=["zzz=1"])) == (
        "unknown config key 'zzz'; valid keys: batch_size, epochs, hidden, lr, seed"
    )


def test_override_type_errors() -> None:
    assert config_error(lambda: resolve_config(SINE, overrides=["lr=abc"])) == "lr: expected float, got 'abc'"
    assert config_error(lambda: resolve_config(SINE, overrides=["hidden=[64, 'x']"])) == (
        "hidden: expected list[int], got [64, 'x']"
    )


def test_nothing_is_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    fields = [ConfigField("name", "str", "a", True), ConfigField("n", "int", 1, True)]
    assert resolve_config(fields, overrides=[f"name={evil}"])["name"] == evil
    assert config_error(lambda: resolve_config(fields, overrides=[f"n={evil}"])).startswith("n: expected int, got")
    assert not marker.exists()


def test_bare_text_for_string_like_fields() -> None:
    fields = [
        ConfigField("name", "str", "a", True),
        ConfigField("opt", "Literal['adam', 'sgd']", "adam", True),
        ConfigField("limit", "int | None", 3, True),
        ConfigField("when", "str", "", True),
    ]
    resolved = resolve_config(fields, overrides=["name=42", "opt=sgd", "limit=none", "when=2024-01-02"])
    assert resolved == {"name": "42", "opt": "sgd", "limit": None, "when": "2024-01-02"}
    assert resolve_config(fields, overrides=["name=true"])["name"] == "true"


NESTED = [
    ConfigField("optim.lr", "float", 0.1, True),
    ConfigField("optim.schedule.warmup", "int", 100, True),
    ConfigField("epochs", "int", 3, True),
    ConfigField("shape", "tuple[int, int]", (2, 3), True),
    ConfigField("data", "Path", None, True, "Path('data')"),
    ConfigField("out", "Path", "out", True),
    ConfigField("extra", "dict[str, int]", {}, True),
]


def test_nested_fields_from_profile_tables_and_dotted_overrides(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text("[optim]\nlr = 0.2\n\n[optim.schedule]\nwarmup = 5\n\n[extra]\nk = 1\n")
    resolved = resolve_config(NESTED, profile=profile, overrides=["optim.lr=0.3"])
    # plain values only: tuples are lists, paths are strings; a non-literal default is left out
    assert resolved == {
        "optim": {"lr": 0.3, "schedule": {"warmup": 5}},
        "epochs": 3,
        "shape": [2, 3],
        "out": "out",
        "extra": {"k": 1},
    }
    dotted = tmp_path / "d.toml"
    dotted.write_text('optim.schedule.warmup = 9\ndata = "d"\n')
    assert resolve_config(NESTED, profile=dotted, overrides=["optim={lr = 1}"])["optim"] == {"lr": 1.0, "schedule": {"warmup": 9}}
    assert resolve_config(NESTED, profile=dotted)["data"] == "d"


def test_group_needs_a_table() -> None:
    assert config_error(lambda: resolve_config(NESTED, overrides=["optim=3"])) == (
        "optim: expected a table of optim.lr, optim.schedule.warmup, got 3; set one field with optim.lr=VALUE"
    )
    message = config_error(lambda: resolve_config(NESTED, overrides=["optim.lrr=3"]))
    assert message.startswith("unknown config key 'optim.lrr'; valid keys: data, epochs, extra, optim.lr,")
    assert message.endswith("did you mean 'optim.lr'?")


def test_required_field_must_be_set(tmp_path: Path) -> None:
    fields = [ConfigField("data_dir", "str"), ConfigField("lr", "float", 0.1, True)]
    assert config_error(lambda: resolve_config(fields, task_name="T")) == (
        "config key 'data_dir' of T has no default; set it with -s data_dir=VALUE or in a profile"
    )
    assert resolve_config(fields, overrides=["data_dir=/d"]) == {"data_dir": "/d", "lr": 0.1}


def test_profile_errors_name_file_and_line(tmp_path: Path) -> None:
    profile = tmp_path / "configs" / "fast.toml"
    profile.parent.mkdir()
    profile.write_text("epochs = 1\n\nlrr = 0.1\n")
    assert config_error(lambda: resolve_config(SINE, profile=profile, task_name="Sine")) == (
        "configs/fast.toml:3: unknown config key 'lrr' for Sine; valid keys: batch_size, epochs, hidden, lr, seed; "
        "did you mean 'lr'?"
    )
    profile.write_text("epochs = 1\nlr = 'fast'\n")
    assert config_error(lambda: resolve_config(SINE, profile=profile)) == "configs/fast.toml:2: lr: expected float, got 'fast'"
    profile.write_text("[optim]\nlr = 0.1\nwarm = 1\n")
    assert config_error(lambda: resolve_config(NESTED, profile=profile)).startswith(
        "configs/fast.toml:3: unknown config key 'optim.warm'"
    )
    profile.write_text("epochs = = 1\n")
    message = config_error(lambda: resolve_config(SINE, profile=profile))
    assert message.startswith("configs/fast.toml:1: invalid TOML: ") and "(at line 1" in message
    assert config_error(lambda: resolve_config(SINE, profile=tmp_path / "nope.toml")).startswith(
        "nope.toml: cannot read the profile"
    )


# ------------------------------------------------------------------------- profiles


def test_find_profile(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    (configs / "sub").mkdir(parents=True)
    (configs / "fast.toml").write_text("")
    (configs / "long.toml").write_text("")
    (configs / "sub" / "tiny.toml").write_text("")
    (tmp_path / "mine.toml").write_text("")
    assert find_profile(tmp_path, "fast") == (configs / "fast.toml").resolve()
    assert find_profile(tmp_path, "sub/tiny") == (configs / "sub" / "tiny.toml").resolve()
    assert find_profile(tmp_path, "configs/long.toml") == (configs / "long.toml").resolve()
    assert find_profile(tmp_path, str(tmp_path / "mine.toml")) == (tmp_path / "mine.toml").resolve()
    assert config_error(lambda: find_profile(tmp_path, "fsat")) == (
        "no profile 'fsat' in configs; did you mean 'fast'?; available: fast, long, sub/tiny"
    )


@pytest.mark.parametrize("name", ["../secret", "../../etc/passwd", "sub/../../x", "/etc/passwd", ""])
def test_find_profile_refuses_names_that_escape(tmp_path: Path, name: str) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "secret.toml").write_text("")
    assert config_error(lambda: find_profile(tmp_path, name)).startswith(f"bad profile name {name!r}")


def test_find_profile_without_configs_folder(tmp_path: Path) -> None:
    assert config_error(lambda: find_profile(tmp_path, "fast")) == (
        "no profile 'fast' in configs; no profiles yet (create configs/NAME.toml)"
    )
    assert "not found" in config_error(lambda: find_profile(tmp_path, "missing.toml"))


# ---------------------------------------------------------------------- runtime side


CONFIG_SOURCE = """
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

@dataclass
class Schedule:
    warmup: int = 100

@dataclass
class Optim:
    lr: float = 0.1
    betas: tuple[float, ...] = (0.9, 0.99)
    schedule: Schedule = field(default_factory=Schedule)

@dataclass
class TheConfig:
    epochs: int = 3
    layers: list[int] = field(default_factory=lambda: [64, 64])
    opt: Literal['adam', 'sgd'] = 'adam'
    limit: int | None = None
    name: str = "run"
    optim: Optim = field(default_factory=lambda: Optim(lr=0.5))
    data: Path = Path("data")
    extra: dict[str, int] = field(default_factory=dict)
"""


def load_module(path: Path, name: str) -> typing.Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("future", [True, False])
def test_runtime_fields_match_static_discovery(tmp_path: Path, future: bool) -> None:
    header = "from __future__ import annotations\n" if future else ""
    source = header + textwrap.dedent(CONFIG_SOURCE)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "t.py").write_text(
        source + "\nfrom workbench import Task\nclass T(Task):\n    Config = TheConfig\n"
        "    build_data = build_model = lambda self: None\n"
    )
    # The runtime side imports the same dataclasses (without the Task: no torch here).
    module = load_module(_write(tmp_path, source), f"cfg_{future}")
    runtime = fields_of(module.TheConfig)
    static = list(discover_paths(tmp_path).get("T").config)
    strip = lambda fs: [(f.name, f.type, f.has_default) for f in fs]  # noqa: E731
    assert strip(runtime) == strip(static)
    assert [f.name for f in runtime] == [
        "epochs", "layers", "opt", "limit", "name", "optim.lr", "optim.betas", "optim.schedule.warmup", "data", "extra"
    ]
    defaults = {f.name: f.default for f in runtime}
    assert defaults["optim.lr"] == 0.5 and defaults["layers"] == [64, 64]
    static_defaults = {f.name: f.default for f in static if not f.default_source}
    assert {k: v for k, v in defaults.items() if k in static_defaults} == static_defaults
    # Both resolve to the same launch config.
    assert resolve_config(runtime) == {**resolve_config(static), "data": "data"}


def test_build_config_and_back(tmp_path: Path) -> None:
    module = load_module(_write(tmp_path, CONFIG_SOURCE), "cfg_build")
    values = resolve_config(fields_of(module.TheConfig), overrides=["optim.schedule.warmup=5", "data=/x", "limit=4"])
    config = build_config(module.TheConfig, values)
    assert isinstance(config.optim, module.Optim) and isinstance(config.optim.schedule, module.Schedule)
    assert config.optim.lr == 0.5 and config.optim.betas == (0.9, 0.99) and config.optim.schedule.warmup == 5
    assert config.data == Path("/x") and config.limit == 4
    assert config_to_dict(config) == values
    # a partial nested dict keeps the factory's other values
    partial = build_config(module.TheConfig, {"optim": {"schedule": {"warmup": 1}}})
    assert (partial.optim.lr, partial.optim.schedule.warmup) == (0.5, 1)
    assert build_config(module.TheConfig, {"optim": {"betas": [0.1, 0.2]}}).optim.betas == (0.1, 0.2)


def test_build_config_errors(tmp_path: Path) -> None:
    module = load_module(_write(tmp_path, CONFIG_SOURCE), "cfg_errors")
    assert config_error(lambda: build_config(module.TheConfig, {"optim": {"lrr": 1}})) == (
        "unknown config key 'optim.lrr' for Optim; valid keys: lr, betas, schedule; did you mean 'lr'?"
    )
    assert config_error(lambda: build_config(module.TheConfig, {"epochs": "x"})) == "epochs: expected int, got 'x'"

    @dataclass
    class Needs:
        path: str
        n: int = 1

    assert config_error(lambda: build_config(Needs, {"n": 2})) == "Needs: no value for path; set it with -s path=VALUE"
    assert config_error(lambda: fields_of(dict)).endswith("is not a dataclass; a task's Config must be a @dataclass")
    assert config_error(lambda: config_to_dict(Needs)).endswith("is not a dataclass instance")


def test_fields_of_skips_non_init_and_classvars() -> None:
    @dataclass
    class C:
        registry: typing.ClassVar[dict] = {}
        a: int = 1
        b: int = field(default=2, init=False)
        c: list[str] = field(default_factory=list, metadata={"help": "names"})
        obj: object = field(default_factory=object)

    got = fields_of(C)
    assert [(f.name, f.default, f.help) for f in got[:2]] == [("a", 1, ""), ("c", [], "names")]
    assert got[2].name == "obj" and got[2].default_source.startswith("<object object")
    assert resolve_config(got) == {"a": 1, "c": []}
    assert dataclasses.is_dataclass(build_config(C, {"a": 5}))


def _write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "cfgmod.py"
    path.write_text(textwrap.dedent(source))
    return path
