"""output.log has a size cap: copy-truncate rotation, and readers that cope with the shrink."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.runs.supervisor import rotate_log
from workbench.tui._watcher import read_log


def test_rotation_keeps_the_previous_chunk_and_appends_continue_at_the_new_end(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    # The writer holds an append-mode handle, as the training process does.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, b"".join(b"line %d\n" % i for i in range(200)))
    assert not rotate_log(path, 10_000)  # under the cap: left alone
    assert rotate_log(path, 1_000)
    assert path.stat().st_size == 0
    assert (tmp_path / "output.log.1").read_bytes().startswith(b"line 0\nline 1\n")
    os.write(fd, b"after rotation\n")
    os.close(fd)
    assert path.read_bytes() == b"after rotation\n"  # not written past a hole at the old offset


def test_a_tailing_reader_starts_over_when_the_log_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    first = read_log("r", path, -1)
    assert first is not None and first.text.endswith("line 99\n")
    with path.open("r+b") as fh:
        fh.truncate(0)
    with path.open("a") as fh:
        fh.write("fresh\n")
    again = read_log("r", path, first.next_offset)
    assert again is not None and again.text == "fresh\n"
