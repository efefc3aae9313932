"""Task config: field specs, overrides, profiles, and the resolved config of a launch.

A config field is described the same way on both sides of the workbench: the static side
(``ast``, in the workbench process) and the runtime side (real dataclasses, in the training
process) both produce :class:`ConfigField` lists. Nested dataclass fields are **flattened
with dotted names**: ``optim: OptimConfig`` with fields ``lr`` and ``momentum`` appears as
the two fields ``optim.lr`` and ``optim.momentum``. The resolved config is a nested plain
dict (``{"optim": {"lr": 0.1, ...}}``) that JSON and TOML can hold.

Values come from, lowest first: the fields' defaults, a TOML profile, the overrides. An
override's value is parsed as a TOML value; text that is not valid TOML stays a string.
Nothing is ever evaluated.
"""

from __future__ import annotations

import dataclasses
import datetime
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from workbench.configtypes import (
    ConfigError,
    accepts_str,
    build_config,
    coerce,
    type_text,
)
from workbench.configtypes import init_fields as _init_fields
from workbench.configtypes import nested_dataclass as _nested_class
from workbench.configtypes import suggestion as _suggest
from workbench.configtypes import type_hints as _hints
from workbench.project._toml import display_path, find_key_line, load_toml_text, read_text, tomllib
from workbench.project.ranges import Range, check_value, trainer_range

__all__ = [
    "ConfigError",
    "ConfigField",
    "build_config",
    "coerce",
    "config_to_dict",
    "fields_of",
    "find_profile",
    "parse_override",
    "resolve_config",
    "type_text",
    "with_trainer_ranges",
]


@dataclass(frozen=True)
class ConfigField:
    """One settable config value (a leaf: nested dataclasses are flattened).

    Attributes:
        name: Dotted name from the config root, e.g. ``"lr"`` or ``"optim.lr"``.
        type: The annotation as text, e.g. ``"float"``, ``"list[int]"``, ``"int | None"``.
        default: The default value when it is known (a literal); else ``None``.
        has_default: Whether the field has a default at all (literal or not).
        default_source: The default's source text when it is not a literal (e.g.
            ``"Path('data')"``); ``""`` when ``default`` holds the value.
        help: The field's description: a string right after it, or its trailing comment.
        range: The allowed values: declared (``Annotated[int, Range(1, None)]``) or, for
            a top-level field the trainer reads (``epochs``, ``lr`` ...), the trainer's;
            ``None`` for no range.
        range_source: Where ``range`` came from: ``"declared"`` (the task's annotation),
            ``"trainer"`` (:data:`~workbench.project.ranges.TRAINER_RANGES`), or ``""``
            when there is no range. A field made with a range and no source is
            ``"declared"``.
    """

    name: str
    type: str
    default: Any = None
    has_default: bool = False
    default_source: str = ""
    help: str = ""
    range: Range | None = None
    range_source: str = ""

    def __post_init__(self) -> None:
        if self.range is None:
            object.__setattr__(self, "range_source", "")
        elif not self.range_source:
            object.__setattr__(self, "range_source", "declared")

    @property
    def required(self) -> bool:
        """True when the field has no default: a value must be given."""
        return not self.has_default

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly dict of the field.

        Returns:
            ``{"name", "type", "default", "has_default", "default_source", "help",
            "range", "range_source"}``, with tuples as lists and paths as strings in
            ``default``, and ``range`` as :meth:`Range.to_dict` gives it, or ``None``.
        """
        return {
            "name": self.name,
            "type": self.type,
            "default": _plain(self.default),
            "has_default": self.has_default,
            "default_source": self.default_source,
            "help": self.help,
            "range": self.range.to_dict() if self.range is not None else None,
            "range_source": self.range_source,
        }


def with_trainer_ranges(fields: Sequence[ConfigField]) -> list[ConfigField]:
    """Give the trainer's range to the top-level fields it reads that declare none.

    Args:
        fields: A task's config fields (dotted names for nested ones).

    Returns:
        The fields, with ``range``/``range_source="trainer"`` set on each top-level field
        named in :data:`~workbench.project.ranges.TRAINER_RANGES` whose range is ``None``;
        the others as they were.
    """
    out = []
    for spec in fields:
        if spec.range is None and "." not in spec.name:
            found = trainer_range(spec.name)
            if found is not None:
                spec = dataclasses.replace(spec, range=found, range_source="trainer")
        out.append(spec)
    return out


def _plain(value: Any) -> Any:
    """Make a value JSON/TOML friendly: tuples -> lists, paths -> str, dates -> ISO text."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``KEY=VALUE`` and parse the value as a TOML value.

    ``lr=1e-3`` gives ``("lr", 0.001)``, ``layers=[64, 64]`` a list, ``flag=true`` a bool,
    ``name="x"`` a string. A value that is not valid TOML (``name=foo``) stays the raw
    string; the type check decides later whether that is acceptable.

    Args:
        text: The override as the user typed it.

    Returns:
        The stripped key and the parsed value.

    Raises:
        ConfigError: There is no ``=`` or the key is empty.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {text!r}: expected KEY=VALUE, e.g. lr=0.01")
    return key, _parse_value(raw)


