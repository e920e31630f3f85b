"""Instant stylization with onnxruntime: `Stylizer` (``stylizer``) runs any style network on images, in tiles
when they are large (``tiling``), on the best execution provider (``providers``); ``video`` stylizes videos
with their sound. The `nst stylize` command: ``cli`` (options) -> ``plan`` (sources to destinations, checked
before any work) -> ``run`` (the work) -> ``report`` (stderr, ``--json``). No torch anywhere here."""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "stylizer": ["Stylizer", "FrameOptions", "is_network_source"],
        "video": ["stylize_video", "is_video"],
        "providers": ["available_providers"],
    },
)
