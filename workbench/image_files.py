"""Logged images: a tensor or an array as a PNG in the run's ``artifacts/images/``.

:meth:`Task.log_image <workbench.core.task.Task.log_image>` and ``AttachedRun.log_image``
(``workbench.init()``) call :func:`write_image`. Pillow is imported here, on this path alone
(the ``images`` extra): a task that never logs an image never loads it. This module never
imports torch itself (an attached script need not have it): a tensor's own module is used.
"""

from __future__ import annotations

import io
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

from workbench.errors import WorkbenchError
from workbench.image_names import ImageKeyError, image_path

__all__ = ["ImageError", "encode_png", "write_image"]

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


class ImageError(WorkbenchError):
    """An image of another shape or type, a bad key, or no Pillow: one line for the user."""


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise ImageError("log_image needs Pillow: pip install workbench[images]") from None
    return Image


def _as_hwc(image: Any) -> Any:
    """A numpy array, HxW or HxWxC (C in 1, 3, 4), of uint8."""
    import numpy as np

    torch = sys.modules.get("torch")  # a tensor's module is loaded already; never load it here
    if torch is not None and isinstance(image, torch.Tensor):
        tensor = image.detach()
        if tensor.dim() == 3 and tensor.shape[0] in _MODES:
            tensor = tensor.permute(1, 2, 0)  # a tensor is CHW (HWC is taken when C comes last only)
        if tensor.is_floating_point() and tensor.dtype not in (torch.float32, torch.float64):
            tensor = tensor.float()  # numpy has no bfloat16
        array = tensor.cpu().contiguous().numpy()
    else:
        array = np.asarray(image)
    shape = tuple(array.shape)
    if array.ndim == 3 and shape[-1] not in _MODES and shape[0] in _MODES:
        array = np.moveaxis(array, 0, -1)  # an array given channels first
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in _MODES) or 0 in array.shape:
        raise ImageError(f"log_image takes HxW or CxHxW (tensor) / HxWxC (array) with C in 1, 3, 4; "
                        f"got shape {shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array.astype(np.float32), nan=0.0)
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.dtype != np.uint8:
            array = np.clip(array, 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"log_image takes numbers (float in [0, 1] or uint8), not {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return np.ascontiguousarray(array)


def encode_png(image: Any) -> bytes:
    """The PNG of ``image``.

    Args:
        image: A torch tensor (CxHxW or HxW) or a numpy array (HxWxC or HxW), C in 1, 3 or 4;
            floats are read as [0, 1] (clipped), integers as 0-255.

    Raises:
        ImageError: Pillow is missing, or the shape or type is not an image's.
    """
    pil = _pil()
    array = _as_hwc(image)
    mode = "L" if array.ndim == 2 else _MODES[array.shape[-1]]
    out = io.BytesIO()
    pil.fromarray(array, mode=mode).save(out, format="PNG", compress_level=3)
    return out.getvalue()


def write_image(artifacts: Path, key: str, image: Any, step: int,
                record: Callable[[list[dict[str, Any]]], None] | None = None) -> Path:
    """Write ``image`` as ``artifacts/images/<key>/step-<step>.png`` atomically, and record it.

    Args:
        artifacts: The run's ``artifacts/`` folder.
        key: The image's key (see :func:`workbench.image_names.check_key`).
        image: See :func:`encode_png`.
        step: The step it belongs to.
        record: Called with the artifact rows to record (path relative to ``artifacts/``,
            size, kind ``image``, time), or None.

    Returns:
        The file written.

    Raises:
        ImageError: A bad key, step or image, or Pillow is missing.
    """
    try:
        rel = image_path(key, int(step))
    except ImageKeyError as exc:
        raise ImageError(str(exc)) from None
    data = encode_png(image)
    root = artifacts.resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):  # a symlinked folder pointing outside
        raise ImageError(f"image key {key!r} leaves the artifacts folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as fh:
            fh.write(data)
        os.replace(temp, path)  # a reader sees the old file or the new one, never half of one
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if record is not None:
        record([{"path": rel, "size": len(data), "kind": "image", "created_at": time.time()}])
    return path
