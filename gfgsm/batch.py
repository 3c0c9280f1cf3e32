"""``fit_batch``: R independent G-FGSM or PL problems in one call.

This is the boundary of the package: inputs are validated here (with errors that name the
offending argument and value, and that leave the caller's arrays untouched), then a solver of
:mod:`gfgsm.solvers` runs on the validated arrays.  The scikit-learn estimators of
:mod:`gfgsm.estimators` are thin wrappers around it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._backend import asarray, get_namespace, to_numpy
from .families import Family, get_family
from .objectives import Objective, make_objective
from .penalties import L1, AdaptiveL1, Penalty, adaptive_weights, get_penalty
from .schemes import get_scheme
from .solvers.crossover import crossover
from .solvers.level_fixed_point import level_fixed_point
from .solvers.lla import lla
from .solvers.orthant_newton import L1Shift, Shift, orthant_newton
from .solvers.prox_gradient import prox_gradient
from .solvers.sign_fixed_point import sign_fixed_point

__all__ = ["BatchFit", "fit_batch"]

# First smoothing level of a warm-started solve (kinked objectives): the start is already
# near the solution, so the coarse levels of a cold start would only undo its accuracy.
_WARM_SMOOTH = 1e-4


@dataclass
class BatchFit:
    """The result of :func:`fit_batch` for ``R`` problems (arrays in the input's namespace).

    Attributes
    ----------
    coef : (R, p) slopes ``beta``.
    intercept : (R,) intercepts ``a`` (zeros when ``fit_intercept=False``).
    converged : (R,) bool; a replication is converged when its KKT residual is below ``tol``
        (for non-convex penalties: the residual of the non-convex problem, a local stationarity).
    n_iter : (R,) Newton iterations (summed over LLA steps for non-convex penalties).
    objective : (R,) the objective (``Q_n`` or ``R_n``, mean scale) at the estimate.
    kkt : (R,) sup-norm of the minimum-norm subgradient (the stationarity residual).
    status : (R,) ``"converged"``; ``"max_iter"``; ``"stalled"`` (the line search found no
        decrease); ``"diverging"`` (binomial separation: no finite minimiser); ``"sign_cycle"``
        (poisson FGSM: the frozen-sign iteration cycles, see
        :mod:`gfgsm.solvers.sign_fixed_point`).
    """

    coef: Any
    intercept: Any
    converged: Any
    n_iter: Any
    objective: Any
    kkt: Any
    status: np.ndarray
    lam: Any
    method: str
    family: str
    penalty: str
    info: dict = field(default_factory=dict)

    @property
    def n_problems(self) -> int:
        return int(self.coef.shape[0])

    def take(self, idx: Any) -> BatchFit:
        """The fit of the problems ``idx`` (integer positions), every per-problem array subset
        the same way; ``info`` is shared."""
        xp = get_namespace(self.coef)
        k = np.asarray(to_numpy(idx) if hasattr(idx, "shape") else idx, dtype=np.int64)
        i = xp.asarray(k)
        lam = asarray(self.lam, xp)
        lam = xp.take(lam, i, axis=0) if lam.ndim else lam

        def t(a: Any) -> Any:
            return xp.take(xp.asarray(a), i, axis=0)  # keeps bool and int dtypes

        return replace(self, coef=t(self.coef), intercept=t(self.intercept),
                       converged=t(self.converged), n_iter=t(self.n_iter),
                       objective=t(self.objective), kkt=t(self.kkt),
                       status=np.asarray(self.status)[k], lam=lam)

    def debiased(self, X: Any, y: Any, cov_type: str = "nonrobust", *,
                 fit_intercept: bool = True, family: Any = None) -> Any:
        """One-step debiased estimates and Wald inference of every problem, batched.

        ``X``, ``y`` are the data of the fit (``BatchFit`` does not keep them); the result is a
        :class:`gfgsm.inference.Debiased` with ``params`` (R, q), ``cov`` (R, q, q), ``bse``,
        ``zvalues``, ``pvalues`` and ``conf_int(alpha)`` (R, q, 2), the intercept first.  See
        :func:`gfgsm.inference.debias` (docs/theory.md s.5, "Debiased inference").
        """
        from .inference import debias

        return debias(self, X, y, cov_type, fit_intercept=fit_intercept, family=family)


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _validate_arrays(X: Any, y: Any, xp: Any, fam: Family) -> tuple[Any, Any]:
    """Float64 arrays ``X`` (n, p) or (R, n, p) and ``y`` (R, n); raise on bad input."""
    Xa = asarray(X, xp)
    ya = asarray(y, xp)
    if Xa.ndim not in (2, 3):
        raise ValueError(f"X must have shape (n, p) or (R, n, p); got shape {tuple(Xa.shape)}")
    if ya.ndim not in (1, 2):
        raise ValueError(f"y must have shape (n,) or (R, n); got shape {tuple(ya.shape)}")
    n, p = Xa.shape[-2], Xa.shape[-1]
    if n == 0:
        raise ValueError("X has no rows (n = 0): there is nothing to fit")
    if p == 0:
        raise ValueError("X has no columns (p = 0)")
    if ya.shape[-1] != n:
        raise ValueError(f"X has {n} rows but y has {ya.shape[-1]} entries on its last axis")
    if ya.ndim == 1:
        ya = ya[None, :]
    if Xa.ndim == 3 and Xa.shape[0] != ya.shape[0]:
        if ya.shape[0] == 1:
            ya = xp.broadcast_to(ya, (Xa.shape[0], n))
        else:
            raise ValueError(
                f"X holds {Xa.shape[0]} problems but y holds {ya.shape[0]}"
            )
    if not bool(xp.all(xp.isfinite(Xa))):
        raise ValueError("X contains NaN or infinite values")
    if not bool(xp.all(xp.isfinite(ya))):
        raise ValueError("y contains NaN or infinite values")
    fam.check_y(ya)
    return Xa, ya


def _validate_lam(lam: Any, R: int, xp: Any) -> Any:
    lam_np = np.asarray(to_numpy(lam), dtype=float)
    if lam_np.ndim > 1 or (lam_np.ndim == 1 and lam_np.shape[0] != R):
        raise ValueError(f"lam must be a scalar or have shape ({R},); got shape {lam_np.shape}")
    if not np.all(np.isfinite(lam_np)):
        raise ValueError(f"lam must be finite, got {lam!r}")
    if np.any(lam_np < 0):
        raise ValueError(f"lam must be >= 0, got {lam_np.min()!r}")
    return xp.asarray(np.broadcast_to(lam_np, (R,)).copy(), dtype=xp.float64)


def _validate_observation_array(arr: Any, name: str, n: int, xp: Any) -> Any:
    """``sample_weight``/``tilt`` as a float64 ``(n,)`` or ``(R', n)`` array of ``xp``; raise a
    ``ValueError`` naming ``name`` on a bad shape or value (the input is only read)."""
    try:
        a = asarray(arr, xp)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape (n,) or (R, n): {exc}") from exc
    if a.ndim not in (1, 2) or a.shape[-1] != n:
        raise ValueError(
            f"{name} must have shape ({n},) or (R, {n}) (n = the rows of X); "
            f"got shape {tuple(a.shape)}"
        )
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} contains NaN or infinite values")
    if name == "sample_weight":
        if bool(xp.any(a < 0)):
            raise ValueError(f"sample_weight must be >= 0; its smallest entry is "
                             f"{float(xp.min(a))!r}")
        rows = a if a.ndim == 2 else a[None, :]
        zero = np.flatnonzero(to_numpy(xp.sum(rows, axis=-1)) <= 0)
        if zero.size:
            raise ValueError(f"sample_weight sums to 0 in row(s) {zero[:10].tolist()}: such a "
                             "problem has no observations to fit")
    return a


def _validate_observation_weights(sample_weight: Any, tilt: Any, Xa: Any, ya: Any,
                                  xp: Any) -> tuple[Any, Any, Any]:
    """Validated ``(ya, sample_weight, tilt)``, the last two ``(R, n)`` or ``None``.

    A two-dimensional argument sets the number of problems: it must match ``y``'s, except that a
    single response vector with a shared design is broadcast to its rows (one data set fitted
    under ``R`` weightings, as a bootstrap does).
    """
    n = int(ya.shape[-1])
    arrays = {
        name: None if arr is None else _validate_observation_array(arr, name, n, xp)
        for name, arr in (("sample_weight", sample_weight), ("tilt", tilt))
    }
    R = int(ya.shape[0])
    can_broadcast_y = R == 1 and Xa.ndim == 2
    for name, a in arrays.items():
        if a is None or a.ndim == 1 or a.shape[0] == R:
            continue
        if can_broadcast_y and R == 1:
            R = int(a.shape[0])
        else:
            raise ValueError(f"{name} holds {a.shape[0]} problems (rows) but y holds {R}")
    if R != ya.shape[0]:
        ya = xp.broadcast_to(ya, (R, n))
    out = [None if a is None else xp.broadcast_to(a, (R, n)) for a in arrays.values()]
    return ya, out[0], out[1]


def _initial_theta(xp: Any, fam: Family, y: Any, p: int, fit_intercept: bool,
                   sample_weight: Any = None) -> Any:
    """Zero slopes and the intercept of the (weighted) mean response."""
    R = y.shape[0]
    theta = xp.zeros((R, p + int(fit_intercept)), dtype=xp.float64)
    if not fit_intercept:
        return theta
    if sample_weight is None:
        ybar = xp.mean(y, axis=-1)
    else:
        ybar = xp.sum(sample_weight * y, axis=-1) / xp.sum(sample_weight, axis=-1)
    a0 = fam.initial_eta(ybar)
    return xp.concat([a0[:, None], theta[:, 1:]], axis=1)


def fit_batch(
    X: Any,
    y: Any,
    *,
    family: str | Family,
    method: str,
    lam: Any,
    penalty: str | Penalty = "l1",
    fit_intercept: bool = True,
    backend: str | None = None,
    scheme: Any = None,
    adversary: str = "auto",
    clean_weight: float = 0.0,
    weights: Any = None,
    tol: float = 1e-9,
    max_iter: int = 200,
    init: Any = None,
    warn: bool = True,
    sample_weight: Any = None,
    tilt: Any = None,
    **penalty_params: Any,
) -> BatchFit:
    """Fit ``R`` independent problems at once.

    Minimises, for each problem ``r``, the G-FGSM objective ``Q_n`` (``method="gfgsm"``) or the
    penalized likelihood ``R_n`` (``method="pl"``) of docs/theory.md s.3:

        Q_n(theta) = (1/n) sum_i l(y_i, eta_i - s_i P_lam(beta)),
        R_n(theta) = (1/n) sum_i l(y_i, eta_i) + P_lam(beta).

    Parameters
    ----------
    X : (n, p) shared design or (R, n, p) one design per problem.
    y : (R, n) responses (or (n,) for one problem).
    family : ``"gaussian"``, ``"binomial"``, ``"poisson"`` or a :class:`Family`.
    method : ``"gfgsm"`` or ``"pl"``.
    lam : scalar or (R,) penalty level (the FGSM budget ``eps`` for l1 G-FGSM).
    penalty : ``"l1"``, ``"weighted_l1"``/``"adaptive_l1"`` (``weights=`` (p,) or (R, p); for
        ``"adaptive_l1"`` without weights a pilot fit at ``pilot_lam`` (default 0) gives
        ``w = 1 / |beta_pilot|^gamma``), ``"lr"`` (``r=``), ``"scad"`` (``a=``), ``"mcp"``
        (``gamma=``), or a :class:`~gfgsm.penalties.Penalty`.
    scheme : a gradient scheme (``"sign"``, ``"lq"``, ``"power"``, ``"quantized"`` or a
        :class:`~gfgsm.schemes.Scheme`); G-FGSM then uses the scheme's induced penalty, and the
        extra keywords are the scheme's parameters (``q=``, ``r=``, ``b=``).
    adversary : ``"auto"`` (default: the exact worst case over the l_inf ball, which is the
        sign perturbation for gaussian and binomial), ``"fgsm"`` (the sign perturbation; for
        poisson a discontinuous objective that can have no minimiser, flagged
        ``"sign_cycle"``) or ``"exact"``.
    clean_weight : Goodfellow's ``alpha`` in ``alpha l(x) + (1 - alpha) l(x_adv)``.
    tol : KKT (stationarity) tolerance; ``max_iter`` : Newton iterations per problem.
    init : optional (R, p + fit_intercept) starting values (intercept first).
    sample_weight : optional observation weights ``w >= 0``, shape (n,) (shared by every
        problem) or (R, n), each row with a positive sum.  With ``psi`` the per-observation term
        of the objective (docs/theory.md s.3) and the optional ``tilt`` ``t``, every problem
        minimises

            F(theta) = sum_i [ w_i psi(y_i, eta_i, P_lam(beta)) + t_i eta_i ] / sum_i w_i

        (``w = 1`` when omitted, so ``sum_i w_i = n``; ``t = 0`` when omitted): a weighted
        *mean*, with scikit-learn / statsmodels ``freq_weights`` semantics.  Integer weights
        give exactly the fit on the data with each row repeated ``w_i`` times (weight 0 drops the
        row), since ``P_lam`` sits inside ``psi``; rescaling all weights changes nothing.
        ``objective`` and ``kkt`` are those of this ``F``.
    tilt : optional ``t``, shape (n,) or (R, n): the linear term ``t_i eta_i`` above, which a
        perturbation bootstrap uses to re-centre its objective (docs/theory.md s.5).  A large
        tilt can make ``F`` unbounded below (its fits then do not converge; binomial fits are
        certified ``"diverging"``).  A two-dimensional ``sample_weight`` or ``tilt`` with a single
        ``y`` and a shared ``X`` fits that data set under each of its ``R`` rows.

    Returns
    -------
    BatchFit
    """
    prob = _prepare(X, y, family=family, method=method, lam=lam, penalty=penalty,
                    fit_intercept=fit_intercept, backend=backend, scheme=scheme,
                    adversary=adversary, clean_weight=clean_weight, weights=weights, tol=tol,
                    max_iter=max_iter, init=init, warn=warn, sample_weight=sample_weight,
                    tilt=tilt, penalty_params=penalty_params)
    strategy = next(solve for applies, solve in _STRATEGIES if applies(prob.pen))
    res = _exact_at_kinks(prob, strategy(prob))
    fit = _assemble(prob, res)
    # what a refit of the same estimator needs (the perturbation bootstrap of gfgsm.intervals)
    fit.info["options"] = dict(penalty=penalty, scheme=scheme, adversary=adversary,
                               clean_weight=clean_weight, weights=weights, tol=tol,
                               max_iter=max_iter, **penalty_params)
    fit.info["observation_weights"] = sample_weight is not None or tilt is not None
    if warn:
        _warn_nonconverged(fit)
    return fit


# --------------------------------------------------------------------------------------------
# the problem
# --------------------------------------------------------------------------------------------


@dataclass
class _Problem:
    """A validated batch of problems and the solver calls every strategy shares."""

    xp: Any
    fam: Family
    obj: Objective
    pen: Any
    method: str
    Xt: Any  # (n, q) or (R, n, q), the intercept column first
    ya: Any  # (R, n)
    lam: Any  # (R,)
    theta0: Any  # (R, q)
    o: int  # unpenalized leading columns (the intercept)
    tol: float
    max_iter: int
    info: dict = field(default_factory=dict)
    last_shift: list = field(default_factory=list)

    @property
    def R(self) -> int:
        return int(self.ya.shape[0])

    @property
    def p(self) -> int:
        return int(self.Xt.shape[-1]) - self.o

    @property
    def moving_signs(self) -> bool:
        """The FGSM sign depends on theta (poisson ``adversary="fgsm"``)."""
        return self.obj.kind == "sign" and not self.fam.sign_is_constant

    def eta_of(self, theta: Any) -> Any:
        if self.Xt.ndim == 2:
            return theta @ self.Xt.T
        return self.xp.matmul(self.Xt, theta[..., None])[..., 0]

    def run(self, shift: Shift, theta_start: Any, smooth0: float = 1e-1) -> Any:
        """Orthant Newton on ``shift`` from ``theta_start``, inside the frozen-sign iteration
        when the signs move; the last shift is kept for the crossover."""
        self.last_shift[:] = [shift]

        def solve(obj_: Objective, th: Any) -> Any:
            return orthant_newton(self.Xt, self.ya, obj_, shift, th, smooth0=smooth0,
                                  n_unpenalized=self.o, tol=self.tol, max_iter=self.max_iter)

        if self.moving_signs:
            res, stable = sign_fixed_point(solve, self.obj, self.eta_of, self.ya, theta_start)
            res.converged = res.converged & stable
            self.info["signs_stable"] = stable
            return res
        return solve(self.obj, theta_start)


def _prepare(X: Any, y: Any, *, family: Any, method: str, lam: Any, penalty: Any,
             fit_intercept: bool, backend: str | None, scheme: Any, adversary: str,
             clean_weight: float, weights: Any, tol: float, max_iter: int, init: Any,
             warn: bool, sample_weight: Any, tilt: Any, penalty_params: dict) -> _Problem:
    """Validate every argument (nothing is modified), resolve the penalty (with the pilot fit
    of adaptive l1) and build the design with its intercept column and the starting point."""
    xp = get_namespace(X, y, backend=backend)
    fam = get_family(family)
    obj = make_objective(fam, method, adversary, clean_weight)
    if scheme is not None:
        if method != "gfgsm":
            raise ValueError("scheme= applies to method='gfgsm' only")
        if not (isinstance(penalty, str) and penalty == "l1"):
            raise ValueError("give either scheme= or penalty=, not both")
        # Keyword parameters belong to the scheme here (q for lq, r for power, b for quantized).
        pen: Any = get_scheme(scheme, **penalty_params).induced_penalty
    else:
        pen = _resolve_penalty(penalty, weights, penalty_params)
    Xa, ya = _validate_arrays(X, y, xp, fam)
    if sample_weight is not None or tilt is not None:
        ya, sample_weight, tilt = _validate_observation_weights(sample_weight, tilt, Xa, ya, xp)
        obj = replace(obj, sample_weight=sample_weight, tilt=tilt)
    R, p = ya.shape[0], Xa.shape[-1]
    lam_a = _validate_lam(lam, R, xp)
    if not (isinstance(tol, int | float) and tol > 0):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    if not (isinstance(max_iter, int) and max_iter >= 1):
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(pen, _AdaptivePending):
        pilot = fit_batch(
            Xa, ya, family=fam, method=method, lam=pen.pilot_lam, penalty="l1",
            fit_intercept=fit_intercept, adversary=adversary, clean_weight=clean_weight,
            tol=tol, max_iter=max_iter, warn=warn, sample_weight=sample_weight, tilt=tilt,
        )
        pen = AdaptiveL1(adaptive_weights(pilot.coef, gamma=pen.gamma))
    ones = xp.ones((*Xa.shape[:-1], 1), dtype=xp.float64)
    Xt = xp.concat([ones, Xa], axis=-1) if fit_intercept else Xa
    o = int(fit_intercept)
    if init is None:
        theta0 = _initial_theta(xp, fam, ya, p, fit_intercept, sample_weight)
    else:
        theta0 = asarray(init, xp)
        if theta0.ndim == 1:
            theta0 = xp.broadcast_to(theta0[None, :], (R, p + o))
        if tuple(theta0.shape) != (R, p + o):
            raise ValueError(f"init must have shape ({R}, {p + o}); got {tuple(theta0.shape)}")
    return _Problem(xp=xp, fam=fam, obj=obj, pen=pen, method=method, Xt=Xt, ya=ya, lam=lam_a,
                    theta0=theta0, o=o, tol=tol, max_iter=max_iter)


# --------------------------------------------------------------------------------------------
# strategies: which solvers a penalty needs
# --------------------------------------------------------------------------------------------


def _require(pen: Any, attrs: tuple[str, ...], why: str) -> None:
    """A strategy states what it needs from a penalty; a missing attribute is a clear error."""
    missing = [a for a in attrs if not hasattr(pen, a)]
    if missing:
        raise TypeError(f"{type(pen).__name__} is {why} but lacks {missing}")


def _lla_then_newton(prob: _Problem) -> Any:
    """Separable non-convex penalties: the l1 fit, LLA (Zou & Li 2008) into the basin of a
    local minimiser, then Newton on the non-convex objective itself, whose pseudo-gradient is
    the reported residual; for penalties with an infinite slope at 0 (lr, ``r < 1``), a zero
    check (:func:`_zero_check`) then moves to zeros that lower the objective."""
    _require(prob.pen, ("derivative", "second_derivative"), "separable and non-convex")
    xp, lam, p = prob.xp, prob.lam, prob.p
    start = prob.run(L1().as_shift(lam, p), prob.theta0)
    if prob.moving_signs:
        mid = start  # LLA with moving signs would nest two fixed points; Newton suffices
        steps = xp.zeros((prob.R,), dtype=xp.int64)
    else:
        mid, steps, _ = lla(prob.Xt, prob.ya, prob.obj, prob.pen, lam, start.theta,
                            smooth0=_WARM_SMOOTH, n_unpenalized=prob.o, tol=prob.tol,
                            max_iter=prob.max_iter)
        mid.n_iter = mid.n_iter + start.n_iter
    res = prob.run(prob.pen.as_shift(lam, p), mid.theta, smooth0=_WARM_SMOOTH)
    res.n_iter = res.n_iter + mid.n_iter
    prob.info["lla_steps"] = steps
    return _zero_check(prob, res)


def _zero_check(prob: _Problem, res: Any) -> Any:
    """Move to a lower objective by setting a nonzero slope to 0, where the penalty's slope at 0
    is infinite (lr with ``r < 1``).

    With ``p'_lam(0+) = inf`` every zero is a local minimiser in its coordinate, so Newton never
    leaves a zero, and never reaches one either: a slope that LLA and Newton leave nonzero stays
    nonzero even where the objective is lower with it at 0.  The fit is then a local minimiser,
    while the limit law of the lr estimator (Knight & Fu 2000; docs/theory.md s.7, the lr
    penalty) and its atom at 0 are those of the global minimiser; without this check the fitted
    zero rate falls short of that atom.

    Each round, for every replication and every nonzero slope ``j`` whose slope at 0 is
    infinite, Newton re-minimises the objective over the other coordinates from the current
    point with ``beta_j = 0`` (the zero is sticky, so it stays).  Setting ``beta_j = 0`` with
    the others held fixed is not enough: the zero often pays only after the correlated slopes
    and the intercept re-adjust.  The objective compared is the one reported in
    ``BatchFit.objective``.  A replication moves to its best candidate where that is lower by
    more than ``1e-12 (1 + |F|)`` (a margin against moving on rounding-level ties), and only to a
    converged candidate unless its current point is not converged either: the check never gives
    up a certified stationary point for an uncertified one.  A kept point is again a local
    minimiser (``converged`` keeps its meaning, a small KKT residual) with a lower objective;
    its ``n_iter`` adds the Newton iterations of the kept candidate.  Each round zeroes at least
    one more slope (the Newton re-run may stop another at 0), so there are at most ``p`` rounds;
    ``prob.info["zero_check_moves"]`` counts, per replication, the moves (the slopes the check
    itself zeroed).

    The re-minimisation is itself local (Newton from the zeroed point), so this is a search,
    not a certificate: it finds the global minimiser when that lies in the basin reached by
    zeroing one slope at a time from the fit (as when the fit and the global minimiser differ in
    one slope, the usual case with one true zero); a minimiser reachable only by zeroing two
    slopes at once, each single zero being worse, is not searched for.
    """
    xp, pen, o, p, R = prob.xp, prob.pen, prob.o, prob.p, prob.R
    sticky = xp.isinf(pen.zero_slope(prob.lam, xp.zeros((R, p), dtype=xp.float64)))
    if not bool(xp.any(sticky)):
        return res
    moves = xp.zeros((R,), dtype=xp.int64)
    live = xp.ones((R,), dtype=xp.bool)  # replications whose point may still improve
    cols = xp.arange(p)
    for _ in range(p):
        theta = res.theta
        f = _reported_objective(prob, theta)
        # One solve per coordinate, each over the replications where it is a candidate, keeps
        # the memory that of the fit itself.
        cands: list[Any] = []
        values = []
        for j in range(p):
            tried = live & sticky[:, j] & (theta[:, o + j] != 0)
            if not bool(xp.any(tried)):
                cands.append(None)
                values.append(xp.full((R,), xp.inf, dtype=xp.float64))
                continue
            idx = xp.nonzero(tried)[0]
            start = xp.where(cols == j, 0.0, theta[:, o:])
            start = xp.take(xp.concat([theta[:, :o], start], axis=1), idx, axis=0)
            sub = _take_problem(prob, idx)
            new = sub.run(pen.as_shift(sub.lam, p), start, smooth0=_WARM_SMOOTH)
            f_new = _reported_objective(sub, new.theta)
            usable = new.converged | ~xp.take(res.converged, idx, axis=0)
            f_new = xp.where(usable & ~xp.isnan(f_new), f_new, xp.inf)
            values.append(_scatter(xp, tried, f_new, xp.inf))
            cands.append((tried, new, sub.info.get("signs_stable")))
        F = xp.stack(values, axis=1)
        best = xp.argmin(F, axis=1)
        improve = xp.min(F, axis=1) < f - 1e-12 * (1.0 + xp.abs(f))
        if not bool(xp.any(improve)):
            break
        for j, cand in enumerate(cands):
            if cand is None:
                continue
            tried, new, stable = cand
            accepted = improve & (best == j)
            res = _merge_result(xp, res, new, tried, accepted)
            if stable is not None:
                prob.info["signs_stable"] = xp.where(
                    accepted, _scatter(xp, tried, stable, True), prob.info["signs_stable"])
        moves = moves + xp.astype(improve, xp.int64)
        live = improve
    prob.info["zero_check_moves"] = moves
    return res


def _reported_objective(prob: _Problem, theta: Any) -> Any:
    """(R,) the objective :class:`BatchFit` reports at ``theta``: the problem's own ``psi``
    with the penalty's shift at its slopes."""
    return prob.obj.value(prob.ya, prob.eta_of(theta), prob.pen.value(theta[:, prob.o:],
                                                                       prob.lam))


def _take_problem(prob: _Problem, idx: Any) -> _Problem:
    """The problems ``idx`` (integer positions) of ``prob``, with their own (empty) info."""
    xp = prob.xp
    Xt = xp.take(prob.Xt, idx, axis=0) if prob.Xt.ndim == 3 else prob.Xt
    return replace(prob, obj=prob.obj.take(idx), Xt=Xt, ya=xp.take(prob.ya, idx, axis=0),
                   lam=xp.take(prob.lam, idx, axis=0),
                   theta0=xp.take(prob.theta0, idx, axis=0), info={}, last_shift=[])


def _scatter(xp: Any, mask: Any, values: Any, fill: Any) -> Any:
    """An ``(R, ...)`` array holding ``values`` (one row per ``True`` of ``mask``, in order) at
    the rows of ``mask`` and ``fill`` elsewhere; the Array API has no indexed assignment."""
    pos = xp.cumulative_sum(xp.astype(mask, xp.int64)) - 1
    rows = xp.take(values, xp.clip(pos, 0, None), axis=0)
    m = mask if values.ndim == 1 else xp.reshape(mask, (-1,) + (1,) * (values.ndim - 1))
    return xp.where(m, rows, fill)


def _merge_result(xp: Any, res: Any, new: Any, taken: Any, accepted: Any) -> Any:
    """``res`` with the rows ``accepted`` replaced by those of ``new`` (the solve of the rows
    ``taken``), whose Newton iterations add to the earlier ones."""
    out = replace(res)
    for name in ("theta", "converged", "kkt", "objective", "smooth", "stalled", "n_iter"):
        old = getattr(res, name)
        val = _scatter(xp, taken, getattr(new, name), old)
        if name == "n_iter":
            val = old + val
        m = accepted if old.ndim == 1 else accepted[:, None]
        setattr(out, name, xp.where(m, val, old))
    return out


def _level_consistent(prob: _Problem) -> Any:
    """A weighted l1 norm whose weights jump (the quantized scheme): a level-consistent point,
    each inner fit a certified weighted-l1 fit (gfgsm.solvers.level_fixed_point)."""
    pen, xp, lam = prob.pen, prob.xp, prob.lam
    _require(pen, ("levels", "scaled", "b"), "a jumping penalty")
    zero_c0 = xp.zeros((prob.R,), dtype=xp.float64)

    def weighted(w: Any, th: Any) -> Any:
        return prob.run(L1Shift(lam[:, None] * w, zero_c0), th)

    start = prob.run(L1().as_shift(lam, prob.p), prob.theta0)
    res, w_levels, consistent = level_fixed_point(weighted, pen.levels, pen.scaled, pen.b,
                                                  start.theta, prob.o)
    res.converged = res.converged & consistent
    prob.info["level_weights"] = w_levels
    prob.info["levels_consistent"] = consistent
    return res


def _direct(prob: _Problem) -> Any:
    """Orthant Newton on the penalty's own shift; where ``P`` is kinked off the axes (ties of
    a max), proximal gradient with the exact prox finishes and certifies the uncertified rows
    (gfgsm.solvers.prox_gradient)."""
    pen, xp = prob.pen, prob.xp
    res = prob.run(pen.as_shift(prob.lam, prob.p), prob.theta0)
    if pen.kinked_off_axes and not prob.obj.has_kinks and not prob.moving_signs:
        _require(pen, ("prox",), "kinked off the coordinate axes")
        todo = ~res.converged
        if bool(xp.any(todo)):
            th, kkt_p, it_p, conv_p = prox_gradient(
                prob.Xt, prob.ya, prob.obj, pen, prob.lam, res.theta, n_unpenalized=prob.o,
                tol=prob.tol, active=todo, kkt0=res.kkt)
            res.theta, res.kkt = th, kkt_p
            res.converged = res.converged | conv_p
            res.n_iter = res.n_iter + it_p
            prob.info["prox_gradient_steps"] = it_p
    return res


#: (applies to the penalty, strategy), first match wins.
_STRATEGIES: tuple[tuple[Callable[[Any], bool], Callable[[_Problem], Any]], ...] = (
    (lambda pen: pen.is_separable and not pen.is_convex, _lla_then_newton),
    (lambda pen: pen.jumps, _level_consistent),
    (lambda pen: True, _direct),
)


def _exact_at_kinks(prob: _Problem, res: Any) -> Any:
    """Where ``psi`` has kinks (the exact worst case), smoothing leaves O(smooth) bias and a
    gradient noise floor; the crossover moves to the exact KKT point where it can certify one
    (gfgsm.solvers.crossover) and is kept only where that point is at least as stationary."""
    if not prob.obj.has_kinks:
        return res
    xp = prob.xp
    th_x, kkt_x, exact = crossover(prob.Xt, prob.ya, prob.obj, prob.last_shift[0], res.theta,
                                   res.smooth, n_unpenalized=prob.o)
    exact = exact & (kkt_x <= xp.maximum(res.kkt, prob.tol))
    res.theta = xp.where(exact[:, None], th_x, res.theta)
    res.converged = xp.where(exact, kkt_x <= prob.tol, res.converged)
    res.kkt = xp.where(exact, kkt_x, res.kkt)
    prob.info["smooth"] = res.smooth
    prob.info["exact_kkt"] = exact
    return res


def _assemble(prob: _Problem, res: Any) -> BatchFit:
    """The :class:`BatchFit`: estimates, objective, the separation certificate and statuses."""
    xp, pen, info = prob.xp, prob.pen, prob.info
    theta = res.theta
    coef = theta[:, prob.o:]
    intercept = theta[:, 0] if prob.o else xp.zeros((prob.R,), dtype=xp.float64)
    eta = prob.eta_of(theta)
    objective_value = _reported_objective(prob, theta)
    diverging = _diverging(prob.fam, prob.obj, prob.ya, eta, pen.value(coef, prob.lam),
                           prob.lam, pen)
    converged = res.converged & ~diverging
    status = _status(res, converged, diverging, prob.max_iter)
    # A fixed-point iteration that did not settle names its own status.
    for key, name in (("signs_stable", "sign_cycle"), ("levels_consistent", "level_cycle")):
        if key in info:
            status = np.where(~to_numpy(info[key]).astype(bool), name, status).astype(object)
    return BatchFit(
        coef=coef, intercept=intercept, converged=converged, n_iter=res.n_iter,
        objective=objective_value, kkt=res.kkt, status=status, lam=prob.lam,
        method=prob.method, family=prob.fam.name,
        penalty=getattr(pen, "name", type(pen).__name__), info=info,
    )


class _AdaptivePending:
    """``penalty="adaptive_l1"`` without weights: a pilot fit is needed first."""

    name = "adaptive_l1"

    def __init__(self, gamma: float, pilot_lam: float) -> None:
        if not (gamma > 0):
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
        if not (pilot_lam >= 0):
            raise ValueError(f"pilot_lam must be >= 0, got {pilot_lam!r}")
        self.gamma, self.pilot_lam = float(gamma), float(pilot_lam)


def _resolve_penalty(penalty: Any, weights: Any, params: dict) -> Any:
    if isinstance(penalty, str) and penalty == "adaptive_l1" and weights is None:
        return _AdaptivePending(params.get("gamma", 1.0), params.get("pilot_lam", 0.0))
    if isinstance(penalty, str) and penalty in ("weighted_l1", "adaptive_l1"):
        if weights is None:
            raise ValueError(f"penalty={penalty!r} needs weights=")
        extra = {k: v for k, v in params.items() if k not in ("gamma", "pilot_lam")}
        return get_penalty(penalty, weights=weights, **extra)
    if weights is not None:
        raise ValueError(f"weights= applies to weighted_l1/adaptive_l1, not to {penalty!r}")
    return get_penalty(penalty, **params)


def _status(res: Any, converged: Any, diverging: Any, max_iter: int) -> np.ndarray:
    conv = to_numpy(converged).astype(bool)
    n_iter = to_numpy(res.n_iter)
    stalled = to_numpy(res.stalled).astype(bool)
    status = np.where(
        conv, "converged", np.where(stalled, "stalled", np.where(n_iter >= max_iter, "max_iter",
                                                                  "stalled"))
    )
    status = np.where(to_numpy(diverging).astype(bool), "diverging", status)
    return status.astype(object)


def _diverging(fam: Family, obj: Objective, ya: Any, eta: Any, P: Any, lam: Any,
               pen: Any) -> Any:
    """A certificate that the binomial objective has no minimiser: every margin is positive.

    With margins ``m_i = s_i eta_i - P(beta)`` (``s = 2y - 1``; ``P = 0`` for PL) all positive at
    ``theta``, moving along the ray ``c theta``, ``c > 1``, raises every margin when ``P`` grows at
    most linearly along rays (l1, weighted l1, SCAD, MCP, lr with r <= 1, the scheme penalties),
    so the loss, decreasing in each margin, keeps decreasing: the infimum is approached as
    ``c -> inf`` and is not attained (separation; for G-FGSM, separation with l_inf margin
    above ``lam``).  For PL with ``lam > 0`` the penalty grows, so this applies at ``lam = 0``.

    With observation weights only the margins of positive weight count (the others have no
    term).  With a tilt ``t`` the objective gains ``c T`` along the ray, ``T = sum_i t_i eta_i``:
    positive margins certify no minimiser when ``T <= 0``.  Moreover, as
    ``softplus(-c m) <= log 2 + c max(-m, 0)``, ``F(c theta) <= const + c S`` with the slope
    ``S = sum_i [w_i max(-m_i, 0) + t_i eta_i] / sum w (+ P for PL)``; ``S < 0`` certifies that
    ``F`` is unbounded below (a tilt that outweighs the loss), whenever ``P`` grows at most
    linearly along rays.
    """
    xp = get_namespace(eta)
    R = eta.shape[0]
    if not fam.sign_is_constant:
        return xp.zeros((R,), dtype=xp.bool)
    s = 2.0 * ya - 1.0
    if obj.kind == "pl":
        margins = s * eta
        applies = lam == 0
    else:
        margins = s * eta - P[:, None]
        applies = xp.ones((R,), dtype=xp.bool) if pen.at_most_linear else lam == 0
    if not obj.is_weighted:
        return applies & xp.all(margins > 0, axis=-1)
    w = obj.sample_weight if obj.sample_weight is not None else xp.ones_like(eta)
    separated = applies & xp.all(xp.where(w > 0, margins > 0, True), axis=-1)
    if obj.tilt is None:
        return separated
    t_eta = obj.tilt * eta
    T = xp.sum(t_eta, axis=-1)
    hinge = w * xp.maximum(-margins, 0.0)
    W = xp.sum(w, axis=-1)
    S = xp.sum(hinge + t_eta, axis=-1) / W
    scale = xp.sum(hinge + xp.abs(t_eta), axis=-1) / W
    if obj.kind == "pl":
        S, scale = S + P, scale + P
    linear = xp.ones((R,), dtype=xp.bool) if pen.at_most_linear else lam == 0
    # S < 0 beyond rounding: S is a sum of terms of total size ``scale``.
    unbounded = linear & (S < -1e-12 * scale)
    return (separated & (T <= 0)) | unbounded


def _warn_nonconverged(fit: BatchFit) -> None:
    bad = np.flatnonzero(fit.status != "converged")
    if bad.size == 0:
        return
    kinds = {
        s: int(np.sum(fit.status == s))
        for s in ("max_iter", "stalled", "diverging", "sign_cycle", "level_cycle")
    }
    kinds = {k: v for k, v in kinds.items() if v}
    msg = (
        f"{bad.size} of {fit.n_problems} fits did not converge ({kinds}); first indices "
        f"{bad[:10].tolist()}. Check BatchFit.converged / .status; "
    )
    if "diverging" in kinds:
        msg += (
            "'diverging' fits are (adversarially) separable at this lam: no finite minimiser "
            "exists and the coefficients grow without bound; "
        )
    if "sign_cycle" in kinds:
        msg += (
            "'sign_cycle' fits: the poisson FGSM objective jumps where y_i = mu_i and its "
            "infimum is approached at such a jump, so no minimiser exists (adversary='exact' is "
            "the convex alternative); "
        )
    if "level_cycle" in kinds:
        msg += (
            "'level_cycle' fits: the quantized penalty's levels kept changing on several "
            "coordinates, so no level-consistent point was found; "
        )
    msg += "their estimates are the last iterates, not minimisers."
    warnings.warn(msg, ConvergenceWarning, stacklevel=3)
