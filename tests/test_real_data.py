"""The real-data section (simulations/real_data.py): data offline, CV and paths checked
against statsmodels, and the section itself on a reduced grid."""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import gfgsm
from gfgsm.report import Section, load_summaries, save_summaries
from simulations import real_data as rd

SM_FAMILY = {"binomial": sm.families.Binomial, "gaussian": sm.families.Gaussian,
             "poisson": sm.families.Poisson}


@pytest.fixture(scope="module")
def data() -> dict[str, rd.Dataset]:
    # randhie reduced to 600 rows (fixed seed) to keep the module fast
    return {d.key: d for d in rd.load_datasets(randhie_rows=600)}


def _sm_fit(X: np.ndarray, y: np.ndarray, family: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, sm.add_constant(X, has_constant="add"),
                      family=SM_FAMILY[family]()).fit(tol=1e-12, maxiter=200)


def test_datasets_load_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network access attempted while loading a bundled data set")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = {d.key: d for d in rd.load_datasets()}
    shapes = {k: d.X.shape for k, d in ds.items()}
    assert shapes == {"breast_cancer": (569, 30), "spector": (32, 3), "diabetes": (442, 10),
                      "randhie": (20190, 9)}
    assert {k: d.family for k, d in ds.items()} == {
        "breast_cancer": "binomial", "spector": "binomial", "diabetes": "gaussian",
        "randhie": "poisson"}
    for d in ds.values():
        # standardized features (round-off only)
        np.testing.assert_allclose(d.X.mean(axis=0), 0.0, atol=1e-10)
        np.testing.assert_allclose(d.X.std(axis=0), 1.0, rtol=1e-10)
        assert len(d.names) == d.X.shape[1] and len(d.y) == d.X.shape[0]
        gfgsm.get_family(d.family).validate_y(d.y)
    assert np.all(ds["randhie"].y == np.round(ds["randhie"].y))  # counts


@pytest.mark.parametrize("key", ["spector", "diabetes", "randhie"])
@pytest.mark.parametrize("method", ["pl", "gfgsm"])
def test_cv_deviance_at_lam0_matches_statsmodels(data, key, method):
    d = data[key]
    lam = np.array([0.01, 0.0])
    cv = rd.cv_deviance(d.X, d.y, d.family, method, lam, folds=5)
    assert cv.status[0, -1] == "converged"
    tr, te = cv.folds[0]
    res = _sm_fit(d.X[tr], d.y[tr], d.family)
    mu = res.predict(sm.add_constant(d.X[te], has_constant="add"))
    expected = SM_FAMILY[d.family]().deviance(d.y[te], mu) / len(te)
    # both fits are the MLE to ~1e-9 (KKT tolerance / IRLS at tol 1e-12): 1e-6 is loose
    np.testing.assert_allclose(cv.deviance[0, -1], expected, rtol=1e-6)


def test_cv_batches_folds_and_matches_single_fold_fit(data):
    d = data["spector"]  # n = 32, K = 5: training sizes 25 and 26, two fit_batch calls
    lam = np.array([0.2, 0.05, 0.0])
    cv = rd.cv_deviance(d.X, d.y, d.family, "gfgsm", lam, folds=5)
    assert cv.n_calls == 2
    for k in (0, 4):  # one fold of each training size
        tr, te = cv.folds[k]
        fit = gfgsm.fit_batch(d.X[tr], d.y[tr], family="binomial", method="gfgsm", lam=0.05)
        eta = float(fit.intercept[0]) + d.X[te] @ np.asarray(fit.coef)[0]
        dev = np.mean(2 * (np.logaddexp(0.0, eta) - d.y[te] * eta))
        # same problem solved to KKT 1e-9 in a batch and alone
        np.testing.assert_allclose(cv.deviance[k, 1], dev, rtol=1e-8)
    # one call per fold (design shared by the grid) gives the same numbers
    cv1 = rd.cv_deviance(d.X, d.y, d.family, "gfgsm", lam, folds=5, max_bytes=1)
    assert cv1.n_calls == 5
    np.testing.assert_allclose(cv1.deviance, cv.deviance, rtol=1e-8)


@pytest.mark.parametrize("key", ["spector", "diabetes", "randhie"])
def test_paths_at_lam0_equal_statsmodels_mle(data, key):
    d = data[key]
    lam = rd.lam_grid(d.X, d.y, d.family, 4, 1e-2)
    assert lam[-1] == 0.0
    ref = _sm_fit(d.X, d.y, d.family).params
    for method in ("pl", "gfgsm"):
        path = rd.fit_path(d.X, d.y, d.family, method, lam)
        assert path.status[-1] == "converged"
        theta = np.r_[path.intercept[-1], np.asarray(path.coef)[-1]]
        # both are the MLE; 1e-6 relative (diabetes coefficients are O(10-100))
        np.testing.assert_allclose(theta, ref, rtol=1e-6, atol=1e-6)
    # at lam_max (the first grid point) PL has every slope at zero
    pl = rd.fit_path(d.X, d.y, d.family, "pl", lam[:1])
    assert np.all(np.asarray(pl.coef) == 0)


