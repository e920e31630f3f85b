"""Video without flicker: follow the picture's motion (``flow``: OpenCV's DIS optical flow, reliability tests),
blend each stylized frame with the previous output moved along it (``consistency``: `TemporalFilter`), and
measure what is left (``measure``: the warping error of Lai et al. 2018). ``stream`` puts the two together for
`nst stylize` and `nst live`; ``clips`` makes moving test clips from still photos. Needs OpenCV
(the ``[video]`` extra), no torch."""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "consistency": ["TemporalFilter"],
        "measure": ["WarpingError", "warping_error"],
        "stream": ["FrameTemporal"],
        "clips": ["camera_clip", "object_clip", "cut_clip"],
    },
)
