"""Package faces that import on first use (PEP 562), so a sub-package can re-export its public names.

`nst --help` imports every command's module, and importing ``nst_core.optimize.cli`` runs
``nst_core/optimize/__init__.py`` first: were that face to import its modules, every ``--help`` (and the
light install, which has no torch) would load torch. With `lazy_exports`, ``from nst_core.optimize import
optimize`` still works and imports ``nst_core.optimize.scales`` only then.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for ``package``; ``modules`` maps each of its modules (relative
    to ``package``) to the public names it defines (as `lazy_loader.attach`'s ``submod_attrs``)."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
