"""A run's logged images (``Task.log_image``): a key chooser, a step slider and the picture.

The picture is drawn with half blocks: each terminal cell shows two pixels, the upper one as
the foreground colour of ``▀`` and the lower one as its background, so it works in every
terminal that shows colour (and in tests, which have no terminal to ask about graphics). In a
terminal that speaks Kitty's graphics protocol or Sixel, ``textual-image`` draws it in full
resolution instead (chosen before the app starts: see :mod:`workbench.tui._graphics`).
Pillow decodes the PNGs; it is imported in a worker the first time the panel is shown, so the
app never loads it for a run whose images nobody looks at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from workbench.runs.images import LoggedImage
from workbench.tui import _graphics

__all__ = ["HalfBlocks", "ImageView", "ImagesPanel", "crisp", "slider_text"]

_INSTALL = "the Images tab decodes PNGs with Pillow: pip install workbench[images]"


class HalfBlocks:
    """A Rich renderable: an RGB Pillow image, two pixels a cell (``▀``, fg above, bg below).

    Args:
        image: A Pillow image in mode ``RGB``, already at the size to draw (width in cells,
            height in pixels: twice the lines).
    """

    def __init__(self, image: Any) -> None:
        self.width, self.height = image.size
        self.pixels = list(image.tobytes())

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, height, data = self.width, self.height, self.pixels
        styles: dict[tuple[int, ...], Style] = {}
        for top in range(0, height, 2):
            for x in range(width):
                i = (top * width + x) * 3
                upper = tuple(data[i:i + 3])
                lower = tuple(data[i + width * 3:i + width * 3 + 3]) if top + 1 < height else None
                key = upper + (lower or ())
                style = styles.get(key)
                if style is None:
                    style = styles[key] = Style(color=Color.from_rgb(*upper),
                                                bgcolor=Color.from_rgb(*lower) if lower else None)
                yield Segment("▀", style)
            yield Segment.line()


def crisp(image: Any, pixels: int = 768) -> Any:
    """``image`` grown by a whole factor (nearest neighbour) to about ``pixels`` on its longer
    side, so that a terminal scaling it to the panel keeps a small image's pixels sharp."""
    from PIL import Image

    factor = max(1, pixels // max(1, image.width, image.height))
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor),
                                                  Image.Resampling.NEAREST)


def fitted(image: Any, cells: tuple[int, int]) -> Any:
    """``image`` (RGB) scaled to fit ``cells`` (width, lines), keeping its aspect ratio;
    small images grow by whole factors with nearest-neighbour sampling, so pixels stay crisp."""
    from PIL import Image

    width, height = cells[0], cells[1] * 2
    if width <= 0 or height <= 0:
        return image.resize((1, 1))
    scale = min(width / image.width, height / image.height)
    if scale >= 1:
        factor = max(1, int(scale))
        size = (image.width * factor, image.height * factor)
        return image if factor == 1 else image.resize(size, Image.Resampling.NEAREST)
    size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    return image.resize(size, Image.Resampling.BOX)


