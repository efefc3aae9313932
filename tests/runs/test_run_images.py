"""A real run of the sample SpiralClassification logs its decision boundary every epoch:
one PNG per epoch in the run's artifacts, recorded in the index with its key and step."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from runs_helpers import index_of, launch, run_row, wait_ended

from workbench.runs.images import images
from workbench.store import RunStatus

pytestmark = pytest.mark.slow


def test_a_spiral_run_of_two_epochs_has_two_boundary_images(project: Path) -> None:
    run_id = launch(project, "SpiralClassification", "--device", "cpu", "-s", "epochs=2",
                    "-s", "samples=400", "-s", "hidden=16")["id"]
    wait_ended(project, [run_id])
    row = run_row(project, run_id)
    assert row.status == RunStatus.COMPLETED, row.error
    with index_of(project) as index:
        found = images(index, run_id)
    per_epoch = row.total_steps // 2
    assert [(key, step) for key, step, _ in found] == [("boundary", per_epoch), ("boundary", 2 * per_epoch)]
    for _, _, path in found:
        assert path.parent == Path(row.run_dir) / "artifacts" / "images" / "boundary"
        with Image.open(path) as image:
            assert (image.size, image.mode) == ((48, 48), "RGB")
            assert len(image.getcolors(4096) or []) > 16  # a picture, not a flat colour
