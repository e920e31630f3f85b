"""The demo photos that ship with nst, by name: ``nst stylize chelsea --model starry_night`` works offline on any
machine, with nothing but nst installed.

The one table of built-in photo names (files and provenance in ``nst_core/photos/``: public domain or CC0).
``image_io.open_image`` resolves them through ``resolve_name``, as it does the built-in styles, so every command that
opens an image accepts them; ``skimage:NAME`` falls back to these copies where scikit-image is not installed. No
torch, no PIL.
"""

from __future__ import annotations

from pathlib import Path

PHOTOS_DIR = Path(__file__).parent / "photos"

#: name -> what the photo shows (nst_core/photos/SOURCES.md has the rights).
BUILTIN_PHOTOS: dict[str, str] = {
    "astronaut": "the astronaut Eileen Collins (NASA, public domain)",
    "chelsea": "Chelsea the cat (CC0, Stefan van der Walt)",
    "coffee": "a coffee cup (CC0, Rachel Michetti)",
    "rocket": "a Falcon 9 launch (SpaceX, public domain)",
}


def builtin_photo_path(name: str) -> Path | None:
    """The packaged file of a built-in photo name; None for anything else."""
    return PHOTOS_DIR / f"{name}.jpg" if name in BUILTIN_PHOTOS else None
