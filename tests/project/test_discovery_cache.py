"""The disk cache of per-file summaries: same Discovery with or without it, and robust."""

from __future__ import annotations

import gc
import json
import os
import textwrap
from pathlib import Path

import pytest

from workbench.project import Discovery, discover, discover_paths, load_project
from workbench.project import _cache, _summary
from workbench.project._cache import CACHE_FILE, clear_cache

STEPS = "build_data = build_model = lambda self: None"

FILES = {
    "tasks/__init__.py": "",
    "tasks/base.py": f'''
        """Shared bits."""
        from __future__ import annotations
        import abc
        from dataclasses import dataclass, field
        from workbench import Task

        @dataclass
        class Optim:
            lr: float = 1e-3  # learning rate
            betas: tuple[float, ...] = (0.9, 0.999)
            eps: "float" = 1e-8
            """Added to the denominator."""

        class Framework(Task):
            """Train things.

            With a longer text, and ünïcödé.
            """

            abstract = True

            @dataclass
            class Config:
                optim: Optim = field(default_factory=lambda: Optim(lr=0.1))
                layers: list[int] = field(default_factory=lambda: [64, 64])
                shape: tuple[int, int] = (2, 3)
                names: frozenset = frozenset()
                tags: set = field(default_factory=set)
                table: dict = field(default_factory=lambda: {{1: "a", (2, 3): b"x", None: ...}})
                z: complex = 1 + 2j
                raw: bytes = b"\\x00\\xff"
                path: str = field(default="data", metadata={{"help": "Where the data is"}})
                when: object = object()
                big: int = {10**40}
                neg: float = -0.0
                inf: float = float("inf")
                uni: str = "naïve \\ud800"  # lone surrogate, kept as is

            @abc.abstractmethod
            def build_model(self): ...
    ''',
    "tasks/models/__init__.py": "from ..base import *\n",
    "tasks/models/a.py": f'''
        from dataclasses import dataclass
        from ..base import Framework

        class ModelA(Framework):
            """Model A."""

            @dataclass
            class Config(Framework.Config):
                hidden: int = 32  # ümlaut comment ✓
                ratio: float = 0.5

            def build_model(self): ...
            {STEPS}
    ''',
    "tasks/models/b.py": f'''
        import tasks.base as tb

        class ModelB(tb.Framework):
            Config = tb.Optim
            {STEPS}
    ''',
    "tasks/broken.py": "class Broken(:\n    pass\n",
    "tasks/nul.py": "x = 1\0\n",
}


