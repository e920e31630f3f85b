"""The layering of the packages, as a table of "never imports" rules, and no import cycles.

Read by parsing the source (nothing is imported): every ``import`` counts, at module level, in functions
and under ``TYPE_CHECKING``, so a rule cannot be dodged by importing late.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nst_core", "train", "infer", "configs", "tools")
#: The torch-free runtime: what the light install (only onnxruntime, Pillow, NumPy, tqdm) imports.
TORCH_FREE = ("infer.stylize", "infer.live", "infer.models", "nst_core.losses.weights", "nst_core.cli")
HEAVY = ("torch", "torchvision", "accelerate", "datasets", "safetensors", "onnx", "gradio", "yaml")


@dataclass(frozen=True)
class Never:
    """Modules under any of ``importers`` never import anything under ``imported``, except ``allowed`` pairs."""

    importers: tuple[str, ...]
    imported: tuple[str, ...]
    why: str
    allowed: tuple[tuple[str, str], ...] = ()
    module_level_only: bool = False  # a late import (in a function) is allowed: the light install's rule


RULES = (
    Never(("nst_core",), ("train", "infer", "tools"), "the shared core imports nothing above it"),
    Never(
        ("nst_core.losses",),
        ("nst_core.optimize", "nst_core.cli"),
        "the losses serve the optimizer, the trainer and the comparison alike, and know no command",
    ),
    Never(("infer",), ("train",), "a trained network reaches inference as a file, never through the trainer"),
    Never(
        ("train",),
        ("infer",),
        "training does not depend on inference",
        allowed=(("train.teacher", "infer.stylize"), ("train.teacher", "infer.models")),
        # the one exception: an ONNX teacher (`--teacher starry_night`) runs on the torch-free runtime and a
        # shipped name resolves through its registry; moving those into nst_core would put onnxruntime and
        # the shipped models into the core every command imports
    ),
    Never(
        ("infer.stylize", "infer.live", "infer.models", "infer.export"),
        ("infer.compare", "infer.app"),
        "comparison and the web app are built on stylize and export, not the other way round",
    ),
    Never(("infer.compare",), ("infer.app",), "the web app is the top floor"),
    Never(("infer.stylize", "infer.models"), ("infer.live",), "live stylization is built on stylize"),
    Never(
        ("infer.models",),
        ("infer.stylize", "infer.export"),
        "the registry of shipped models reads their metadata itself: `nst models` loads no runtime",
    ),
    Never(
        ("nst_core", "train", "infer", "configs"),
        ("tools", "benchmarks", "tests"),
        "the maintainers' scripts and the tests are not in the package",
    ),
    Never(
        TORCH_FREE,
        HEAVY,
        "the light install has none of these; a module that needs one imports it where it is used",
        module_level_only=True,
    ),
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module(p): p
    for package in PACKAGES
    for p in sorted((ROOT / package).rglob("*.py"))
    if "__pycache__" not in p.parts
}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports(module: str) -> list[tuple[str, bool]]:
    """(imported module, at module level at run time) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    late: set[int] = set()
    for node in ast.walk(tree):
        nested = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        type_only = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        if nested or type_only:
            late.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) not in late) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{module}: a relative import (the project imports absolutely)"
            base = node.module or ""
            for a in node.names:  # `from infer.models import shipped` imports the module infer.models.shipped
                sub = f"{base}.{a.name}"
                found.append((sub if sub in MODULES else base, id(node) not in late))
    return found


def test_the_modules_are_found() -> None:
    assert {"nst_core.optimize.scales", "infer.stylize.stylizer", "train.trainer", "tools.ship"} <= set(MODULES)


@pytest.mark.parametrize("rule", RULES, ids=[r.why[:40] for r in RULES])
def test_never(rule: Never) -> None:
    broken = [
        f"{module} imports {name}"
        for module in MODULES
        if _under(module, rule.importers)
        for name, module_level in imports(module)
        if _under(name, rule.imported)
        and (module_level or not rule.module_level_only)
        and not any(module == a and _under(name, (b,)) for a, b in rule.allowed)
    ]
    assert not broken, f"{rule.why}: {broken}"


def test_the_allowed_exceptions_are_still_needed() -> None:
    """An exception nobody uses any more is a rule that says less than it could."""
    for rule in RULES:
        for importer, imported in rule.allowed:
            assert any(_under(name, (imported,)) for name, _ in imports(importer)), (importer, imported)


def test_no_import_cycles() -> None:
    """Module-level imports between the project's modules form no cycle (a package's face counts as a module)."""
    graph = {m: {n for n, top in imports(m) if top and n in MODULES and n != m} for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(graph[module]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], module, nxt] if nxt in path else [module, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_no_package_face_hides_one_of_its_modules() -> None:
    """A face re-exporting ``main`` from ``pkg/main.py`` makes ``pkg.main`` the function, not the module."""
    import importlib

    for package in sorted(m for m, p in MODULES.items() if p.name == "__init__.py"):
        face = importlib.import_module(package)
        modules = {m.rpartition(".")[2] for m in MODULES if m.rpartition(".")[0] == package}
        assert not modules & set(getattr(face, "__all__", ())), package
