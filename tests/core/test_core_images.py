"""Task.log_image: a PNG in artifacts/images/<key>/, recorded with its key and step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from core_tasks import TinyRegression
from PIL import Image

from workbench.core.errors import TaskError
from workbench.image_names import check_key, image_path, parse_image_path
from workbench.runs.images import images
from workbench.sinks import MemorySink
from workbench.store import MetricWriter, RunIndex


def _task(tmp_path: Path, sink=None) -> TinyRegression:
    return TinyRegression(run_dir=tmp_path / "run", sink=sink or MemorySink(), device="cpu")


def _pixels(path: Path) -> tuple[str, tuple[int, int], list]:
    with Image.open(path) as im:
        flat = np.asarray(im).reshape(im.size[0] * im.size[1], -1).tolist()
        return im.mode, im.size, [tuple(p) if len(p) > 1 else p[0] for p in flat]


def test_a_float_chw_tensor_becomes_an_rgb_png_and_an_artifact_row(tmp_path: Path) -> None:
    sink = MemorySink()
    task = _task(tmp_path, sink)
    image = torch.zeros(3, 4, 6)
    image[0, 0, 0] = 1.0  # top-left pixel red
    image[2, 3, 5] = 0.5  # bottom-right half blue
    image[1, 1, 1] = 7.0  # clipped to 1
    path = task.log_image("val/boundary", image, step=120)
    assert path == (tmp_path / "run" / "artifacts" / "images" / "val" / "boundary" / "step-000000120.png").resolve()
    mode, size, pixels = _pixels(path)
    assert (mode, size) == ("RGB", (6, 4))
    assert pixels[0] == (255, 0, 0) and pixels[-1] == (0, 0, 128) and pixels[6 + 1] == (0, 255, 0)
    [row] = sink.artifacts
    assert row["kind"] == "image" and row["size"] == path.stat().st_size
    assert parse_image_path(row["path"]) == ("val/boundary", 120)
    assert list(path.parent.iterdir()) == [path]  # no temporary file left beside it


def test_a_uint8_hw_tensor_is_grey_and_lands_at_the_current_step(tmp_path: Path) -> None:
    task = _task(tmp_path)
    task.state.step = 7
    path = task.log_image("grey", torch.arange(12, dtype=torch.uint8).reshape(3, 4) * 20)
    assert path is not None and path.name == "step-000000007.png"
    mode, size, pixels = _pixels(path)
    assert (mode, size) == ("L", (4, 3))
    assert pixels == [i * 20 for i in range(12)]


def test_a_numpy_hwc_array_keeps_its_channels(tmp_path: Path) -> None:
    task = _task(tmp_path)
    array = np.zeros((2, 5, 4), dtype=np.uint8)
    array[1, 4] = (10, 20, 30, 40)
    path = task.log_image("rgba", array, step=3)
    mode, size, pixels = _pixels(path)
    assert (mode, size) == ("RGBA", (5, 2))
    assert pixels[-1] == (10, 20, 30, 40)
    float_path = task.log_image("float", np.full((2, 2, 3), 0.25), step=3)
    assert _pixels(float_path)[2][0] == (64, 64, 64)


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs", "", "a//b", ".", "x\\..\\y", "a\nb"])
def test_a_key_that_would_leave_the_folder_is_refused_and_nothing_is_written(tmp_path: Path, key: str) -> None:
    task = _task(tmp_path)
    with pytest.raises(TaskError, match="image key|cannot be empty"):
        task.log_image(key, torch.zeros(2, 2), step=1)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_a_bad_shape_is_one_clear_error(tmp_path: Path) -> None:
    task = _task(tmp_path)
    with pytest.raises(TaskError, match=r"shape \(2, 5, 5, 5\)"):
        task.log_image("bad", torch.zeros(2, 5, 5, 5), step=1)


def test_without_a_run_folder_or_off_rank_0_nothing_is_kept(tmp_path: Path) -> None:
    assert TinyRegression(device="cpu").log_image("k", torch.zeros(2, 2), step=1) is None
    task = _task(tmp_path)
    task.backend.rank = 1
    assert task.log_image("k", torch.zeros(2, 2), step=1) is None
    assert not (tmp_path / "run" / "artifacts").exists()


def test_the_metric_writer_records_the_row_and_images_reads_key_and_step(tmp_path: Path) -> None:
    db = tmp_path / "index.db"
    with RunIndex(db) as index:
        run_id = index.create_run(task="TinyRegression", run_dir=str(tmp_path / "run")).id
    writer = MetricWriter(db, run_id)
    task = _task(tmp_path, writer)
    for step in (30, 10, 20):
        task.log_image("boundary", torch.rand(3, 8, 8), step=step)
    task.log_image("other", torch.rand(8, 8), step=5)
    writer.close()
    with RunIndex(db) as index:
        found = images(index, run_id)
        kinds = {row["kind"] for row in index.artifacts(run_id)}
    assert [(key, step) for key, step, _ in found] == [("boundary", 10), ("boundary", 20), ("boundary", 30),
                                                       ("other", 5)]
    assert all(path.is_file() for _, _, path in found)
    assert kinds == {"image"}


def test_image_names_round_trip() -> None:
    assert check_key(" a/b ") == "a/b"
    assert image_path("a/b", 42) == "images/a/b/step-000000042.png"
    assert parse_image_path("images/a/b/step-000000042.png") == ("a/b", 42)
    assert parse_image_path("images/step-000000042.png") is None
    assert parse_image_path("plots/a/step-000000042.png") is None
