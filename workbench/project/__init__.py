"""The project layer: ``workbench.toml``, static task discovery, and task config.

Used by the workbench process (CLI, TUI) and the run machinery; it never imports torch,
textual, or the user's code.
"""

from __future__ import annotations

from workbench.project.config import (
    ConfigField,
    build_config,
    coerce,
    config_to_dict,
    fields_of,
    find_profile,
    parse_override,
    resolve_config,
    type_text,
    with_trainer_ranges,
)
from workbench.project._toml import display_path, tomllib
from workbench.project.discovery import (
    DISCOVERY_CACHE_FILE,
    Discovery,
    DiscoveryError,
    TaskInfo,
    clear_discovery_cache,
    discover,
    discover_paths,
)
from workbench.project.errors import ConfigError, ProjectError, ProjectNotFound, TaskNotFound
from workbench.project.ranges import TRAINER_RANGES, Range
from workbench.project.settings import (
    LaunchDefaults,
    Project,
    SnapshotSettings,
    find_project_root,
    load_project,
)

__all__ = [
    "DISCOVERY_CACHE_FILE",
    "ConfigError",
    "ConfigField",
    "Discovery",
    "DiscoveryError",
    "LaunchDefaults",
    "Project",
    "ProjectError",
    "ProjectNotFound",
    "Range",
    "TRAINER_RANGES",
    "SnapshotSettings",
    "TaskInfo",
    "TaskNotFound",
    "build_config",
    "clear_discovery_cache",
    "coerce",
    "config_to_dict",
    "discover",
    "discover_paths",
    "display_path",
    "fields_of",
    "find_profile",
    "find_project_root",
    "load_project",
    "parse_override",
    "resolve_config",
    "tomllib",
    "type_text",
    "with_trainer_ranges",
]