def test_breast_cancer_has_no_mle(data):
    d = data["breast_cancer"]
    path = rd.fit_path(d.X, d.y, d.family, "pl", np.array([0.0]))
    assert path.status[0] == "diverging"


def test_first_order_gap_on_real_data(data):
    # docs/theory.md s.4-5: theta_G(lam) - theta_PL(lam D phi) = lam ||beta||_1 I^-1 V + O(lam^2)
    d = data["spector"]
    sn = gfgsm.sign_neutrality(d.X, d.y, d.family, n_boot=30)
    lam = 1e-4
    g = rd.fit_path(d.X, d.y, d.family, "gfgsm", np.array([lam]))
    p = rd.fit_path(d.X, d.y, d.family, "pl", np.array([lam * sn.D * sn.phi]))
    gap = np.r_[g.intercept[0] - p.intercept[0], np.asarray(g.coef)[0] - np.asarray(p.coef)[0]]
    pred = sn.predicted_bias(lam)
    # the remainder is O(lam) relative; 1e-2 leaves a factor 10 over the observed 7e-4
    assert np.linalg.norm(gap - pred) <= 1e-2 * np.linalg.norm(pred)


def test_choose_lam():
    lam = np.array([1.0, 0.5, 0.25, 0.1, 0.0])
    mean = np.array([5.0, 3.0, 2.0, 2.5, 1.0])  # lam = 0 is never chosen
    se = np.array([0.1, 0.1, 1.5, 0.1, 0.1])
    assert rd.choose_lam(lam, mean, se) == (2, 1)  # 3.0 <= 2.0 + 1.5 < 5.0


