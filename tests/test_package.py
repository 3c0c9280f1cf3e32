"""The package's import surface: light at ``import gfgsm``, subpackages on first access."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gfgsm


def test_import_gfgsm_loads_no_engine_network_or_torch():
    code = ("import sys, gfgsm; heavy = [m for m in ('torch', 'dask', 'distributed',"
            " 'gfgsm.mc', 'gfgsm.nn', 'gfgsm.torch') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_subpackages_load_on_first_access():
    code = ("import sys, gfgsm; gfgsm.mc.load; gfgsm.nn.GFGSMNetwork; gfgsm.rng.Stream; "
            "gfgsm.report.build_report; print('torch' in sys.modules, 'dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False False"
    assert {"mc", "nn", "rng", "report", "torch"} <= set(dir(gfgsm))


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gfgsm.nope  # noqa: B018
