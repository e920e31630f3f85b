"""`nst live`: a camera, video file or stream stylized frame by frame, shown in a window and/or recorded
(``run``: capture, window, the loop; ``cli``: the command). Needs OpenCV for the camera, no torch."""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "run": ["run_live", "open_capture", "Window"],
    },
)