@pytest.mark.parametrize("key", ["spector", "diabetes", "randhie"])
def test_debiased_vs_mle_against_gfgsm_and_statsmodels(data, key):
    # docs/theory.md s.5: the one step from the G-FGSM fit lands O_p(1/n) from the MLE, so
    # at a small budget (lam = 0.01, start distance below 1.5 SE) the intervals agree
    d = data[key]
    lam = 0.01
    t = rd.debiased_vs_mle(d, lam)
    p = d.X.shape[1]
    assert len(t) == p + 1  # one row per coefficient, intercept first
    assert list(t["coefficient"]) == ["intercept", *d.names]
    assert (t["data"] == key).all() and (t["lam"] == lam).all() and (t["note"] == "").all()
    est = gfgsm.GFGSM(family=d.family, lam=lam, **rd._fit_kwargs(d.family, "gfgsm")).fit(d.X,
                                                                                          d.y)
    np.testing.assert_allclose(t[["debiased lo", "debiased hi"]].to_numpy(), est.conf_int(),
                               rtol=1e-12, atol=0)
    np.testing.assert_allclose(t["debiased"], est.params_debiased_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(t["G-FGSM"], np.r_[est.intercept_, est.coef_], rtol=1e-12,
                               atol=0)
    res = _sm_fit(d.X, d.y, d.family)
    mci = np.asarray(res.conf_int())
    np.testing.assert_allclose(t[["MLE lo", "MLE hi"]].to_numpy(), mci, rtol=1e-12, atol=0)
    np.testing.assert_allclose(t["MLE"], res.params, rtol=1e-12, atol=0)
    np.testing.assert_allclose(t["MLE SE"], res.bse, rtol=1e-12, atol=0)
    ratio = np.max(np.abs(est.conf_int() - mci), axis=1) / res.bse
    np.testing.assert_allclose(t["end diff / SE"], ratio, rtol=1e-9, atol=1e-15)
    a = rd.mle_agreement(t)
    assert a["verdict"] == "agree"
    assert a["max"] == pytest.approx(ratio.max(), rel=1e-9, abs=1e-15)
    assert a["max"] < rd.MLE_AGREE
    if d.family == "gaussian":  # the step lands on the MLE exactly: round-off only
        assert a["max"] < 1e-10


def test_debiased_vs_mle_reports_missing_mle(data, monkeypatch):
    # breast_cancer is separable: statsmodels "converges" at |coef| ~ 1e16; the table says so
    d = data["breast_cancer"]
    t = rd.debiased_vs_mle(d, 0.05)
    assert len(t) == d.X.shape[1] + 1
    assert t[["MLE", "MLE lo", "MLE hi", "MLE SE", "end diff / SE"]].isna().all().all()
    assert np.all(np.isfinite(t[["debiased lo", "debiased hi"]].to_numpy()))
    assert "separation" in t["note"].iloc[0]
    assert rd.mle_agreement(t)["verdict"] == "n/a"

    # statsmodels raising is reported the same way, not propagated
    def boom(self, *args, **kwargs):
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr(sm.GLM, "fit", boom)
    t = rd.debiased_vs_mle(data["spector"], 0.01)
    assert "statsmodels GLM failed (LinAlgError: Singular matrix)" in t["note"].iloc[0]
    assert t["MLE"].isna().all() and rd.mle_agreement(t)["verdict"] == "n/a"


def test_mle_agreement_rule():
    def table(r):
        return pd.DataFrame({"coefficient": ["intercept", "x1"], "end diff / SE": r,
                             "start diff / SE": [0.5, 1.0], "note": ""})

    a = rd.mle_agreement(table([0.05, 0.099]))
    assert (a["verdict"], a["max"], a["at"], a["start"]) == ("agree", 0.099, "x1", 1.0)
    assert rd.mle_agreement(table([0.1, 0.02]))["verdict"] == "disagree"  # not below 0.1
    assert rd.mle_agreement(table([0.01, np.nan]))["verdict"] == "n/a"


@pytest.fixture(scope="module")
def reduced(tmp_path_factory, data) -> tuple[Section, Path]:
    """The section on a reduced grid (built once for the tests below) and its directory."""
    root = tmp_path_factory.mktemp("real_data")
    cfg = rd.Config(n_lam=5, lam_ratio=1e-3, folds=3, n_boot=30, randhie_rows=600)
    sec = rd.section("quick", root / "results", root / "figures", config=cfg,
                     datasets=list(data.values()))
    return sec, root


def test_section_builds_on_reduced_grid(reduced, data):
    sec, tmp_path = reduced
    assert isinstance(sec, Section)
    assert sec.key == "real_data" and rd.section.order == 60
    assert sec.agrees is None
    assert len(sec.figures) == 2
    for path, caption in sec.figures:
        assert Path(path).is_file() and Path(path).stat().st_size > 0 and caption
    assert len(sec.tables) == 4 and all("|---" in t for _, t in sec.tables)
    assert all(k in sec.tables[1][1] for k in data)
    assert "Wald" in sec.verdict and "breast_cancer" in sec.tables[0][1]
    assert "Sign-neutrality test" in sec.notes
    store = tmp_path / "results" / "real_data-quick"
    files = ("paths.csv", "cv.csv", "inference.csv", "summary.json")
    assert all((store / f).is_file() for f in files)
    # debiased vs MLE: one row per coefficient per data set, in the CSV and the markdown
    n_coef = sum(d.X.shape[1] + 1 for d in data.values())
    inf = pd.read_csv(store / "inference.csv", keep_default_na=False, na_values=[""])
    assert len(inf) == n_coef
    assert len(sec.tables[3][1].splitlines()) == n_coef + 2
    summary = sec.tables[2][1].splitlines()
    assert len(summary) == len(data) + 2
    assert "Debiased vs statsmodels MLE" in sec.verdict and "below 0.1" in sec.claim
    cv = pd.read_csv(store / "cv.csv")
    for key, d in data.items():
        rows = inf[inf.data == key]
        assert list(rows.coefficient) == ["intercept", *d.names]
        # at the CV-minimising G-FGSM lam, recomputed from the saved folds
        g = cv[(cv.data == key) & (cv.estimator == "G-FGSM")]
        lam = g.lam.unique()
        dev = g.pivot(index="fold", columns="lam", values="deviance")[lam].to_numpy()
        ok = (g.pivot(index="fold", columns="lam", values="status")[lam] == "converged").all()
        mean = np.where(ok, dev.mean(axis=0), np.nan)
        se = np.where(ok, dev.std(axis=0, ddof=1) / np.sqrt(dev.shape[0]), np.nan)
        assert np.allclose(rows.lam, lam[rd.choose_lam(lam, mean, se)[0]], rtol=1e-12)
        verdict = rd.mle_agreement(rows.reset_index(drop=True).fillna({"note": ""}))["verdict"]
        assert any(line.startswith(f"| {key} |") and f"| {verdict} |" in line
                   for line in summary)
    # every markdown row has as many cells as the header (no stray "|" in a cell)
    for _, tab in sec.tables:
        lines = tab.splitlines()
        assert {line.count("|") for line in lines} == {lines[0].count("|")}
    bc = inf[inf.data == "breast_cancer"]
    assert bc["MLE"].isna().all() and bc["note"].str.contains("no MLE").all()


def test_section_renders_from_saved_summaries(reduced, data, tmp_path: Path):
    # the report renders the section from its saved summaries alone: the same text
    sec, _ = reduced
    assert rd.section.render is rd.render and sec.summaries is not None
    d = save_summaries(sec.summaries, tmp_path / "s")
    assert sum(f.stat().st_size for f in d.glob("*.parquet")) < 1_000_000
    s2 = load_summaries(d)
    assert set(s2.tables) == {"datasets", "sign_neutrality", "paths", "cv", "cv_choice",
                              "inference"}
    assert list(s2["datasets"]["data"]) == list(data)
    sec2 = rd.render(s2, tmp_path / "fig2")
    for attr in ("key", "title", "claim", "verdict", "agrees", "tables", "notes",
                 "provenance"):
        assert getattr(sec2, attr) == getattr(sec, attr), attr
    assert [c for _, c in sec2.figures] == [c for _, c in sec.figures]
    for path, _ in sec2.figures:
        assert Path(path).parent == tmp_path / "fig2" and Path(path).stat().st_size > 0
