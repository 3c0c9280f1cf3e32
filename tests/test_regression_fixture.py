"""``fit_batch`` outputs against the stored regression fixture (issue 14: refactors keep every
number).  Bitwise where NumPy, its BLAS and the CPU are those that wrote the fixture; elsewhere
a different BLAS kernel may round differently, and the comparison is then to 1e-10 relative
(the solvers' own tolerance is 1e-9 in the KKT residual, so a rounding-level change of the data
path moves the estimates by far less).  Statuses and iteration counts must match everywhere."""

from __future__ import annotations

import json

import numpy as np
import pytest
from regression_cases import FIXTURE, cases, fingerprint, run_case

STORED = np.load(FIXTURE)
SAME_MACHINE = str(STORED["__fingerprint__"]) == fingerprint()


def test_fixture_lists_the_current_cases():
    assert json.loads(str(STORED["__cases__"])) == json.loads(json.dumps(cases(),
                                                                         sort_keys=True))


@pytest.mark.parametrize("name", sorted(cases()))
def test_fit_batch_matches_fixture(name):
    got = run_case(cases()[name])
    for field, value in got.items():
        want = STORED[f"{name}/{field}"]
        if SAME_MACHINE or field in ("status", "converged"):
            np.testing.assert_array_equal(value, want, err_msg=f"{name}: {field}")
        else:
            np.testing.assert_allclose(value, want, rtol=1e-10, atol=1e-13,
                                       err_msg=f"{name}: {field}")
