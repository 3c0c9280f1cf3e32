"""``smoke``: a seconds-long study that exercises the whole engine (and the CLI's examples).

Aims: check that G-FGSM and PL run end to end on each family at ``lam_n = lam0 / sqrt(n)``.
Data: ``GaussianDesign(2, rho=0.3)``, ``theta0 = (0.3, 1, -0.5)`` (poisson halves the slopes).
Estimands: ``theta0``.  Methods: l1 G-FGSM (exact adversary for poisson) and l1 PL.
Performance: bias, empirical SE, RMSE with Monte Carlo SEs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gfgsm.designs import GaussianDesign
from gfgsm.dgp import DGP
from gfgsm.mc.spec import LamRule, MethodSpec, Preset, Study


def make_dgp(c: Mapping[str, Any]) -> DGP:
    scale = 0.5 if c["family"] == "poisson" else 1.0
    return DGP(c["family"], GaussianDesign(2, rho=0.3), coef=[scale, -0.5 * scale],
               intercept=0.3)


STUDY = Study(
    name="smoke",
    aims="End-to-end check of the engine: G-FGSM and PL at lam0/sqrt(n) on three families.",
    factors={"family": ["gaussian", "binomial", "poisson"], "n": [100, 400], "lam0": [1.0]},
    make_dgp=make_dgp,
    methods=(
        MethodSpec("G-FGSM l1", "gfgsm", lam=LamRule(), adversary="exact"),
        MethodSpec("PL l1", "pl", lam=LamRule()),
    ),
    presets={
        "quick": Preset(reps=20, description="seconds"),
        "full": Preset(reps=1000, factors={"n": [100, 400, 1600]}, description="a minute"),
    },
)
