"""Population quantities of a DGP (docs/theory.md sections 1, 4 and 5).

:func:`quantities` computes, at the true ``theta0`` of a :class:`~gfgsm.dgp.DGP`, with
``xt = (1, x)`` (intercept first, so vectors have ``p + 1`` entries):

* ``I = E[b''(eta) xt xt'] / phi``, the Fisher information, shape (p + 1, p + 1);
* ``D = E|y - mu| / phi``, the dispersion that rescales the G-FGSM penalty (s.4), a scalar;
* ``V = E[sign(y - mu) b''(eta) xt] / phi``, the sign-neutrality vector (s.5), shape (p + 1,);
* ``phi`` (``sigma^2`` for gaussian, 1 otherwise).

How each is computed (``Quantities.method`` says which, entry by entry):

* **closed form** -- gaussian with a design that has ``mean`` and ``second_moment`` and a built-in
  error law: ``I = E[xt xt'] / sigma^2``, ``D = E|e| / sigma``, ``V = E[sign e] E[xt] / sigma^2``
  (``b'' = 1``, ``e`` independent of ``x``; ``E|e|``, ``E sign e`` from :mod:`gfgsm.dgp`).
* **exact enumeration** -- binomial/poisson with a design of known finite support
  (``BernoulliDesign`` with ``p <= 16``, mixtures of such): a weighted sum over the support.
* **Monte Carlo over x** -- binomial/poisson otherwise.  ``y | x`` is integrated exactly:
  binomial ``E[|y - mu| | x] = 2 mu (1 - mu)``, ``E[sign(y - mu) | x] = 2 mu - 1``; poisson
  ``E[|y - mu| | x] = 2 mu P(y = floor(mu))`` (the Poisson mean absolute deviation) and
  ``E[sign(y - mu) | x] = P(y > mu) - P(y < mu)``.  Only the expectation over ``x`` is sampled,
  ``n_mc`` draws (vectorised in chunks, no loop over draws).  When the design is symmetric the
  draws are antithetic pairs ``(x, -x)``: unbiased, never worse per draw of ``x`` than a plain
  draw, and exact for the parts of the integrand that are odd in ``x``.  So with
  ``intercept = 0`` the binomial ``V[0]`` is exactly 0, because ``(2 mu - 1) mu (1 - mu)`` is
  evaluated as an exactly odd function of ``eta``.
* **Monte Carlo over (x, y)** -- ``method="monte_carlo"``: plain averages over ``n_mc`` draws of
  ``(x, y)`` from the DGP itself, with no closed form used.  A brute-force reference for the
  other methods (and the fallback for a family this module does not know).

Every Monte Carlo entry comes with its standard error (sample standard deviation of the iid
units / ``sqrt(n_mc)``; 0 for exact entries).  At the default ``n_mc = 200_000`` it is typically
0.1-0.5% of the entry's scale (``Quantities.rel_se``; e.g. binomial, AR(1) Gaussian design:
``se(I_jj)`` about ``5e-4`` for ``I_jj`` about 0.2).  A relative SE ``r`` is comparable to the
sampling error of a simulation study of about ``1 / r^2`` replications (``10^5`` at 0.3%), so it
does not dominate comparisons with smaller studies; a ``UserWarning`` is raised when an SE of
``I`` or ``D`` exceeds 1% of its scale.  Comparisons should add the reported SE in quadrature.

The integrals run on the host in NumPy and SciPy (Poisson probabilities need ``scipy.special``):
they are population constants, not user data, and the host gives the same numbers for every
backend.  All randomness comes from ``seed`` (default 0, so the result is reproducible).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ._validation import positive_int, real_in
from .designs import SeedLike, _root_seed
from .dgp import DGP

__all__ = ["FiniteSampleLaw", "LimitLaw", "Quantities", "limit_law", "quantities"]

#: Units (draws of x, or antithetic pairs) per vectorised chunk: bounds memory at
#: about ``CHUNK * (p + 1)`` floats per array whatever ``n_mc`` is.
_CHUNK = 1 << 15

#: A Monte Carlo SE larger than this fraction of the entry's scale triggers a warning.
_SE_WARN = 0.01

Method = Literal["auto", "conditional", "monte_carlo"]


# --------------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Quantities:
    """``I``, ``D``, ``V``, ``phi`` of a DGP with their Monte Carlo standard errors.

    Attributes
    ----------
    I : (p + 1, p + 1) Fisher information ``E[b'' xt xt'] / phi`` (intercept first).
    D : float, ``E|y - mu| / phi``.
    V : (p + 1,) sign-neutrality vector ``E[sign(y - mu) b'' xt] / phi``.
    phi : float, the dispersion.
    se_I, se_D, se_V : Monte Carlo standard errors of the same shapes (0 where exact).
    method : dict mapping ``"I"``, ``"D"``, ``"V"``, ``"phi"`` to how each was obtained.
    n_mc : Monte Carlo sample size used (0 when nothing was sampled).
    dgp : the DGP's repr.
    """

    I: np.ndarray  # noqa: E741 - docs/theory.md's name
    D: float
    V: np.ndarray
    phi: float
    se_I: np.ndarray
    se_D: float
    se_V: np.ndarray
    method: dict[str, str] = field(default_factory=dict)
    n_mc: int = 0
    dgp: str = ""

    @property
    def is_sign_neutral(self) -> bool:
        """``V = 0`` within 4 reported standard errors (exactly 0 where exact)."""
        return bool(np.all(np.abs(self.V) <= 4.0 * self.se_V))

    @property
    def rel_se(self) -> dict[str, float]:
        """The largest SE of each quantity relative to the natural scale of its entries.

        By Cauchy-Schwarz ``|I_jk| <= sqrt(I_jj I_kk)`` and ``|V_j| <= sqrt(I_00 I_jj)``; those
        bounds are the scales (they are never 0), and ``D`` is its own.
        """
        d = np.sqrt(np.abs(np.diag(self.I)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rI = np.where(self.se_I > 0, self.se_I / np.outer(d, d), 0.0)
            rV = np.where(self.se_V > 0, self.se_V / (d[0] * d), 0.0)
        return {
            "I": float(np.max(rI)),
            "D": self.se_D / self.D if self.se_D > 0 else 0.0,
            "V": float(np.max(rV)),
        }

    def __str__(self) -> str:
        sci = {"float_kind": lambda v: f"{v:.1e}"}
        mc = self.n_mc > 0
        with np.printoptions(precision=6, suppress=True, linewidth=100):
            lines = [
                f"Population quantities (docs/theory.md s.4-5) of {self.dgp}",
                f"  phi = {self.phi:.6g}   [{self.method.get('phi', '')}]",
                f"  D   = {self.D:.6g}  (se {self.se_D:.2g})   [{self.method.get('D', '')}]",
                f"  V   = {self.V}   [{self.method.get('V', '')}]",
                *([f"  se(V) = {np.array2string(self.se_V, formatter=sci)}"] if mc else []),
                f"  I   =   [{self.method.get('I', '')}]",
                _indent(str(self.I), 4),
                *(["  se(I) =", _indent(np.array2string(self.se_I, formatter=sci), 4)]
                  if mc else []),
            ]
        if self.n_mc:
            r = self.rel_se
            worst = max(r.values())
            lines.append(
                f"  Monte Carlo: n_mc = {self.n_mc}; largest SE relative to scale: "
                f"I {r['I']:.2%}, D {r['D']:.2%}, V {r['V']:.2%}.\n"
                f"  That is about the sampling error of a simulation study of "
                f"{1.0 / worst**2:.0e} replications, so it does not dominate comparisons with "
                "smaller studies; add the SEs in quadrature when comparing."
            )
        else:
            lines.append("  No Monte Carlo: every entry is exact (standard errors 0).")
        return "\n".join(lines)


def _indent(text: str, k: int) -> str:
    return "\n".join(" " * k + line for line in text.splitlines())


# --------------------------------------------------------------------------------------------
# accumulating means and standard errors over chunks
# --------------------------------------------------------------------------------------------

# A "member" is one evaluation point: (Xt (m, q), b (m,), d (m,), v (m,)) with the per-point
# integrands  I: b xt xt',  D: d,  V: v xt.  A "unit" averages K members (K = 2 for antithetic
# pairs (x, -x)); units are iid (Monte Carlo) or carry probabilities (enumeration).
_Member = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _Accumulator:
    def __init__(self, q: int) -> None:
        self.n = 0  # number of iid units (Monte Carlo)
        self.w = 0.0  # total weight (enumeration)
        self.s = {"D": 0.0, "V": np.zeros(q), "I": np.zeros((q, q))}
        self.ss = {"D": 0.0, "V": np.zeros(q), "I": np.zeros((q, q))}

    def add(self, members: list[_Member], weights: np.ndarray | None = None) -> None:
        K = len(members)
        m = members[0][0].shape[0]
        w = np.ones(m) if weights is None else weights
        dU = sum(d for _, _, d, _ in members) / K
        VU = sum(v[:, None] * Xt for Xt, _, _, v in members) / K
        self.s["D"] += float(w @ dU)
        self.s["V"] += w @ VU
        # sum_i w_i (1/K) sum_k b_ik xt_ik xt_ik' as matmuls: no (m, q, q) array.
        self.s["I"] += sum((Xt * (w * b)[:, None]).T @ Xt for Xt, b, _, _ in members) / K
        if weights is None:
            self.n += m
            self.ss["D"] += float(dU @ dU)
            self.ss["V"] += np.sum(VU * VU, axis=0)
            # sum_i (unit I_i)^2 entrywise = (1/K^2) sum_{k,l} (Xt_k o Xt_l)' diag(b_k b_l) (...)
            for Xk, bk, _, _ in members:
                for Xl, bl, _, _ in members:
                    P = Xk * Xl
                    self.ss["I"] += (P * (bk * bl)[:, None]).T @ P / K**2
        else:
            self.w += float(np.sum(weights))

    def result(self, key: str) -> tuple[np.ndarray | float, np.ndarray | float]:
        if self.n == 0:  # enumeration: exact up to rounding
            mean = self.s[key] / self.w
            return mean, np.zeros_like(np.asarray(mean, dtype=float))
        mean = self.s[key] / self.n
        var = np.maximum(self.ss[key] / self.n - np.asarray(mean) ** 2, 0.0)
        se = np.sqrt(var / max(self.n - 1, 1))
        return mean, se


def _with_intercept(X: np.ndarray) -> np.ndarray:
    return np.concatenate([np.ones((X.shape[0], 1)), X], axis=1)


def _chunks(n: int) -> list[int]:
    return [min(_CHUNK, n - i) for i in range(0, n, _CHUNK)]


def _conditional_members(dgp: DGP, X: np.ndarray, antithetic: bool) -> list[_Member]:
    """Members ``(xt, b''/phi, E[|y-mu| | x]/phi, E[sign | x] b''/phi)`` at ``X`` (and ``-X``)."""
    cond = dgp.family.conditional_moments
    z = X @ dgp.coef
    out = []
    for Xs, zs in ((X, z), (-X, -z)) if antithetic else ((X, z),):
        eta = dgp.intercept + zs  # with intercept 0, -z gives eta(-x) = -eta(x) exactly
        dgp.family.check_eta(eta)
        b2, abs_dev, sign_mean = cond(eta)
        out.append((_with_intercept(Xs), b2 / dgp.phi, abs_dev / dgp.phi, sign_mean * b2 / dgp.phi))
    return out


# --------------------------------------------------------------------------------------------
# the three routes
# --------------------------------------------------------------------------------------------


def _joint_mc(dgp: DGP, n_mc: int, rng: np.random.Generator) -> _Accumulator:
    """Plain averages over ``n_mc`` iid draws of ``(x, y)`` from the DGP."""
    acc = _Accumulator(dgp.p + 1)
    fam = dgp.family
    for m in _chunks(n_mc):
        X, y = dgp.draw(m, rng)
        eta = dgp.eta_host(X)
        mu = np.asarray(fam.mean(eta))
        b2 = np.asarray(fam.d2loss(y, eta)) / dgp.phi
        s = np.asarray(fam.residual_sign(y, eta))
        acc.add([(_with_intercept(X), b2, np.abs(y - mu) / dgp.phi, s * b2)])
    return acc


def _x_only(dgp: DGP, method: str, n_mc: int, rng: np.random.Generator) -> tuple[
    _Accumulator, str
]:
    """Binomial/poisson: exact ``y | x``; enumeration over ``x`` or Monte Carlo over ``x``."""
    acc = _Accumulator(dgp.p + 1)
    antithetic = dgp.design.is_symmetric
    support = dgp.design.support() if method == "auto" else None
    if support is not None:
        points, probs = support
        keep = probs > 0
        acc.add(_conditional_members(dgp, points[keep], antithetic), weights=probs[keep])
        return acc, "exact enumeration of the design's support"
    for m in _chunks(n_mc):
        acc.add(_conditional_members(dgp, dgp.design.draw_checked(m, rng), antithetic))
    how = "monte carlo over x (y | x exact)" + (", antithetic pairs" if antithetic else "")
    return acc, how


def _gaussian(dgp: DGP, method: str, n_mc: int, rng: np.random.Generator) -> tuple[
    dict, dict, int
]:
    """Gaussian: ``I = E[xt xt']/s^2``, ``D = E|e|/s``, ``V = E[sign e] E[xt]/s^2`` (s = sigma)."""
    design, noise, s2 = dgp.design, dgp.noise, dgp.phi
    q = dgp.p + 1
    used = 0
    how: dict[str, str] = {}
    # x-moments E[xt] and E[xt xt']
    m, S = design.mean, design.second_moment
    if method == "auto" and m is not None and S is not None:
        Ext, se_Ext = np.concatenate([[1.0], m]), np.zeros(q)
        Exx = np.block([[np.ones((1, 1)), m[None, :]], [m[:, None], S]])
        se_Exx = np.zeros((q, q))
        x_how = "closed form"
    else:
        acc = _Accumulator(q)
        anti = design.is_symmetric
        for k in _chunks(n_mc):
            X = design.draw_checked(k, rng)
            ones, zeros = np.ones(k), np.zeros(k)
            members = [(_with_intercept(X), ones, zeros, ones)]
            if anti:
                members.append((_with_intercept(-X), ones, zeros, ones))
            acc.add(members)
        Ext, se_Ext = acc.result("V")
        Exx, se_Exx = acc.result("I")
        used = n_mc
        x_how = "monte carlo over x" + (", antithetic pairs" if anti else "")
    # error moments E|e| and E sign(e)
    if noise.abs_mean is not None and noise.sign_mean is not None:
        Ea, se_a, Es, se_s = noise.abs_mean, 0.0, noise.sign_mean, 0.0
        e_how = "closed form"
    else:
        sa = qa = ss = qs = 0.0
        for k in _chunks(n_mc):
            e = noise.draw((k,), rng)
            a, sg = np.abs(e), np.sign(e)
            sa, qa, ss, qs = sa + a.sum(), qa + a @ a, ss + sg.sum(), qs + sg @ sg
        Ea, Es = sa / n_mc, ss / n_mc
        se_a = math.sqrt(max(qa / n_mc - Ea**2, 0.0) / max(n_mc - 1, 1))
        se_s = math.sqrt(max(qs / n_mc - Es**2, 0.0) / max(n_mc - 1, 1))
        used = n_mc
        e_how = f"monte carlo over the errors of {noise.name}"
    sigma = math.sqrt(s2)
    how["I"] = x_how
    how["D"] = e_how
    how["V"] = (
        "closed form" if x_how == e_how == "closed form"
        else f"E sign(e): {e_how}; E[xt]: {x_how}"
    )
    vals = {
        "I": (Exx / s2, se_Exx / s2),
        "D": (Ea / sigma, se_a / sigma),
        # product of independent estimates: delta-method SE
        "V": (Es * Ext / s2, np.sqrt((Es * se_Ext) ** 2 + (Ext * se_s) ** 2) / s2),
    }
    return vals, how, used


def quantities(
    dgp: DGP,
    *,
    method: Method = "auto",
    n_mc: int = 200_000,
    seed: SeedLike = 0,
) -> Quantities:
    """``I``, ``D``, ``V`` and ``phi`` of ``dgp`` at its true parameters (docs/theory.md s.4-5).

    ``I = E[b''(eta) xt xt'] / phi`` (p + 1, p + 1), ``D = E|y - mu| / phi`` (scalar),
    ``V = E[sign(y - mu) b''(eta) xt] / phi`` (p + 1,), with ``xt = (1, x)``.

    Parameters
    ----------
    dgp : DGP
    method : {"auto", "conditional", "monte_carlo"}
        ``"auto"``: closed forms where they exist, else exact enumeration, else Monte Carlo over
        ``x`` only (module docstring).  ``"conditional"``: Monte Carlo over ``x`` even where a
        closed form or enumeration exists (``y | x``, and for gaussian the error moments, still
        exact).  ``"monte_carlo"``: plain averages over draws of ``(x, y)`` from the DGP, no
        closed form at all: the brute-force reference.
    n_mc : int
        Monte Carlo draws (of ``x``, of ``(x, y)``, or of the gaussian errors); with a symmetric
        design each ``x`` is used with its mirror ``-x``.  Default 200 000: SEs typically
        0.1-0.5% of the entry's scale.
    seed : int, SeedSequence, Generator or None
        Randomness of the Monte Carlo (default 0: reproducible).

    Returns
    -------
    Quantities
        with the Monte Carlo standard errors (0 for exact entries) and the method per entry.
    """
    if not isinstance(dgp, DGP):
        raise TypeError(f"dgp must be a gfgsm.dgp.DGP, got {dgp!r}")
    if method not in ("auto", "conditional", "monte_carlo"):
        raise ValueError(
            f"method must be 'auto', 'conditional' or 'monte_carlo', got {method!r}"
        )
    n_mc = positive_int("n_mc", n_mc)
    if n_mc < 2:
        raise ValueError(f"n_mc must be at least 2 to estimate a standard error, got {n_mc}")
    rng = np.random.default_rng(_root_seed(seed))
    additive = dgp.family.has_dispersion  # y = eta + sigma e with e independent of x
    how: dict[str, str]

    if method == "monte_carlo" or (not additive and not dgp.family.has_conditional_moments):
        acc = _joint_mc(dgp, n_mc, rng)
        vals = {k: acc.result(k) for k in ("I", "D", "V")}
        how = dict.fromkeys(("I", "D", "V"), "monte carlo over (x, y)")
        used = n_mc
    elif additive:
        vals, how, used = _gaussian(dgp, method, n_mc, rng)
    else:
        acc, x_how = _x_only(dgp, method, n_mc, rng)
        vals = {k: acc.result(k) for k in ("I", "D", "V")}
        how = dict.fromkeys(("I", "D", "V"), x_how)
        used = 0 if acc.n == 0 else n_mc
    how["phi"] = "closed form"

    I, se_I = (np.array(a, dtype=float) for a in vals["I"])  # noqa: E741
    V, se_V = (np.array(a, dtype=float) for a in vals["V"])
    # I is symmetric in exact arithmetic; the matmul sums are too, up to rounding.
    I = (I + I.T) / 2.0  # noqa: E741
    for a in (I, se_I, V, se_V):
        a.flags.writeable = False
    out = Quantities(
        I=I, D=float(vals["D"][0]), V=V, phi=float(dgp.phi),
        se_I=se_I, se_D=float(vals["D"][1]), se_V=se_V,
        method=how, n_mc=used, dgp=repr(dgp),
    )
    if used:
        r = out.rel_se
        if r["I"] > _SE_WARN or r["D"] > _SE_WARN:
            warnings.warn(
                f"quantities: Monte Carlo SE is {r['I']:.2%} of I's scale and {r['D']:.2%} of D "
                f"at n_mc = {used}; increase n_mc so it cannot dominate a comparison",
                UserWarning,
                stacklevel=2,
            )
    return out


# --------------------------------------------------------------------------------------------
# limit laws (docs/theory.md s.5 and s.7)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteSampleLaw:
    """The law of ``theta_hat`` at sample size ``n`` predicted by a :class:`LimitLaw`.

    ``theta_hat ~ theta0 + U / sqrt(n)`` with ``U`` the limit: mean ``theta0 + bias / sqrt(n)``,
    covariance ``cov / n`` (intercept first), at the level ``lam`` the rule gives for this ``n``.
    """

    n: int
    lam: float
    mean: np.ndarray
    cov: np.ndarray
    limit: LimitLaw

    def sample(self, m: int, seed: SeedLike = None) -> np.ndarray:
        """``m`` draws of ``theta_hat``, shape (m, p + 1)."""
        return self.limit.theta0 + self.limit.sample(m, seed) / math.sqrt(self.n)


@dataclass(frozen=True)
class LimitLaw:
    """Limit in law of ``sqrt(n) (theta_hat - theta0)`` (docs/theory.md s.5, s.7), intercept first.

    ``U = argmin_u Z(u)``, ``Z(u) = -u'W + u'Iu/2 + pen(u) + lin'u``, ``W ~ N(0, I)``, with

    * G-FGSM, l1, ``lam_n = lam0 / sqrt(n)``: ``pen = lam0 D sum_{beta0_j = 0} |u_j|``,
      ``lin = lam0 D sgn0 - lam0 ||beta0||_1 V``;
    * PL, l1: ``pen = (lam0 / phi) sum_{beta0_j = 0} |u_j|``, ``lin = (lam0 / phi) sgn0`` (the
      package's PL is on the ``phi = 1`` scale, so its level on THEORY's scale is ``lam0 / phi``);
    * lr, ``0 < r < 1``, ``lam_n = lam0 n^(r/2 - 1)``: ``pen = c sum_{beta0_j = 0} |u_j|^r`` with
      ``c = lam0 D`` (G-FGSM) or ``lam0 / phi`` (PL), ``lin = 0`` (s.7).

    Attributes
    ----------
    bias, cov : mean (p + 1,) and covariance (p + 1, p + 1) of ``U``; closed form
        ``bias = -I^{-1} lin``, ``cov = I^{-1}`` when no true slope is zero (``closed_form``),
        otherwise Monte Carlo over ``n_mc`` draws with standard errors ``se_bias``, ``se_cov``.
    prob_zero : (p + 1,) ``P(U_j = 0)`` for the zero slopes (Monte Carlo, SE ``se_prob_zero``),
        NaN for the intercept and the nonzero slopes (where it is 0).
    quantities : the :class:`Quantities` (``I``, ``D``, ``V``, ``phi``) used.
    """

    method: str
    penalty: str
    lam0: float
    r: float  # the penalty's parameter: 1 (l1), r (lr), a (SCAD) or gamma (MCP)
    theta0: np.ndarray
    zero: np.ndarray
    quantities: Quantities
    pen_level: float
    lin: np.ndarray
    bias: np.ndarray
    cov: np.ndarray
    se_bias: np.ndarray
    se_cov: np.ndarray
    prob_zero: np.ndarray
    se_prob_zero: np.ndarray
    closed_form: bool
    n_mc: int

    def lam_n(self, n: int) -> float:
        """The level at sample size ``n``: ``lam0 / sqrt(n)`` (l1), ``lam0 n^(r/2 - 1)`` (lr),
        ``lam0 n^(-1/4)`` (SCAD, MCP)."""
        n = positive_int("n", n)
        exponent = -0.25 if self.penalty in ("scad", "mcp") else self.r / 2.0 - 1.0
        return self.lam0 * (n ** exponent)

    def at_n(self, n: int) -> FiniteSampleLaw:
        """Predicted law of ``theta_hat`` at sample size ``n``."""
        n = positive_int("n", n)
        return FiniteSampleLaw(n, self.lam_n(n), self.theta0 + self.bias / math.sqrt(n),
                               self.cov / n, self)

    def sample(self, m: int, seed: SeedLike = None, backend: str | None = None) -> np.ndarray:
        """``m`` draws of ``U`` (shape (m, p + 1)): ``m`` draws of ``W``, minimised at once."""
        m = positive_int("m", m)
        rng = np.random.default_rng(_root_seed(seed))
        z = rng.standard_normal((m, self.theta0.size))
        return _argmin_Z(self, z, backend)

    def __str__(self) -> str:
        kind = "closed form" if self.closed_form else f"Monte Carlo, {self.n_mc} draws"
        rule = {"l1": "lam_n = lam0/sqrt(n)", "lr": "lam_n = lam0 n^(r/2-1)"}.get(
            self.penalty, "lam_n = lam0 n^(-1/4)")
        names = ["intercept"] + [f"beta{j}" for j in range(1, self.theta0.size)]
        sd = np.sqrt(np.diag(self.cov))
        lines = [
            f"Limit law of sqrt(n)(theta_hat - theta0): {self.method}, {self.penalty}"
            + (f" (r = {self.r})" if self.penalty == "lr" else "")
            + f", lam0 = {self.lam0} ({rule})",
            f"D = {self.quantities.D:.6g}, phi = {self.quantities.phi:.6g}; moments: {kind}",
            f"{'':10s} {'theta0':>10s} {'bias':>10s} {'sd':>10s} {'P(U = 0)':>10s}",
        ]
        for j, name in enumerate(names):
            pz = "" if np.isnan(self.prob_zero[j]) else f"{self.prob_zero[j]:.4f}"
            lines.append(f"{name:10s} {self.theta0[j]:10.4g} {self.bias[j]:10.4g} "
                         f"{sd[j]:10.4g} {pz:>10s}")
        return "\n".join(lines)


def limit_law(
    dgp: DGP,
    lam0: float,
    method: str = "gfgsm",
    penalty: str = "l1",
    *,
    r: float | None = None,
    n_mc: int = 20_000,
    seed: SeedLike = 0,
    quantities_: Quantities | None = None,
    a: float | None = None,
) -> LimitLaw:
    """The limit law of ``sqrt(n)(theta_hat - theta0)`` for ``dgp`` (docs/theory.md s.5, s.7).

    Parameters
    ----------
    dgp : the data-generating process (true ``theta0``, family, design).
    lam0 : ``lam_n = lam0 / sqrt(n)`` for ``penalty="l1"``; ``lam0 n^(r/2 - 1)`` for ``"lr"``;
        ``lam0 n^(-1/4)`` for ``"scad"`` and ``"mcp"`` (the boundary rate of the weak oracle
        property, where ``sqrt(n) lam_n^2 = lam0^2`` stays fixed; s.7).
    method : ``"gfgsm"`` or ``"pl"``.
    penalty : ``"l1"``, ``"lr"`` (with ``0 < r < 1``), ``"scad"`` or ``"mcp"`` (with ``a``:
        SCAD's ``a``, default 3.7, or MCP's ``gamma``, default 3).
    n_mc : draws of ``W`` for the moments when a true slope is zero (otherwise closed form).
    quantities_ : precomputed :func:`quantities` (default: computed here with ``seed``).

    SCAD/MCP: on the support ``S`` (intercept and nonzero slopes) ``U_S ~ N(c_V I_SS^{-1} V_S,
    I_SS^{-1})`` with ``c_V = s0 k lam0^2`` (G-FGSM; ``k = (a + 1)/2`` SCAD, ``gamma / 2``
    MCP; ``c_V = 0`` for PL), and ``U_j = 0`` off ``S`` with probability 1.  This holds once
    ``a lam_n`` is below the smallest nonzero ``|beta0_j|`` (the penalty is then flat there).
    """
    real_in("lam0", lam0, 0, rule="a finite number >= 0")
    if method not in ("gfgsm", "pl"):
        raise ValueError(f"unknown method {method!r}; expected 'gfgsm' or 'pl'")
    if penalty in ("scad", "mcp"):
        if r is not None:
            raise ValueError("r applies to penalty='lr' only")
        return _oracle_law(dgp, float(lam0), method, penalty, a, n_mc, seed, quantities_)
    if a is not None:
        raise ValueError("a applies to penalty='scad' or 'mcp' only")
    if penalty == "l1":
        if r is not None:
            raise ValueError("r applies to penalty='lr' only")
        r_ = 1.0
    elif penalty == "lr":
        if r is None or not (0 < r < 1):
            raise ValueError(f"penalty='lr' needs 0 < r < 1 (docs/theory.md s.7), got r={r!r}")
        r_ = float(r)
    else:
        raise ValueError(f"unknown penalty {penalty!r} for limit_law; expected 'l1', 'lr', "
                         "'scad' or 'mcp'")
    n_mc = positive_int("n_mc", n_mc)
    q = quantities_ if quantities_ is not None else quantities(dgp, seed=seed)
    theta0 = np.asarray(dgp.theta0, dtype=float)
    beta0 = theta0[1:]
    zero = np.r_[False, beta0 == 0]
    sgn0 = np.r_[0.0, np.sign(beta0)]
    scale = q.D if method == "gfgsm" else 1.0 / q.phi
    pen_level = float(lam0 * scale)
    if penalty == "l1":
        lin = pen_level * sgn0
        if method == "gfgsm":
            lin = lin - lam0 * float(np.abs(beta0).sum()) * np.asarray(q.V, dtype=float)
    else:
        lin = np.zeros_like(theta0)
    Iinv = np.linalg.inv(np.asarray(q.I, dtype=float))
    nan = np.full(theta0.size, np.nan)
    base = dict(method=method, penalty=penalty, lam0=float(lam0), r=r_, theta0=theta0,
                zero=zero, quantities=q, pen_level=pen_level, lin=lin, n_mc=n_mc)
    if not zero.any() or pen_level == 0.0:
        law = LimitLaw(bias=-Iinv @ lin, cov=Iinv, se_bias=np.zeros_like(theta0),
                       se_cov=np.zeros_like(Iinv), prob_zero=np.where(zero, 0.0, nan),
                       se_prob_zero=np.where(zero, 0.0, nan), closed_form=True, **base)
        return law
    provisional = LimitLaw(bias=nan, cov=Iinv, se_bias=nan, se_cov=Iinv * np.nan,
                           prob_zero=nan, se_prob_zero=nan, closed_form=False, **base)
    U = provisional.sample(n_mc, seed=np.random.SeedSequence([_seed_int(seed), 1]))
    bias = U.mean(axis=0)
    cov = np.cov(U, rowvar=False)
    se_bias = U.std(axis=0, ddof=1) / math.sqrt(n_mc)
    # SE of a sample covariance entry: sd of the centred cross products over sqrt(n_mc).
    Uc = U - bias
    se_cov = (Uc[:, :, None] * Uc[:, None, :]).std(axis=0, ddof=1) / math.sqrt(n_mc)
    pz = (U == 0).mean(axis=0)
    prob_zero = np.where(zero, pz, np.nan)
    se_pz = np.where(zero, np.sqrt(pz * (1 - pz) / n_mc), np.nan)
    return LimitLaw(bias=bias, cov=cov, se_bias=se_bias, se_cov=se_cov, prob_zero=prob_zero,
                    se_prob_zero=se_pz, closed_form=False,
                    **{k: v for k, v in base.items()})


def _oracle_law(dgp: DGP, lam0: float, method: str, penalty: str, a: float | None,
                n_mc: int, seed: SeedLike, q: Quantities | None) -> LimitLaw:
    """SCAD/MCP at ``lam_n = lam0 n^(-1/4)``: the oracle normal on the support, shifted by the
    ``V`` term for G-FGSM (docs/theory.md s.7, "SCAD and MCP: a weak oracle property")."""
    k_a = 3.7 if penalty == "scad" and a is None else (3.0 if a is None else float(a))
    if not (k_a > (2.0 if penalty == "scad" else 1.0)):
        raise ValueError(f"{penalty}: a must exceed {2 if penalty == 'scad' else 1}, got {a!r}")
    k = (k_a + 1.0) / 2.0 if penalty == "scad" else k_a / 2.0
    n_mc = positive_int("n_mc", n_mc)
    q = q if q is not None else quantities(dgp, seed=seed)
    theta0 = np.asarray(dgp.theta0, dtype=float)
    zero = np.r_[False, theta0[1:] == 0]
    S = ~zero
    s0 = int(np.sum(theta0[1:] != 0))
    c_V = s0 * k * lam0**2 if method == "gfgsm" else 0.0
    I = np.asarray(q.I, dtype=float)  # noqa: E741
    ISS_inv = np.linalg.inv(I[np.ix_(S, S)])
    lin = np.zeros_like(theta0)
    lin[S] = -c_V * np.asarray(q.V, dtype=float)[S]
    bias = np.zeros_like(theta0)
    bias[S] = -ISS_inv @ lin[S]
    cov = np.zeros((theta0.size, theta0.size))
    cov[np.ix_(S, S)] = ISS_inv
    nan = np.full(theta0.size, np.nan)
    return LimitLaw(method=method, penalty=penalty, lam0=lam0, r=k_a, theta0=theta0, zero=zero,
                    quantities=q, pen_level=np.inf, lin=lin, bias=bias, cov=cov,
                    se_bias=np.zeros_like(theta0), se_cov=np.zeros_like(cov),
                    prob_zero=np.where(zero, 1.0, nan), se_prob_zero=np.where(zero, 0.0, nan),
                    closed_form=True, n_mc=n_mc)


def _seed_int(seed: SeedLike) -> int:
    return int(_root_seed(seed).generate_state(1)[0])


def _argmin_Z(law: LimitLaw, z: np.ndarray, backend: str | None) -> np.ndarray:
    """``argmin_u Z(u)`` for ``W = L z`` (``I = L L'``), one row of ``z`` per draw.

    ``Z(u) = u'Iu/2 - (W - lin)'u + pen(u)``.  Writing ``u'Iu/2 - b'u = ||L'u - L^{-1}b||^2 / 2
    + const``, the l1 case is a weighted lasso with design ``L'`` and response
    ``z - L^{-1} lin``, solved for all draws at once by :func:`gfgsm.batch.fit_batch` (exact
    KKT point).  The lr case (non-convex) is solved by exact coordinate minimisation on the
    zero coordinates after profiling out the others (:func:`_argmin_lr`).
    """
    from ._backend import to_numpy
    from .batch import fit_batch

    I = np.asarray(law.quantities.I, dtype=float)  # noqa: E741
    L = np.linalg.cholesky(I)
    q = I.shape[0]
    resp = z - np.linalg.solve(L, law.lin)[None, :]
    if not law.zero.any() or law.pen_level == 0.0:
        return np.linalg.solve(L.T, resp.T).T
    if law.penalty in ("scad", "mcp"):  # the support's normal, exact zeros off it
        S = ~law.zero
        u = np.zeros_like(z)
        W = (L @ z.T).T
        u[:, S] = np.linalg.solve(I[np.ix_(S, S)], (W[:, S] - law.lin[S]).T).T
        return u
    if law.penalty == "l1":
        fit = fit_batch(L.T, resp, family="gaussian", method="pl", lam=law.pen_level / q,
                        penalty="weighted_l1", weights=law.zero.astype(float),
                        fit_intercept=False, backend=backend, warn=True)
        return np.asarray(to_numpy(fit.coef), dtype=float)
    b = (L @ resp.T).T  # W - lin
    return _argmin_lr(I, b, law.zero, law.pen_level, law.r)


def _argmin_lr(I: np.ndarray, b: np.ndarray, zero: np.ndarray, c: float, r: float,  # noqa: E741
               sweeps: int = 200) -> np.ndarray:
    """``argmin u'Iu/2 - b'u + c sum_{zero} |u_j|^r`` per row of ``b`` (0 < r < 1).

    The unpenalized coordinates enter quadratically and are profiled out exactly, leaving
    ``v'Sv/2 - bt'v + c sum |v_j|^r`` over the zero coordinates (``S`` the Schur complement).
    Each coordinate step is the exact global minimiser of a one-dimensional problem
    (:meth:`gfgsm.penalties.Lr.prox`), so with one zero coordinate the result is the global
    minimiser; with several it is a coordinate-wise minimiser, the better of the runs started
    at the unpenalized solution and at 0.
    """
    from ._backend import to_numpy
    from .penalties import Lr

    Z, F = np.flatnonzero(zero), np.flatnonzero(~zero)
    IFF, IFZ, IZZ = I[np.ix_(F, F)], I[np.ix_(F, Z)], I[np.ix_(Z, Z)]
    A = np.linalg.solve(IFF, IFZ)  # u_F = IFF^{-1}(b_F - IFZ v)
    S = IZZ - IFZ.T @ A
    bt = b[:, Z] - b[:, F] @ np.linalg.solve(IFF, IFZ)
    pen = Lr(r)

    def objective(v: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("mi,ij,mj->m", v, S, v) - (bt * v).sum(1) + c * (
            np.abs(v) ** r).sum(1)

    def cd(v: np.ndarray) -> np.ndarray:
        for _ in range(sweeps):
            old = v.copy()
            for k in range(Z.size):  # coordinates, not replications: vectorised over draws
                zk = (bt[:, k] - v @ S[:, k] + S[k, k] * v[:, k]) / S[k, k]
                v[:, k] = to_numpy(pen.prox(zk[:, None], c, 1.0 / S[k, k]))[:, 0]
            if np.max(np.abs(v - old)) <= 1e-13:
                break
        return v

    v1 = cd(np.linalg.solve(S, bt.T).T.copy())
    v2 = cd(np.zeros_like(bt))
    v = np.where((objective(v1) <= objective(v2))[:, None], v1, v2)
    u = np.empty_like(b)
    u[:, Z] = v
    u[:, F] = np.linalg.solve(IFF, (b[:, F] - v @ IFZ.T).T).T
    return u
