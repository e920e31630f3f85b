"""The style paintings that ship with nst, by name: ``--style starry_night`` works offline on any machine.

The one table of built-in style names. Only public-domain paintings ship (files and provenance in
``nst_core/styles/``); the well-known styles that cannot ship say where to get them. ``image_io.open_image``
resolves names through ``resolve_style``, so every command that opens an image accepts them. No torch, no PIL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nst_core.errors import NSTError

STYLES_DIR = Path(__file__).parent / "styles"


@dataclass(frozen=True)
class BuiltinStyle:
    """A shipped painting: ``STYLES_DIR / <name>.jpg``; the facts the README and the help show."""

    artwork: str
    artist: str
    year: str


BUILTIN_STYLES: dict[str, BuiltinStyle] = {
    "starry_night": BuiltinStyle("The Starry Night", "Vincent van Gogh", "1889"),
    "the_scream": BuiltinStyle("The Scream", "Edvard Munch", "1893"),
    "great_wave": BuiltinStyle("The Great Wave off Kanagawa", "Katsushika Hokusai", "c. 1831"),
    "composition_vii": BuiltinStyle("Composition VII", "Wassily Kandinsky", "1913"),
    "shipwreck": BuiltinStyle("The Shipwreck of the Minotaur", "J. M. W. Turner", "c. 1810"),
    "udnie": BuiltinStyle("Udnie", "Francis Picabia", "1913"),
}
#: Styles users know from other projects that are not public domain, so they cannot ship: name -> their file
#: in pytorch/examples (the styles of its pretrained fast_neural_style models).
NOT_SHIPPED = {"candy": "candy.jpg", "mosaic": "mosaic.jpg", "rain_princess": "rain-princess.jpg"}
NOT_SHIPPED_REPO, NOT_SHIPPED_FOLDER = "https://github.com/pytorch/examples", "fast_neural_style/images/style-images"


def builtin_style_path(name: str) -> Path | None:
    """The packaged image of a built-in style name; None for anything else."""
    return STYLES_DIR / f"{name}.jpg" if name in BUILTIN_STYLES else None


def style_help(text: str) -> str:
    """A --style option's help, naming the built-in styles (from the table, so it never goes stale)."""
    return f"{text}, or a built-in style: {', '.join(BUILTIN_STYLES)}"


def resolve_style(source: str) -> str | Path:
    """``source`` as given when it is an existing path or no known name; the packaged file of a built-in name.

    An existing file always wins over a name. A style that cannot ship is one NSTError saying where to get it.
    """
    if os.path.exists(source):
        return source
    path = builtin_style_path(source)
    if path is not None:
        return path
    if source in NOT_SHIPPED:
        raise NSTError(
            f"{source}: not public domain, so this style does not ship with nst; get "
            f"{NOT_SHIPPED_FOLDER}/{NOT_SHIPPED[source]} from {NOT_SHIPPED_REPO} and pass its path (--style PATH)"
        )
    return source
