"""The G-FGSM objective ``Q_n``, its exact worst-case version, and the penalized likelihood ``R_n``.

Every objective of the package has the composite form (docs/theory.md s.3)

    F(theta) = (1/n) sum_i psi(y_i, eta_i, P),      eta_i = a + x_i' beta,   P = P_lam(beta) >= 0,

with one per-observation function ``psi`` of the linear predictor and of the *adversarial shift*
``P`` (the amount ``x_i' beta`` is moved by the adversary, docs/theory.md s.2-3):

* ``"pl"`` (penalized likelihood ``R_n``):  ``psi = l(y, eta) + P``;
* ``"sign"`` (G-FGSM with the FGSM sign ``s_i = sign(y_i - mu_i)``):
  ``psi = alpha l(y, eta) + (1 - alpha) l(y, eta - s_i P)``;
* ``"max"`` (the exact worst case over the two shifts ``+-P``):
  ``psi = alpha l(y, eta) + (1 - alpha) max(l(y, eta - P), l(y, eta + P))``,

where ``alpha`` is Goodfellow's ``clean_weight``.  For binomial the FGSM sign is the worst case
(``s = 2y - 1``), for gaussian ``sign(y - eta)`` is the worst case, so both adversaries use the
exact objective there; for poisson ``adversary="fgsm"`` is the (discontinuous) sign version and
``adversary="exact"`` the convex worst case.  The default ``adversary="auto"`` is the exact worst
case for every family: FGSM where the two coincide, the worst case where they do not (poisson).

**Observation weights and a linear tilt.**  With ``sample_weight`` ``w >= 0`` and ``tilt`` ``t``
(each ``(R, n)``, optional) the objective is the weighted mean plus a term linear in ``eta``,

    F(theta) = sum_i [ w_i psi(y_i, eta_i, P) + t_i eta_i ] / sum_i w_i,

(``w = 1`` when absent, so ``sum_i w_i = n``; docs/theory.md s.5).  Integer weights give exactly the
objective of the data with repeated rows, because ``P`` sits inside ``psi`` for every kind
(scikit-learn / statsmodels ``freq_weights`` semantics); the tilt re-centres the objective of a
perturbation bootstrap.  :class:`Objective` folds both into its per-observation terms, scaled by
``n / sum w`` so that ``F`` stays the *mean* of them: every solver, which only ever averages
``psi`` and its partials over observations, then minimises the weighted, tilted ``F`` unchanged.

The solvers need the partial derivatives of ``psi`` in ``(eta, P)``; :meth:`Objective.partials`
returns them.  The worst case has a kink where its two pieces tie; the solvers minimise the
smooth upper bound obtained by replacing ``|rho|`` by ``sqrt(rho^2 + mu_s^2)`` in
``max = (l_- + l_+) / 2 + P |rho|`` (see :meth:`Family.adversarial_residual`), which exceeds the
objective by at most ``P mu_s`` and is driven to ``mu_s -> 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from ._backend import get_namespace
from .families import Family, get_family

__all__ = ["ADVERSARIES", "Objective", "make_objective", "objective", "resolve_adversary"]

#: The accepted ``adversary=`` values.
ADVERSARIES = ("auto", "fgsm", "exact")

Kind = Literal["pl", "sign", "max"]


def _where(cond: Any, a: Any, b: float) -> Any:
    """``where(cond, a, b)`` in the namespace of ``cond``."""
    return get_namespace(cond).where(cond, a, b)


#: The per-replication ``(R, n)`` fields of :class:`Objective` (subset together by ``take``).
_PER_REPLICATION = ("signs", "sample_weight", "tilt")
#: Beyond this |rho| the smoothed |rho|, sqrt(rho^2 + smooth^2), is |rho| in float64 (for any
#: smooth below 1e142) and rho^2 would overflow.
_H_BIG = 1e150


@dataclass(frozen=True)
class Objective:
    """``F = sum_i [w_i psi(y_i, eta_i, P) + t_i eta_i] / sum_i w_i`` for one family, objective
    kind and ``clean_weight``; ``F = mean_i psi`` without weights and tilt.

    The solvers see the terms ``c_i psi_i + (n t_i / sum w) eta_i`` with
    ``c_i = n w_i / sum_j w_j`` (:meth:`per_sample`, :meth:`partials`), so that ``F`` is their
    plain mean and the solvers need not know about weights.
    """

    family: Family
    kind: Kind
    clean_weight: float = 0.0
    #: Optional frozen FGSM signs ``s`` of shape ``(R, n)`` (kind ``"sign"`` only); ``None``
    #: means ``s = sign(y - mu(eta))`` at the point of evaluation.
    signs: Any = None
    #: Optional observation weights ``w >= 0`` of shape ``(R, n)``, float64, each row with a
    #: positive sum (validated by :func:`gfgsm.fit_batch`); ``None`` means ``w = 1``.
    sample_weight: Any = None
    #: Optional tilt ``t`` of shape ``(R, n)``, float64: the term ``t_i eta_i`` added to the
    #: weighted sum (docs/theory.md s.5); ``None`` means ``t = 0``.
    tilt: Any = None

    def take(self, idx: Any) -> Objective:
        """The objective of the replications ``idx`` (signs, weights and tilt are per
        replication)."""
        changes: dict[str, Any] = {}
        for name in _PER_REPLICATION:
            a = getattr(self, name)
            if a is not None:
                changes[name] = get_namespace(a).take(a, idx, axis=0)
        return replace(self, **changes) if changes else self

    @property
    def is_weighted(self) -> bool:
        """True when observation weights or a tilt are set (``F`` is not the plain mean)."""
        return self.sample_weight is not None or self.tilt is not None

    def weight_scale(self) -> Any:
        """``c_i = n w_i / sum_j w_j``, shape ``(R, n)``, or ``None`` without weights (``c = 1``).

        The factor that turns the weighted sum ``sum_i w_i psi_i / sum w`` into the mean
        ``(1/n) sum_i c_i psi_i`` the solvers average.
        """
        w = self.sample_weight
        if w is None:
            return None
        xp = get_namespace(w)
        return w * (float(w.shape[-1]) / xp.sum(w, axis=-1))[:, None]

    def _tilt_scale(self) -> Any:
        """``n t_i / sum_j w_j`` (``t_i`` itself without weights), shape ``(R, n)``."""
        t, w = self.tilt, self.sample_weight
        if w is None:
            return t
        xp = get_namespace(w)
        return t * (float(w.shape[-1]) / xp.sum(w, axis=-1))[:, None]

    def _weigh(self, psi: Any, eta: Any) -> Any:
        """``c_i psi_i + (n t_i / sum w) eta_i``; ``psi`` itself (the same object) when
        unweighted, so the default path is bit-for-bit that of the unweighted objective."""
        c = self.weight_scale()
        if c is not None:
            # A zero weight drops the observation, even where its loss overflows (0 * inf).
            psi = _where(c > 0, c * psi, 0.0)
        if self.tilt is not None:
            psi = psi + self._tilt_scale() * eta
        return psi

    def _weigh_partials(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        """The five partials of :meth:`_weigh`: each times ``c_i``, ``psi_eta`` plus the tilt."""
        c = self.weight_scale()
        if c is not None:
            parts = tuple(_where(c > 0, c * d, 0.0) for d in parts)
        if self.tilt is not None:
            parts = (parts[0] + self._tilt_scale(), *parts[1:])
        return parts

    def _sign(self, y: Any, eta: Any) -> Any:
        return self.family.residual_sign(y, eta) if self.signs is None else self.signs

    @property
    def has_kinks(self) -> bool:
        """True when ``psi`` has a kink in ``eta`` at fixed ``P`` (the exact worst case)."""
        return self.kind == "max" and self.clean_weight < 1.0

    # --- values ---------------------------------------------------------------------------
    def per_sample(self, y: Any, eta: Any, P: Any) -> Any:
        """The terms ``c_i psi(y_i, eta_i, P) + (n t_i / sum w) eta_i`` whose mean is ``F``
        (``psi`` itself without weights and tilt), shape of ``eta`` (``(R, n)``); ``P`` has
        shape ``(R,)``."""
        return self._weigh(self._psi(y, eta, P), eta)

    def _psi(self, y: Any, eta: Any, P: Any) -> Any:
        """``psi(y_i, eta_i, P)`` (unweighted), shape ``(R, n)``."""
        fam, a = self.family, self.clean_weight
        Pb = P[..., None]
        if self.kind == "pl":
            return fam.loss(y, eta) + Pb
        clean = fam.loss(y, eta) if a > 0 else 0.0
        if self.kind == "sign":
            s = self._sign(y, eta)
            adv = fam.loss(y, eta - s * Pb)
        else:
            xp = get_namespace(eta)
            adv = xp.maximum(fam.loss(y, eta - Pb), fam.loss(y, eta + Pb))
        return a * clean + (1.0 - a) * adv

    def value(self, y: Any, eta: Any, P: Any) -> Any:
        """``F = sum_i [w_i psi_i + t_i eta_i] / sum_i w_i``: the mean of :meth:`per_sample`
        over the last axis, shape ``(R,)``."""
        xp = get_namespace(eta)
        return xp.mean(self.per_sample(y, eta, P), axis=-1)

    def smoothed_value(self, y: Any, eta: Any, P: Any, smooth: Any) -> Any:
        """The smooth upper bound ``F_mu`` minimised by the solvers (``F`` when no kinks),
        weighted and tilted as ``F``."""
        xp = get_namespace(eta)
        if not self.has_kinks:
            return self.value(y, eta, P)
        return xp.mean(self._weigh(self._smoothed_psi(y, eta, P, smooth)[0], eta), axis=-1)

    # --- derivatives ------------------------------------------------------------------------
    def partials(self, y: Any, eta: Any, P: Any, smooth: Any = 0.0) -> tuple[Any, ...]:
        """``(psi_eta, psi_P, psi_eta_eta, psi_eta_P, psi_P_P)``, each of shape ``(R, n)``.

        These are the partials of the terms of :meth:`per_sample`: with weights each is
        ``c_i = n w_i / sum w`` times that of ``psi``, and ``psi_eta`` gets ``+ n t_i / sum w``
        from the tilt; the solvers average them over observations (``g = Xt' psi_eta / n``,
        ``kappa = mean psi_P``), which gives the derivatives of the weighted, tilted ``F``.
        For ``kind="sign"`` the sign ``s_i`` is held at its current value (it is piecewise
        constant in theta); for ``kind="max"`` these are the derivatives of the smoothed
        ``psi`` with smoothing level ``smooth`` (shape ``(R,)`` or scalar).
        """
        return self._weigh_partials(self._psi_partials(y, eta, P, smooth))

    def _psi_partials(self, y: Any, eta: Any, P: Any, smooth: Any) -> tuple[Any, ...]:
        """The five partials of the unweighted ``psi`` (see :meth:`partials`)."""
        xp = get_namespace(eta)
        fam, a = self.family, self.clean_weight
        Pb = P[..., None]
        if self.kind == "pl":
            zero = xp.zeros_like(eta)
            return fam.dloss(y, eta), xp.ones_like(eta), fam.d2loss(y, eta), zero, zero
        d1c = fam.dloss(y, eta) if a > 0 else 0.0
        d2c = fam.d2loss(y, eta) if a > 0 else 0.0
        if self.kind == "sign":
            s = self._sign(y, eta)
            ea = eta - s * Pb
            d1, d2 = fam.dloss(y, ea), fam.d2loss(y, ea)
            b = 1.0 - a
            return (
                a * d1c + b * d1,
                -b * s * d1,
                a * d2c + b * d2,
                -b * s * d2,
                b * d2 * (s * s),
            )
        _, parts = self._smoothed_psi(y, eta, P, smooth, derivatives=True)
        pe, pP, pee, peP, pPP = parts
        b = 1.0 - a
        return a * d1c + b * pe, b * pP, a * d2c + b * pee, b * peP, b * pPP

    def tie_partials(self, y: Any, eta: Any, P: Any, ties: Any, nu: Any) -> tuple[Any, ...]:
        """Partials of the worst-case ``psi`` with the kinks of ``ties`` given multipliers ``nu``.

        For the exact solution of a kinked problem (kind ``"max"``), the observations at a kink
        (``rho_i = 0``, boolean ``ties`` of shape ``(R, n)``) contribute the subgradient
        ``nu_i in [-1, 1]`` of ``|rho|``: their term is ``(l_- + l_+)/2 + P nu_i rho_i``, the
        Lagrangian of the constraint ``rho_i = 0``.  The other observations use the unsmoothed
        ``|rho|``.  Returns the five partials (as :meth:`partials`, weighted and tilted) followed
        by ``(rho, rho_eta, rho_P)`` for the constraint rows, *unweighted*: ``nu_i`` multiplies
        ``|rho_i|`` inside ``psi_i``, so it stays in ``[-1, 1]`` whatever ``w_i``; the weight
        ``c_i`` of a kink enters the crossover's system through :meth:`weight_scale`.
        """
        a = self.clean_weight
        _, parts, rho_parts = self._smoothed_psi(
            y, eta, P, 0.0, derivatives=True, ties=ties, nu=nu
        )
        pe, pP, pee, peP, pPP = parts
        fam = self.family
        d1c = fam.dloss(y, eta) if a > 0 else 0.0
        d2c = fam.d2loss(y, eta) if a > 0 else 0.0
        b = 1.0 - a
        out = (a * d1c + b * pe, b * pP, a * d2c + b * pee, b * peP, b * pPP)
        return self._weigh_partials(out) + rho_parts

    def _smoothed_psi(
        self,
        y: Any,
        eta: Any,
        P: Any,
        smooth: Any,
        derivatives: bool = False,
        ties: Any = None,
        nu: Any = None,
    ) -> tuple[Any, ...]:
        """``(l_- + l_+)/2 + P h(rho)``, ``h(rho) = sqrt(rho^2 + smooth^2)``, and its partials.

        Returns ``(psi, parts)`` where ``psi`` already contains the clean part and ``parts`` are
        the partials of the *adversarial* part only (``None`` unless ``derivatives``).  With
        ``ties``/``nu`` (see :meth:`tie_partials`) ``h`` is ``nu rho`` on the ties and ``|rho|``
        elsewhere, and ``(rho, rho_eta, rho_P)`` are returned as a third element.
        """
        xp = get_namespace(eta)
        fam, a = self.family, self.clean_weight
        Pb = P[..., None]
        sm = smooth[..., None] if hasattr(smooth, "shape") and smooth.ndim else smooth
        lm, lp = fam.loss(y, eta - Pb), fam.loss(y, eta + Pb)
        rho, re, rP, ree, reP, rPP = fam.adversarial_residual(y, eta, Pb)
        if ties is None:
            # rho^2 overflows past |rho| ~ 1.3e154 (poisson at a far trial point of a line
            # search, mu = exp(eta)); there h = |rho| to the last bit, since smooth << rho
            big = xp.abs(rho) > _H_BIG
            rc = xp.where(big, 0.0, rho)
            h = xp.where(big, xp.abs(rho), xp.sqrt(rc * rc + sm * sm))
        else:
            h = xp.where(ties, nu * rho, xp.abs(rho))
        adv = (lm + lp) / 2.0 + Pb * h
        psi = (a * fam.loss(y, eta) if a > 0 else 0.0) + (1.0 - a) * adv
        if not derivatives:
            return psi, None
        d1m, d1p = fam.dloss(y, eta - Pb), fam.dloss(y, eta + Pb)
        d2m, d2p = fam.d2loss(y, eta - Pb), fam.d2loss(y, eta + Pb)
        if ties is None:
            # h' = rho / h, h'' = smooth^2 / h^3 (h > 0 whenever smooth > 0).
            hsafe = xp.where(h > 0, h, 1.0)
            h1 = xp.where(h > 0, rho / hsafe, 0.0)
            h2 = xp.where(h > 0, (sm * sm) / (hsafe * hsafe * hsafe), 0.0)
        else:
            h1 = xp.where(ties, nu, xp.sign(rho))
            h2 = xp.zeros_like(rho)
        A_e, A_P = (d1m + d1p) / 2.0, (d1p - d1m) / 2.0
        A_ee, A_eP, A_PP = (d2m + d2p) / 2.0, (d2p - d2m) / 2.0, (d2m + d2p) / 2.0
        pe = A_e + Pb * h1 * re
        pP = A_P + h + Pb * h1 * rP
        pee = A_ee + Pb * (h2 * re * re + h1 * ree)
        peP = A_eP + h1 * re + Pb * (h2 * re * rP + h1 * reP)
        pPP = A_PP + 2.0 * h1 * rP + Pb * (h2 * rP * rP + h1 * rPP)
        if ties is None:
            return psi, (pe, pP, pee, peP, pPP)
        return psi, (pe, pP, pee, peP, pPP), (rho, re, rP)


def resolve_adversary(adversary: str, family: Family) -> str:
    """``"fgsm"`` or ``"exact"``: ``"auto"`` is FGSM where the sign perturbation is the exact
    worst case (:attr:`Family.fgsm_is_exact`: gaussian, binomial) and the exact worst case where
    it is not (poisson, whose FGSM objective can have no minimiser; docs/theory.md s.2)."""
    if adversary not in ADVERSARIES:
        raise ValueError(f"unknown adversary {adversary!r}; expected one of {ADVERSARIES}")
    if adversary == "auto":
        return "fgsm" if family.fgsm_is_exact else "exact"
    return adversary


def make_objective(
    family: str | Family,
    method: str,
    adversary: str = "auto",
    clean_weight: float = 0.0,
) -> Objective:
    """The :class:`Objective` of an estimator.

    ``method="pl"`` gives ``R_n``; ``method="gfgsm"`` gives ``Q_n`` with ``adversary="fgsm"``
    (the sign perturbation), ``"exact"`` (worst case over the l_inf ball of a linear
    predictor, docs/theory.md s.2) or ``"auto"`` (the exact worst case, by FGSM where that is exact:
    :func:`resolve_adversary`), mixed with the clean loss by ``clean_weight``.
    """
    fam = get_family(family)
    if method not in ("gfgsm", "pl"):
        raise ValueError(f"unknown method {method!r}; expected 'gfgsm' or 'pl'")
    resolved = resolve_adversary(adversary, fam)
    if not (isinstance(clean_weight, int | float) and 0.0 <= clean_weight <= 1.0):
        raise ValueError(f"clean_weight must lie in [0, 1], got {clean_weight!r}")
    if method == "pl":
        if adversary not in ("auto", "fgsm") or clean_weight != 0.0:
            raise ValueError(
                "adversary= and clean_weight= apply to method='gfgsm' only; "
                f"got adversary={adversary!r}, clean_weight={clean_weight!r} with method='pl'"
            )
        return Objective(fam, "pl", 0.0)
    if fam.sign_is_constant:
        kind: Kind = "sign"  # the sign is the exact worst case, and smooth
    elif fam.fgsm_is_exact:
        kind = "max"  # the sign is the exact worst case, with kinks at zero residuals
    else:
        kind = "max" if resolved == "exact" else "sign"
    return Objective(fam, kind, float(clean_weight))


def objective(
    X: Any,
    y: Any,
    coef: Any,
    intercept: float = 0.0,
    *,
    family: str | Family,
    method: str,
    lam: float,
    penalty: Any = "l1",
    adversary: str = "auto",
    clean_weight: float = 0.0,
    **penalty_params: Any,
) -> float:
    """The mean objective of one problem: ``Q_n`` (``method="gfgsm"``) or ``R_n`` (``"pl"``).

    ``Q_n(theta) = (1/n) sum_i l(y_i, eta_i - s_i P_lam(beta))`` (docs/theory.md s.3, with the
    ``clean_weight`` mix and the ``"exact"`` adversary as in :func:`make_objective`);
    ``R_n(theta) = (1/n) sum_i l(y_i, eta_i) + P_lam(beta)``, both on the ``phi = 1`` scale.

    Parameters
    ----------
    X : (n, p) array;  y : (n,) array;  coef : (p,) array;  intercept : float.
    """
    from .penalties import get_penalty

    xp = get_namespace(X, y, coef)
    X = xp.asarray(X, dtype=xp.float64)
    y = xp.asarray(y, dtype=xp.float64)
    beta = xp.asarray(coef, dtype=xp.float64)
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam!r}")
    obj = make_objective(family, method, adversary, clean_weight)
    pen = get_penalty(penalty, **penalty_params)
    eta = intercept + X @ beta
    P = pen.value(beta[None, :], float(lam))
    return float(obj.value(y[None, :], eta[None, :], P)[0])
