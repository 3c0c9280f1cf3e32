"""The ``schemes`` study: G-FGSM with each gradient scheme against PL with its induced penalty.

``prediction`` is checked against the formula written out here (``lam0 P(beta0) I^-1 V``, with
``P`` evaluated by hand for each scheme at ``beta0 = (1, -0.5)``), and ``MethodSpec`` is checked
to hand PL the scheme's induced penalty.  The study is run once at a reduced size (binomial,
n = 1000 and 4000, 150 replications; a few seconds): every extrapolated paired difference lies
within 4 SE of its prediction (a normal tail of 6e-5 per comparison, under 0.1% over the 12
below; fixed seeds), and each prediction is far from 0 (the simulation sees the term).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gfgsm.mc.spec import MethodSpec, Preset
from gfgsm.penalties.induced import DualNorm
from gfgsm.theory import quantities
from simulations import schemes

TOL = 4.0


def test_prediction_against_hand_formula():
    q = quantities(schemes.make_dgp({"family": "binomial"}), seed=0)
    base = np.linalg.solve(np.asarray(q.I), np.asarray(q.V))
    hand = {"sign": 1.5, "lq": np.hypot(1.0, 0.5), "power": (1 + 0.25) / 1.0,
            "quantized": (4 * 1.0 + 2 * 0.5) / 4}
    for _, sch, par in schemes.SCHEMES:
        pred, P = schemes.prediction("binomial", sch, par)
        assert P == pytest.approx(hand[sch], rel=1e-12)
        np.testing.assert_allclose(pred, hand[sch] * base, rtol=1e-12)
    pred, _ = schemes.prediction("gaussian", "sign", ())
    np.testing.assert_allclose(pred, 0.0, atol=1e-12)  # sign neutral: V = 0


def test_pl_with_a_scheme_gets_its_induced_penalty():
    opts = MethodSpec("PL lq", "pl", scheme="lq", params=(("q", 2.0),)).fit_options()
    assert isinstance(opts["penalty"], DualNorm) and "scheme" not in opts and "q" not in opts
    g = MethodSpec("G-FGSM lq", "gfgsm", scheme="lq", params=(("q", 2.0),)).fit_options()
    assert g["scheme"] == "lq" and g["q"] == 2.0


@pytest.fixture(scope="module")
def sec(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schemes")
    study = dataclasses.replace(schemes.STUDY, factors={"family": ["binomial"],
                                                         "n": [1000, 4000]},
                                presets={"quick": Preset(reps=150), "full": Preset(reps=150)})
    return schemes.section("quick", tmp / "results", tmp / "figures", study=study,
                           executor="local")


def test_paired_differences_match_the_induced_penalties(sec):
    d = sec.summaries["diffs"]
    assert len(d) == 4 * 3
    assert np.all(np.abs(d.z) < TOL), d.to_string()
    assert np.all(np.abs(d.limit) > 8 * d.se_ext)
    assert sec.key == "schemes" and sec.agrees and sec.verdict.startswith("Agrees")
