"""Where a run's logged images lie and what their files are called: the one place that says so.

``Task.log_image(key, image, step)`` writes ``<run>/artifacts/images/<key>/step-<step, 9
digits>.png``; the index's ``artifacts`` row holds the path relative to ``artifacts/``
(``images/<key>/step-000000120.png``), from which :func:`parse_image_path` recovers the key
and the step. A key may hold ``/`` (``val/boundary``): each part is a folder. This module
imports nothing above the standard library, so the training process and the app both use it.
"""

from __future__ import annotations

import re

__all__ = ["FOLDER", "ImageKeyError", "check_key", "image_path", "parse_image_path"]

#: The subfolder of ``artifacts/`` that holds logged images.
FOLDER = "images"

_FILE = re.compile(r"^step-(\d{9,})\.png$")
_BAD = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


class ImageKeyError(ValueError):
    """An image key that cannot name a folder inside ``artifacts/images/``."""


def check_key(key: str) -> str:
    """``key`` as a relative folder path with ``/`` between its parts.

    Args:
        key: The image's key, e.g. ``"boundary"`` or ``"val/sample"``.

    Returns:
        The key, stripped of surrounding spaces.

    Raises:
        ImageKeyError: The key is empty, absolute, has an empty, ``.`` or ``..`` part (it
            would leave the folder), or holds a control character or one of ``\\:*?"<>|``.
    """
    if not isinstance(key, str):
        raise ImageKeyError(f"an image key is a string, not {type(key).__name__}")
    text = key.strip()
    if not text:
        raise ImageKeyError("an image key cannot be empty")
    if _BAD.search(text):
        raise ImageKeyError(f"image key {key!r} holds a character a file name cannot: use letters, "
                            "digits, '-', '_', '.' and '/' between parts")
    parts = text.split("/")
    if any(part.strip() in ("", ".", "..") for part in parts):
        raise ImageKeyError(f"image key {key!r} would leave artifacts/images/: use parts like "
                            "'val/boundary', without empty, '.' or '..' parts")
    return text


def image_path(key: str, step: int) -> str:
    """The artifact path (relative to ``artifacts/``) of ``key``'s image at ``step``.

    Raises:
        ImageKeyError: A bad key (:func:`check_key`) or a negative step.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ImageKeyError(f"an image's step is an int >= 0, not {step!r}")
    return f"{FOLDER}/{check_key(key)}/step-{step:09d}.png"


def parse_image_path(path: str) -> tuple[str, int] | None:
    """``(key, step)`` of an artifact path that :func:`image_path` made; None for any other."""
    parts = path.replace("\\", "/").split("/")
    if len(parts) < 3 or parts[0] != FOLDER:
        return None
    match = _FILE.match(parts[-1])
    if match is None:
        return None
    return "/".join(parts[1:-1]), int(match.group(1))