def _parse_value(raw: str) -> Any:
    try:
        parsed = tomllib.loads("v = " + raw)
    except tomllib.TOMLDecodeError:
        return raw.strip()
    # "1\nx = 2" parses, but it is not one value: keep the text as it was typed.
    return parsed["v"] if list(parsed) == ["v"] else raw.strip()


class _KeyedError(ConfigError):
    """A ConfigError that remembers which dotted key it is about (to find its line)."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class _Layers:
    """Collects values per dotted key, checking each against the fields."""

    def __init__(self, fields: Sequence[ConfigField], task_name: str) -> None:
        self.fields = {f.name: f for f in fields}
        self.groups = {f.name.rsplit(".", i)[0] for f in fields for i in range(1, f.name.count(".") + 1)}
        self.task_name = task_name
        self.values: dict[str, Any] = {}
        self.given: set[str] = set()  # keys set by the profile or an override

    def unknown(self, key: str) -> ConfigError:
        owner = f" for {self.task_name}" if self.task_name else ""
        valid = ", ".join(sorted(self.fields)) or "(this task has no config fields)"
        message = f"unknown config key '{key}'{owner}; valid keys: {valid}{_suggest(key, sorted(self.fields))}"
        return _KeyedError(message, key)

    def put(self, key: str, value: Any, *, raw: str | None = None) -> None:
        """Set one key; a table value for a group key sets its fields one by one."""
        if key in self.groups and key not in self.fields:
            if not isinstance(value, dict):
                children = sorted(n for n in self.fields if n.startswith(key + "."))
                raise _KeyedError(
                    f"{key}: expected a table of {', '.join(children)}, got {value!r}; "
                    f"set one field with {children[0]}=VALUE",
                    key,
                )
            for sub_key, sub_value in value.items():
                self.put(f"{key}.{sub_key}", sub_value)
            return
        spec = self.fields.get(key)
        if spec is None:
            raise self.unknown(key)
        try:
            self.values[key] = coerce(value, spec.type, key)
        except ConfigError as exc:
            # "-s name=42" on a str field: the user meant the text they typed.
            if raw is None or raw == value or not accepts_str(spec.type):
                raise _KeyedError(str(exc), key) from None
            self.values[key] = coerce(raw, spec.type, key)
        try:  # the range, nan, and ints SQLite cannot hold
            check_value(key, self.values[key], spec.range, typed=raw)
        except ConfigError as exc:
            raise _KeyedError(str(exc), key) from None
        self.given.add(key)


def resolve_config(
    fields: Sequence[ConfigField],
    *,
    profile: Path | None = None,
    overrides: Sequence[str] = (),
    task_name: str = "",
) -> dict[str, Any]:
    """Work out a launch's config: defaults < profile < overrides.

    Args:
        fields: The task's config fields (dotted names for nested dataclasses).
        profile: A TOML file whose top-level keys and tables name fields; tables (or
            dotted keys) set nested fields. ``None`` for no profile.
        overrides: ``KEY=VALUE`` texts, applied in order (a later one wins); dotted keys
            set nested fields.
        task_name: The task's name, used in messages.

    Returns:
        A nested plain dict, e.g. ``{"lr": 0.01, "optim": {"momentum": 0.9}}``: tuples
        become lists, paths strings. A field whose default is not a literal (and is not
        set) is left out, so the training process keeps the dataclass default.

    Raises:
        ConfigError: An unknown key (the message lists the valid ones), a value of the
            wrong type or out of its field's range (a default too), a required field
            left unset, or an unreadable/invalid profile (the message names the file
            and line).
    """
    layers = _Layers(fields, task_name)
    for spec in fields:
        if spec.has_default and not spec.default_source:
            try:
                layers.values[spec.name] = coerce(spec.default, spec.type, spec.name)
            except ConfigError:  # a sloppy default (x: int = None) is the code's business
                layers.values[spec.name] = spec.default
    if profile is not None:
        _apply_profile(layers, Path(profile))
    for text in overrides:
        key, value = parse_override(text)
        raw = text.partition("=")[2]
        layers.put(key, value, raw=raw.strip())
    for spec in fields:  # a default is checked as a value given: the launch refuses it now, not later
        if spec.name in layers.values and spec.name not in layers.given:
            try:
                check_value(spec.name, layers.values[spec.name], spec.range)
            except ConfigError as exc:
                raise ConfigError(f"{exc} (the task's default; set a value with -s {spec.name}=VALUE)") from None
    missing = [spec.name for spec in fields if not spec.has_default and spec.name not in layers.values]
    if missing:
        owner = f" of {task_name}" if task_name else ""
        raise ConfigError(
            f"config key{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}{owner} "
            f"{'have' if len(missing) > 1 else 'has'} no default; set "
            f"{'them' if len(missing) > 1 else 'it'} with -s {missing[0]}=VALUE or in a profile"
        )
    nested: dict[str, Any] = {}
    for spec in fields:  # field order, so the dict reads like the Config class
        if spec.name not in layers.values:
            continue
        *parents, leaf = spec.name.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _plain(layers.values[spec.name])
    return nested


def _apply_profile(layers: _Layers, profile: Path) -> None:
    where = display_path(profile)
    try:
        text = read_text(profile)
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text; save the profile as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the profile: {exc.strerror or exc}") from None
    try:
        data = load_toml_text(text, where)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for key, value in data.items():
        try:
            layers.put(key, value)
        except _KeyedError as exc:
            line = find_key_line(text, tuple(exc.key.split("."))) or find_key_line(text, (key,))
            location = f"{where}:{line}" if line else where
            raise ConfigError(f"{location}: {exc}") from None


def find_profile(root: Path, name: str) -> Path:
    """Find a config profile by name or path.

    ``fast`` means ``<root>/configs/fast.toml`` (``sub/fast`` works too, as long as it stays
    inside ``configs/``). A value ending in ``.toml`` is a path: relative to the current
    folder if it exists there, else to the root.

    Args:
        root: The project root.
        name: A profile name (``fast``) or a path to a TOML file.

    Returns:
        The profile file (absolute).

    Raises:
        ConfigError: The name escapes ``configs/``, or no such profile exists (the
            message lists the available ones).
    """
    root = Path(root).resolve()
    configs = root / "configs"
    text = name.strip()
    if text.endswith(".toml"):
        for candidate in (Path(text).expanduser(), root / text):
            if candidate.is_file():
                return candidate.resolve()
        raise ConfigError(f"profile file {text!r} not found (looked in {Path.cwd()} and {root})")
    path = (configs / f"{text}.toml").resolve()
    if not text or configs.resolve() not in path.parents:
        raise ConfigError(f"bad profile name {name!r}: a profile name is a file in configs/, e.g. 'fast'")
    if path.is_file():
        return path
    available = sorted(p.relative_to(configs).with_suffix("").as_posix() for p in configs.rglob("*.toml")) if configs.is_dir() else []
    listing = f"available: {', '.join(available)}" if available else f"no profiles yet (create {display_path(configs)}/NAME.toml)"
    raise ConfigError(f"no profile {name!r} in {display_path(configs)}{_suggest(text, available)}; {listing}")


# ---------------------------------------------------------------------------- runtime side


def _declared_ranges(cls: type) -> dict[str, Range]:
    """The ``Range`` in each field's ``Annotated[TYPE, Range(...)]``, from the type hints.

    Read as the static side reads it: only around the whole type, and a field with more
    than one ``Range`` has none (discovery reports it). When the hints cannot all be
    resolved, each field is tried alone, so one bad annotation hides no other range.
    """
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception:  # noqa: BLE001 - an unresolvable annotation somewhere in the class
        hints = {}
        module = sys.modules.get(cls.__module__)
        scope = dict(vars(module)) if module is not None else {}
        for f in dataclasses.fields(cls):
            tp = f.type
            if isinstance(tp, str):
                if "Range" not in tp:
                    continue
                try:  # this process has imported the task: its annotations are its own code
                    tp = eval(tp, scope, dict(vars(cls)))  # noqa: S307
                except Exception:  # noqa: BLE001 - an annotation that does not resolve has no range
                    continue
            hints[f.name] = tp
    out: dict[str, Range] = {}
    for name, tp in hints.items():
        if typing.get_origin(tp) is typing.Annotated:
            found = [m for m in tp.__metadata__ if isinstance(m, Range)]
            if len(found) == 1:
                out[name] = found[0]
    return out


def fields_of(cls: type, *, _prefix: str = "", _instance: Any = None) -> list[ConfigField]:
    """Describe a dataclass's fields the way static discovery does.

    Args:
        cls: A dataclass (a task's ``Config``). Default factories are called.

    Returns:
        The settable fields, nested dataclasses flattened with dotted names, with their
        ranges as discovery gives them: declared ones (``Annotated[int, Range(1, None)]``,
        read from the type hints) and, for the top-level fields the trainer reads, the
        trainer's (:func:`with_trainer_ranges`).

    Raises:
        ConfigError: ``cls`` is not a dataclass.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{cls!r} is not a dataclass; a task's Config must be a @dataclass")
    hints = _hints(cls)
    ranges = _declared_ranges(cls)
    out: list[ConfigField] = []
    for f in _init_fields(cls):
        name = _prefix + f.name
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if _instance is not None:
            default = getattr(_instance, f.name)
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        nested = _nested_class(cls, f, hints)
        if nested is not None:
            inner = default if dataclasses.is_dataclass(default) else None
            out.extend(fields_of(nested, _prefix=name + ".", _instance=inner))
            continue
        source = "" if _is_literal(default) else repr(default)
        help_text = str(f.metadata.get("help", "")) if f.metadata else ""
        out.append(
            ConfigField(
                name=name,
                type=type_text(hints.get(f.name, f.type)),
                default=default if not source else None,
                has_default=has_default or _instance is not None,
                default_source=source,
                help=help_text,
                range=ranges.get(f.name),
            )
        )
    return out if _prefix else with_trainer_ranges(out)


def _is_literal(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, PurePath)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_literal(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_literal(v) for k, v in value.items())
    return False


def config_to_dict(instance: Any) -> dict[str, Any]:
    """Turn a config instance into a nested plain dict (the inverse of :func:`build_config`).

    Args:
        instance: A dataclass instance.

    Returns:
        A dict of its init fields; nested dataclasses become dicts, tuples lists,
        paths strings.

    Raises:
        ConfigError: ``instance`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(instance) or isinstance(instance, type):
        raise ConfigError(f"{instance!r} is not a dataclass instance")
    return {f.name: _plain(getattr(instance, f.name)) for f in _init_fields(type(instance))}