class ImageView(Widget):
    """Draws one decoded image (a Pillow RGB image) fitted to its size: as half blocks, or
    through a ``textual-image`` widget when the terminal shows graphics.

    Args:
        protocol: How to draw (:mod:`workbench.tui._graphics`; default: what it chose).
    """

    DEFAULT_CSS = """
    ImageView { width: 1fr; height: 1fr; }
    ImageView > .graphic { width: auto; height: auto; }
    """

    def __init__(self, protocol: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.protocol = _graphics.protocol() if protocol is None else protocol
        self.picture: Any = None
        self.note = ""
        self._drawn: tuple[int, tuple[int, int]] | None = None
        self._renderable: Any = None
        self.graphic: Any = None  # the textual-image widget, when drawing with graphics

    def compose(self) -> ComposeResult:
        if self.protocol != _graphics.HALFBLOCKS:
            self.graphic = _graphics.graphic_widget(self.protocol, classes="graphic")
            self.graphic.display = False
            yield self.graphic

    def show(self, picture: Any, note: str = "") -> None:
        """Draw ``picture`` (None: only ``note``)."""
        self.picture, self.note = picture, note
        if self.graphic is not None:
            self.graphic.display = picture is not None
            if picture is not None and self._drawn != (id(picture), (0, 0)):
                self._drawn = (id(picture), (0, 0))
                self.graphic.image = crisp(picture)
        self.refresh()

    def render(self) -> Any:
        if self.picture is None:
            return Content.from_markup("[dim]$note", note=self.note)
        if self.graphic is not None:
            return ""  # the graphic widget draws it
        size = (self.size.width, self.size.height)
        key = (id(self.picture), size)
        if key != self._drawn:
            self._drawn, self._renderable = key, HalfBlocks(fitted(self.picture, size))
        return self._renderable


def slider_text(position: int, count: int, step: int | None, width: int = 30) -> str:
    """``◀ ━━━━●━━━━ ▶  step 120 (3/10)``: where the shown step lies among ``count``."""
    if count <= 0 or step is None:
        return "no images"
    width = max(3, width)
    at = 0 if count == 1 else round(position * (width - 1) / (count - 1))
    bar = "━" * at + "●" + "━" * (width - 1 - at)
    return f"◀ {bar} ▶  step {step} ({position + 1}/{count})"


@dataclass
class PictureRead(Message):
    """A worker decoded an image (or could not): the panel shows it if it still wants it."""

    path: Path
    picture: Any
    error: str = ""


class ImagesPanel(Vertical):
    """The Images tab: keys on the left; the chosen key's image at one step on the right.

    ``←``/``→`` (or ``[``/``]``) move through the steps; ``↑``/``↓`` choose the key. While
    the last step is shown, a newly logged one is shown as it arrives.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,left_square_bracket", "step(-1)", "Earlier step", show=False),
        Binding("right,right_square_bracket", "step(1)", "Later step", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entries: dict[str, list[LoggedImage]] = {}
        self.key: str | None = None
        self.position = 0
        self.active = False
        self._keys_shown: tuple[str, ...] = ()
        self._pictures: dict[Path, tuple[float, Any]] = {}  # path -> (mtime, decoded image)
        self._missing = ""  # why nothing can be decoded (no Pillow)

    def compose(self) -> ComposeResult:
        with Horizontal(id="images-body"):
            yield OptionList(id="image-keys")
            with Vertical(id="image-side"):
                yield Static(id="image-slider")
                yield ImageView(id="image-view")

    def on_mount(self) -> None:
        self._show()

    # -- what to show -------------------------------------------------------------------

    def set_images(self, images: Sequence[LoggedImage]) -> None:
        """The run's images now (sorted by key then step), from the index's artifact rows."""
        entries: dict[str, list[LoggedImage]] = {}
        for item in images:
            entries.setdefault(item.key, []).append(item)
        old = self.current()
        at_end = self.key is not None and self.position >= len(self.entries.get(self.key, ())) - 1
        self.entries = entries
        keys = tuple(entries)
        if keys != self._keys_shown:
            self._keys_shown = keys
            chooser = self.query_one("#image-keys", OptionList)
            chooser.clear_options()
            chooser.add_options([Option(key, id=key) for key in keys])
        if self.key not in entries:
            self.key = keys[0] if keys else None
            at_end = True
        if self.key is not None:
            steps = entries[self.key]
            if at_end:
                self.position = len(steps) - 1
            elif old is not None:  # keep the step shown, wherever it now lies
                self.position = next((i for i, e in enumerate(steps) if e.step == old.step),
                                     min(self.position, len(steps) - 1))
            self.query_one("#image-keys", OptionList).highlighted = keys.index(self.key)
        self._show()

    def activate(self, active: bool) -> None:
        """The tab is shown (decode and draw) or hidden (nothing is loaded)."""
        self.active = active
        if active:
            self._show()

    def current(self) -> LoggedImage | None:
        """The image shown now (None when the run has none)."""
        steps = self.entries.get(self.key or "", [])
        return steps[self.position] if 0 <= self.position < len(steps) else None

    def _show(self) -> None:
        if not self.is_mounted:
            return
        steps = self.entries.get(self.key or "", [])
        item = self.current()
        width = max(10, self.query_one("#image-slider", Static).size.width - 24)
        slider = slider_text(self.position, len(steps), item.step if item else None, width)
        self.query_one("#image-slider", Static).update(
            Content.assemble((self.key or "", "bold"), "  ", slider) if item else
            Content.from_markup("[dim]no images yet (a task logs them with self.log_image(key, image))"))
        view = self.query_one(ImageView)
        if item is None:
            view.show(None, "")
            return
        if self._missing:
            view.show(None, self._missing)
            return
        cached = self._pictures.get(item.path)
        if cached is not None:
            view.show(cached[1])
        if self.active:
            self._decode(item.path, cached[0] if cached else None)

    # -- decoding --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="image-decode")
    def _decode(self, path: Path, seen: float | None) -> None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            self.post_message(PictureRead(path, None, f"{path.name}: the file is gone"))
            return
        if mtime == seen:
            return
        try:
            from PIL import Image
        except ImportError:
            self.post_message(PictureRead(path, None, _INSTALL))
            return
        try:
            with Image.open(path) as image:
                picture = image.convert("RGB")
        except Exception as exc:  # noqa: BLE001 - a damaged file: one line where the image would be
            self.post_message(PictureRead(path, None, f"{path.name}: cannot read it ({exc})"))
            return
        self.post_message(PictureRead(path, (mtime, picture)))

    def on_picture_read(self, message: PictureRead) -> None:
        if message.error == _INSTALL:
            self._missing = _INSTALL
        if message.picture is not None:
            self._pictures[message.path] = message.picture
        item = self.current()
        if item is not None and item.path == message.path:
            view = self.query_one(ImageView)
            if message.picture is not None:
                view.show(message.picture[1])
            else:
                view.show(None, message.error)

    # -- keys --------------------------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#image-keys")
    def _key_chosen(self, event: OptionList.OptionHighlighted) -> None:
        key = event.option.id
        if key is not None and key != self.key and key in self.entries:
            self.key = key
            self.position = len(self.entries[key]) - 1
            self._show()

    def action_step(self, delta: int) -> None:
        """Show the previous (-1) or next (+1) step's image of the chosen key."""
        steps = self.entries.get(self.key or "", [])
        if steps:
            self.position = max(0, min(len(steps) - 1, self.position + delta))
            self._show()
