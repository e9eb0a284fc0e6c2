"""The package's layers: every import (module level or inside a function) goes from a higher
layer to a lower one or within one package, and no modules import each other in a cycle."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import splinecam

ROOT = Path(splinecam.__file__).parent

# Lowest first; a module may import only from its own rank or below (docs/architecture.md).
LAYERS = [
    {"errors", "extras", "_version", "_moved"},
    {"geometry"},
    {"ops", "nn"},
    {"slices", "io"},
    {"run"},
    {"partition"},
    {"analysis"},
    {"viz"},
    {"apps"},
    {"__init__", "__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The splinecam modules ``path`` imports anywhere in its code, functions included (packages
    resolved to the module a name comes from where that module exists)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for block in [n for n in ast.walk(tree) if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]:
        block.body = []  # names for annotations only: not imported when the code runs
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "splinecam"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "splinecam":
                continue
            for alias in node.names:  # `from .viz import plot` imports the module splinecam.viz.plot
                sub = f"{target}.{alias.name}"
                found.add(sub if (ROOT.parent / (sub.replace(".", "/") + ".py")).exists() else target)
    return found - {name}


def rank(module: str) -> int:
    parts = module.split(".")
    return RANK["__init__" if len(parts) == 1 else parts[1]]


GRAPH = {module_name(p): imports_of(p) for p in ROOT.rglob("*.py")}


def test_every_top_level_part_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
            if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert tops <= set(RANK), f"modules without a layer: {sorted(tops - set(RANK))}"


def test_no_import_goes_up_a_layer():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                    if b in GRAPH and rank(b) > rank(a))
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_no_import_cycles():
    seen, on_path, cycles = set(), [], []

    def visit(m):
        if m in on_path:
            cycles.append(" -> ".join(on_path[on_path.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        on_path.append(m)
        for t in sorted(GRAPH.get(m, ())):
            if t != "splinecam" and not m.startswith(t + "."):  # a package's __init__ runs before its modules
                visit(t)
        on_path.pop()

    for m in sorted(GRAPH):
        visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_function_level_imports():
    # partition() imports run.tiles inside the function; the walker must see it
    assert "splinecam.run.tiles" in GRAPH["splinecam.partition"]


def test_every_module_says_what_it_exports():
    """Each module has an ``__all__`` whose names it defines (the deprecated-path shim excepted)."""
    missing, wrong = [], []
    for path in ROOT.rglob("*.py"):
        name = module_name(path)
        if path.name == "__init__.py" and name != "splinecam" or path.stem == "_moved":
            continue
        module = importlib.import_module(name)
        if not hasattr(module, "__all__"):
            missing.append(name)
        wrong += [f"{name}.{n}" for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, f"modules without __all__: {missing}"
    assert not wrong, f"names in __all__ that the module lacks: {wrong}"
