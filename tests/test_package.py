"""The package's import surface: light at ``import gfgsm``, subpackages on first access."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gfgsm


def _fresh(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (modules already imported here don't count)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_import_gfgsm_loads_no_engine_network_or_torch():
    assert _fresh("import sys, gfgsm; print([m for m in ('torch', 'dask', 'distributed', "
                  "'gfgsm.mc', 'gfgsm.nn', 'gfgsm.torch') if m in sys.modules])") == "[]"


def test_subpackages_load_on_first_access():
    assert _fresh("import sys, gfgsm; gfgsm.mc.load; gfgsm.nn.GFGSMNetwork; gfgsm.rng.Stream; "
                  "gfgsm.report.build_report; "
                  "print('torch' in sys.modules, 'dask' in sys.modules)") == "False False"
    assert {"mc", "nn", "rng", "report", "torch"} <= set(dir(gfgsm))


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gfgsm.nope  # noqa: B018


def test_theory_citations_point_into_the_repository():
    """Every citation of the theory names docs/theory.md (a clone does not contain the outside
    design reference THEORY.md), and every cited section ``s.N`` exists there."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "theory.md").read_text()
    sections = {int(m) for m in re.findall(r"^## (\d+)\. ", doc, flags=re.MULTILINE)}
    assert sections == set(range(1, 10))
    files = [p for d in ("gfgsm", "simulations", "tests", "benchmarks", "docs")
             for p in (root / d).rglob("*") if p.suffix in (".py", ".md")]
    files.append(root / "README.md")
    cited: set[int] = set()
    for path in files:
        if path.name == "theory.md" or not path.is_file():
            continue
        text = path.read_text()
        if path != Path(__file__).resolve():
            assert "THEORY.md" not in text, f"{path.relative_to(root)} cites THEORY.md"
        cited |= {int(m) for m in re.findall(r"docs/theory\.md,? s\.(\d+)", text)}
    assert cited and cited <= sections
