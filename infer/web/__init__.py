"""`nst web`: the style networks in a static web page, run in the visitor's browser by onnxruntime-web.

``site``: the folder of static files (`build_site`, `SiteConfig`); ``runtime``: the pinned onnxruntime-web files
(checked, cached); ``serve``: a local server with the headers that give the page several threads; ``cli``: the
command. The page itself (HTML, JavaScript, CSS) is in ``static/``.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "site": ["SiteConfig", "build_site"],
        "serve": ["make_server"],
    },
)