def make(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8", errors="surrogatepass")
    return root


@pytest.fixture(autouse=True)
def _fresh() -> None:
    clear_cache()
    yield
    clear_cache()


class Counter:
    """Counts the files parsed and read through the cache."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed: list[str] = []
        self.read: list[str] = []
        scan_bytes, read = _cache.scan_bytes, _cache.read_bytes

        def counting_scan(path: Path, rel: str, data: bytes) -> _summary.FileInfo:
            self.parsed.append(rel)
            return scan_bytes(path, rel, data)

        def counting_read(path: Path) -> bytes:
            if Path(path).name != CACHE_FILE:
                self.read.append(Path(path).name)
            return read(path)

        monkeypatch.setattr(_cache, "scan_bytes", counting_scan)
        monkeypatch.setattr(_cache, "read_bytes", counting_read)

    def reset(self) -> None:
        self.parsed.clear()
        self.read.clear()


def run(root: Path, cache: Path | None) -> Discovery:
    """A discovery in a process-like state: nothing in memory, the disk cache kept."""
    clear_cache()
    return discover_paths(root, ("tasks/**/*.py",), cache_dir=cache)


def same(a: Discovery, b: Discovery) -> None:
    assert a == b
    assert repr(a) == repr(b)  # tuples stay tuples, -0.0 stays -0.0, set and dict keys alike
    assert [[type(f.default) for f in t.config] for t in a.tasks] == [[type(f.default) for f in t.config] for t in b.tasks]


def test_the_cache_gives_the_same_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    plain = run(root, None)
    assert not cache.exists()
    assert [t.name for t in plain.tasks] == ["Framework", "ModelA", "ModelB"]
    assert {e.file for e in plain.errors} == {"tasks/broken.py", "tasks/nul.py"}
    fields = {f.name: f for f in plain.get("ModelA").config}
    assert fields["optim.lr"].default == 0.1 and fields["optim.lr"].help == "learning rate"
    assert fields["hidden"].help == "ümlaut comment ✓"
    assert fields["big"].default == 10**40 and fields["when"].default_source == "object()"

    counter = Counter(monkeypatch)
    cold = run(root, cache)
    assert (cache / CACHE_FILE).is_file()
    assert len(counter.parsed) == len(plain.files) + 1  # and the framework's own Task
    same(plain, cold)

    counter.reset()
    warm = run(root, cache)
    assert counter.parsed == []  # every summary came from the disk cache
    same(plain, warm)
    assert discover_paths(root, ("tasks/**/*.py",), cache_dir=cache) is warm  # and then from memory


def test_clean_files_are_not_even_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    monkeypatch.setattr(_cache, "_RACY_NS", 0)  # as if the files were older than the racy window
    first = run(root, cache)
    stat = (cache / CACHE_FILE).stat()
    counter = Counter(monkeypatch)
    again = run(root, cache)
    assert counter.read == [] and counter.parsed == []
    same(first, again)
    after = (cache / CACHE_FILE).stat()
    assert (after.st_mtime_ns, after.st_ino) == (stat.st_mtime_ns, stat.st_ino)  # nothing changed: not written


def test_recent_files_are_checked_by_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    first = run(root, cache)
    written = json.loads((cache / CACHE_FILE).read_text())
    assert not any(entry[4] for key, entry in written["files"].items() if not key.startswith("/"))  # just written
    counter = Counter(monkeypatch)
    again = run(root, cache)
    assert counter.parsed == [] and "a.py" in counter.read  # read again, not parsed again
    same(first, again)


def test_edits_deletions_and_new_files_are_seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    monkeypatch.setattr(_cache, "_RACY_NS", 0)  # trust stamps, to check that they are compared
    run(root, cache)

    a = root / "tasks/models/a.py"
    a.write_text(a.read_text().replace("hidden: int = 32", "hidden: int = 64"))  # same size
    stat = a.stat()
    os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    (root / "tasks/models/b.py").unlink()
    make(root, {"tasks/models/c.py": f"from ..base import Framework\nclass ModelC(Framework):\n    {STEPS}\n"})
    (root / "tasks/broken.py").write_text("class Broken(:\n    pass\n\n")  # still broken, elsewhere

    counter = Counter(monkeypatch)
    cached = run(root, cache)
    assert sorted(counter.parsed) == ["tasks/broken.py", "tasks/models/a.py", "tasks/models/c.py"]
    same(run(root, None), cached)
    assert [t.name for t in cached.tasks] == ["Framework", "ModelA", "ModelC"]
    assert {f.name: f.default for f in cached.get("ModelA").config}["hidden"] == 64
    assert "tasks/models/b.py" not in cached.files
    assert [(e.file, e.line) for e in cached.errors] == [("tasks/broken.py", 1), ("tasks/nul.py", 0)]
    keys = json.loads((cache / CACHE_FILE).read_text())["files"]
    assert "tasks/models/b.py" not in keys and "tasks/models/c.py" in keys
    assert keys["tasks/broken.py"][5][3] == [1, "syntax error: invalid syntax"]  # errors are cached too

    counter.reset()
    same(cached, run(root, cache))
    assert counter.parsed == []


def test_a_cache_is_for_one_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = make(tmp_path / "one")
    second = make(tmp_path / "two")  # the same files, by name and content
    run(first, cache)
    counter = Counter(monkeypatch)
    found = run(second, cache)
    assert len(counter.parsed) == len(found.files) + 1  # the cache was not used
    same(run(second, None), found)
    assert json.loads((cache / CACHE_FILE).read_text())["root"] == str(second.resolve())


def test_discover_keeps_the_cache_in_the_state_dir(tmp_path: Path) -> None:
    root = make(tmp_path, {**FILES, "workbench.toml": '[project]\nname = "p"\nstate_dir = "state"\n'})
    project = load_project(root)
    first = discover(project)
    path = root / "state" / "cache" / CACHE_FILE
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [CACHE_FILE]  # no temporary file left
    clear_cache()
    same(first, discover(project))


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"{not json",
        b"[1, 2, 3]",
        b'{"schema": 1, "files": {}}',  # another workbench or Python version
        b"\xff\xfe garbage",
        b"[" * 100_000,
    ],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path: Path, damage: bytes) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    expected = run(root, cache)
    (cache / CACHE_FILE).write_bytes(damage)
    same(expected, run(root, cache))
    header = json.loads((cache / CACHE_FILE).read_text())
    assert header["schema"] == _cache._SCHEMA and "tasks/models/a.py" in header["files"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e.__setitem__(5, "nonsense"),
        lambda e: e[5][2][0].__setitem__(2, "line three"),  # a class's line
        lambda e: e[5][2][0].__setitem__(3, [1]),  # a base that is not a name
        lambda e: e[5][2][0][11][10].append(["x"]),  # a short field
        lambda e: e[5][2][0][11][10][0].__setitem__(4, {"?": 1}),  # an unknown tag
        lambda e: e[5][2][0][11][10][0].__setitem__(4, {"t": 5}),
        lambda e: e[5][2][0][11][10][0].__setitem__(10, ["1", None]),  # a range bound that is not a number
        lambda e: e[5][2][0][11][10][0].__setitem__(10, [True, None]),
        lambda e: e[5][2][0][11][10][0].__setitem__(10, [1]),
        lambda e: e[5].__setitem__(0, {"x": 1}),  # bindings
        lambda e: e.__setitem__(0, "old"),  # the stamp
    ],
)
def test_a_tampered_entry_is_ignored(tmp_path: Path, tamper, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p")
    cache = tmp_path / "cache"
    expected = run(root, cache)
    doc = json.loads((cache / CACHE_FILE).read_text())
    entry = doc["files"]["tasks/models/a.py"]
    assert entry[5][2][0][0] == "ModelA" and entry[5][2][0][11][10][0][0] == "hidden"
    tamper(entry)
    (cache / CACHE_FILE).write_text(json.dumps(doc))
    counter = Counter(monkeypatch)
    same(expected, run(root, cache))
    assert counter.parsed == ["tasks/models/a.py"]
    counter.reset()
    same(expected, run(root, cache))  # and the entry was written again
    assert counter.parsed == []


def test_an_unwritable_cache_folder_is_left_alone(tmp_path: Path) -> None:
    root = make(tmp_path / "p")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    expected = run(root, None)
    same(expected, run(root, blocker / "cache"))  # cannot be created: no error
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_state_dir_is_not_written(tmp_path: Path) -> None:
    root = make(tmp_path, {**FILES, "workbench.toml": '[project]\nname = "p"\n'})
    state = root / ".workbench"
    state.mkdir()
    state.chmod(0o500)
    try:
        project = load_project(root)
        same(run(root, None), discover(project))
        assert list(state.iterdir()) == []
    finally:
        state.chmod(0o700)


def test_values_survive_json() -> None:
    values = [
        None, True, False, 0, -1, 10**40, 1.5, -0.0, float("inf"), "", "é\ud800", b"\x00\xff",
        (), (1, (2, [3])), [], [1, [2]], {}, {1: "a", (2,): None, "k": {"n": 1}}, {1, "a", (2,)},
        frozenset({1}), 1 + 2j, ..., [..., {"t": 1}],
    ]
    for value in values:
        text = json.dumps(_summary.encode_value(value))
        back = _summary.decode_value(json.loads(text))
        assert back == value and repr(back) == repr(value) and type(back) is type(value)
    with pytest.raises(_summary.BadSummary):
        _summary.encode_value(object())
    with pytest.raises(_summary.BadSummary):
        _summary.encode_value(10**5000)


def test_a_default_json_cannot_hold_is_just_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make(tmp_path / "p", {"tasks/t.py": f"from dataclasses import dataclass\nfrom workbench import Task\nclass T(Task):\n    @dataclass\n    class Config:\n        n: int = {10**1300}\n    {STEPS}\n", "tasks/u.py": "class U: pass\n"})
    cache = tmp_path / "cache"
    expected = run(root, None)
    assert expected.get("T").config[0].default == 10**1300
    same(expected, run(root, cache))
    assert set(json.loads((cache / CACHE_FILE).read_text())["files"]) >= {"tasks/u.py"}
    same(expected, run(root, cache))


def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path) -> None:
    root = make(tmp_path / "p")
    assert gc.isenabled()
    run(root, None)
    assert gc.isenabled()
    gc.disable()
    try:
        run(root, None)
        assert not gc.isenabled()
    finally:
        gc.enable()
