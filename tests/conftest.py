"""Shared fixtures: every array-level test runs on NumPy and on ``array_api_strict``."""

from __future__ import annotations

import array_api_compat.numpy as np_xp
import array_api_strict
import pytest

BACKEND_PARAMS = [pytest.param(np_xp, id="numpy"), pytest.param(array_api_strict, id="strict")]


@pytest.fixture(params=BACKEND_PARAMS)
def xp(request):
    """The Array-API namespace under test."""
    return request.param
