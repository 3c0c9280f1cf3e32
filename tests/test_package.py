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
