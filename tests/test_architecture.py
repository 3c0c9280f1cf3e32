"""The package's layering, checked from its source (issue 14: keep the house in order).

* An import-layer contract: a module imports only from strictly lower layers or from inside its
  own room (``gfgsm.mc`` may import ``gfgsm.mc.store``), so adding a part never needs a room
  above it, and ``nn`` and ``mc`` stay independent of each other.
* No family-name comparisons outside ``gfgsm/families.py``: a family describes itself through
  attributes (``sign_is_constant``, ``is_binary``, ``has_dispersion``, ...), so adding one
  touches only that module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "gfgsm"

#: Rooms by layer, lowest first; a room may import only rooms of a lower layer.
LAYERS: list[set[str]] = [
    {"_backend"},
    {"rng", "_validation", "shifts"},
    {"families", "penalties", "designs"},
    {"objectives", "schemes", "dgp", "inference"},
    {"solvers"},
    {"batch"},
    {"intervals"},
    {"estimators", "theory", "diagnostics"},
    {"tuning"},
    {"mc", "nn"},
    {"report", "torch"},
    {"cli"},
]
LAYER = {room: k for k, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every gfgsm module named by an import statement of ``path`` (at any depth: lazy imports
    inside functions count too)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod == "gfgsm" or mod.startswith("gfgsm."):
                found |= {f"{mod}.{a.name}" for a in node.names} | {mod}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gfgsm"}
    return found


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "gfgsm"


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _modules()} - {"gfgsm"}
    assert rooms <= set(LAYER), f"rooms without a layer: {sorted(rooms - set(LAYER))}"


@pytest.mark.parametrize("module", sorted(m for m in _modules() if m != "gfgsm"))
def test_imports_respect_the_layers(module):
    mods = _modules()
    room = _room(module)
    bad = []
    for target in sorted(_imports(module, mods[module])):
        while target not in mods and "." in target:
            target = target.rsplit(".", 1)[0]  # gfgsm.batch.fit_batch -> gfgsm.batch
        other = _room(target)
        if other == room:
            continue
        if other == "gfgsm":
            continue  # the package root, for ``__version__`` only (checked below)
        if LAYER[other] >= LAYER[room]:
            bad.append(target)
    assert not bad, f"{module} (layer {LAYER[room]}) imports from its layer or above: {bad}"


def test_package_root_is_imported_for_its_version_only():
    for name, path in _modules().items():
        if name == "gfgsm":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                (node.level and node.module is None
                 and len(name.split(".")) - (node.level - (path.name != "__init__.py")) == 1)
                or (not node.level and node.module == "gfgsm")
            ):
                assert {a.name for a in node.names} <= {"__version__"}, name


_NAMES = r"(gaussian|binomial|poisson|softmax|multinomial)"
_COMPARISON = re.compile(
    rf"""(==|!=)\s*["']{_NAMES}["']|["']{_NAMES}["']\s*(==|!=)|\bin\s*[\(\[\{{]\s*["']{_NAMES}["']"""
)


@pytest.mark.parametrize("path", sorted(p for p in PKG.rglob("*.py") if p.name != "families.py"),
                         ids=lambda p: str(p.relative_to(PKG)))
def test_no_family_name_comparisons_outside_families(path):
    hits = [f"{k}: {line.strip()}" for k, line in enumerate(path.read_text().splitlines(), 1)
            if _COMPARISON.search(line) and not line.lstrip().startswith(("#", "for "))]
    assert not hits, "family-name comparisons (ask the family's attributes instead):\n" + \
        "\n".join(hits)
