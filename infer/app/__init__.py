"""`nst app`: the Gradio web app over the shipped and trained models, the optimizer and the comparison.

``ui``: the page (`build_app`, `launch`); ``jobs``: the work behind each button, bounded and cancellable;
``catalogue``: the models and styles it offers; ``cli``: the command.
"""

from nst_core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ui": ["build_app", "launch"],
        "catalogue": ["ModelCatalogue"],
    },
)
