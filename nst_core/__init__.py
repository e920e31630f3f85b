"""Shared core of the style-transfer toolkit: VGG encoders, perceptual losses, image I/O,
the feed-forward transformation network and the iterative (Gatys et al.) optimizer."""

from importlib.metadata import PackageNotFoundError, version

from nst_core.errors import NSTError

try:
    __version__ = version("nst-toolkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["NSTError", "__version__"]
