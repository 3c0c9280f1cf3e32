"""A study in a file of the user's: ``gfgsm run path/to/study.py[:NAME]`` and
:func:`gfgsm.mc.registry.load_study`, without writing a package."""

from __future__ import annotations

import json
import pickle
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from gfgsm.cli import main
from gfgsm.mc import load, run
from gfgsm.mc.registry import USER_PACKAGE, NotAStudyError, get_study, load_study
from gfgsm.mc.spec import Study

ROOT = Path(__file__).resolve().parents[1]

STUDY_FILE = '''\
"""A tiny user study."""
from gfgsm.designs import GaussianDesign
from gfgsm.dgp import DGP
from gfgsm.mc import LamRule, MethodSpec, Preset, Study


def make_dgp(c):
    return DGP(c["family"], GaussianDesign(2, rho=0.3), coef=[1.0, -0.5], intercept=0.3)


STUDY = Study(
    name="tiny",
    aims="A user's study run by path.",
    factors={"family": ["gaussian", "binomial"], "n": [60], "lam0": [1.0]},
    make_dgp=make_dgp,
    methods=(MethodSpec("G-FGSM", "gfgsm", lam=LamRule()), MethodSpec("PL", "pl", lam=LamRule())),
    presets={"quick": Preset(reps=5), "full": Preset(reps=50)},
    seed=7,
)
NOT_A_STUDY = 42

if __name__ == "__main__":
    raise SystemExit("the __main__ block must not run when the file is loaded as a study")
'''

#: Rows of the tiny study's quick preset: 2 conditions x 5 replications x 2 methods x 3 params.
ROWS = 2 * 5 * 2 * 3


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    d = tmp_path / "studies"
    d.mkdir()
    path = d / "tiny_study.py"
    path.write_text(STUDY_FILE)
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_runs_a_study_file_like_the_engine_runs_its_object(study_file, tmp_path, capsys):
    store = tmp_path / "store"
    rc, out, err = _cli(capsys, "run", f"{study_file}:STUDY", "--preset", "quick", "--out",
                        str(store), "--chunk-size", "2")
    assert rc == 0, err
    assert str(store) in out
    df = load(store)
    assert len(df) == ROWS
    assert set(df["method"]) == {"G-FGSM", "PL"}
    assert sorted(df["rep"].unique()) == list(range(5))
    assert set(df["family"]) == {"gaussian", "binomial"}
    assert df["converged"].all()
    # The same study as an object of its own (the file executed by runpy, not by the loader),
    # run by the engine: the same definition and the same numbers.
    obj = runpy.run_path(str(study_file))["STUDY"]
    ref = run(obj, "quick", tmp_path / "ref", progress=False)
    pd.testing.assert_frame_equal(load(ref), df)
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["study_hash"] == obj.hash("quick")
    # A second run of the finished store computes nothing (resume, same chunk size).
    assert _cli(capsys, "run", f"{study_file}:STUDY", "--out", str(store), "--chunk-size",
                "2")[0] == 0
    runs = json.loads((store / "runs.json").read_text())
    assert [r["chunks_computed"] for r in runs][-1] == 0


def test_the_file_alone_and_every_run_option(study_file, tmp_path, capsys):
    """``path.py`` alone names its one Study; executor, workers and reps pass through."""
    store = tmp_path / "procs"
    rc, _, err = _cli(capsys, "run", str(study_file), "--out", str(store), "--executor",
                      "processes", "--workers", "2", "--chunk-size", "3", "--reps", "4",
                      "--backend", "numpy", "--no-progress")
    assert rc == 0, err
    df = load(store)
    assert len(df) == ROWS // 5 * 4
    obj = runpy.run_path(str(study_file))["STUDY"]
    ref = run(obj, "quick", tmp_path / "ref", reps=4, progress=False)
    pd.testing.assert_frame_equal(load(ref), df)


def test_engine_accepts_the_file_reference_and_the_default_store(study_file, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = run(f"{study_file}:STUDY", "quick", progress=False)
    assert out == Path("results") / "tiny-quick"
    assert len(load(out)) == ROWS
    assert get_study(str(study_file)) is load_study(f"{study_file}:STUDY")


def test_load_study_imports_the_file_once_and_writes_nothing_beside_it(study_file):
    first = load_study(f"{study_file}:STUDY")
    assert isinstance(first, Study) and first.name == "tiny"
    assert load_study(str(study_file)) is first  # unchanged file: the same object
    module = sys.modules[first.make_dgp.__module__]
    assert module.__name__.startswith(USER_PACKAGE + ".")
    assert Path(module.__file__) == study_file.resolve()
    assert sorted(p.name for p in study_file.parent.iterdir()) == ["tiny_study.py"]
    study_file.write_text(STUDY_FILE.replace('name="tiny"', 'name="tiny2"'))
    assert load_study(str(study_file)).name == "tiny2"  # edited: imported afresh


def test_relative_imports_reach_the_files_beside_the_study(tmp_path):
    (tmp_path / "helpers.py").write_text("COEF = [0.5, 0.25]\n")
    (tmp_path / "rel.py").write_text(STUDY_FILE.replace(
        "coef=[1.0, -0.5]", "coef=COEF").replace(
        "from gfgsm.mc import", "from .helpers import COEF\nfrom gfgsm.mc import"))
    study = load_study(f"{tmp_path / 'rel.py'}:STUDY")
    assert list(study.make_dgp({"family": "gaussian"}).theta0) == [0.3, 0.5, 0.25]


def test_a_fresh_interpreter_can_unpickle_a_file_study(study_file, tmp_path):
    """What a spawned worker (dask, or a spawn/forkserver process pool) does: it imports the
    study file by itself from the module name alone."""
    study = load_study(f"{study_file}:STUDY")
    code = ("import pickle, sys\n"
            "s = pickle.loads(sys.stdin.buffer.read())\n"
            "print(s.hash('quick'))\n"
            "print(s.make_dgp({'family': 'binomial'}).theta0.tolist())\n")
    res = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(study),
                         capture_output=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().split()
    assert lines[0] == study.hash("quick")


def test_a_registered_study_by_path_is_the_registered_study():
    by_path = load_study(str(ROOT / "simulations" / "smoke.py") + ":STUDY")
    registered = load_study("smoke")
    assert by_path is not registered
    assert by_path.hash("quick") == registered.hash("quick")


def test_list_shows_a_study_file(study_file, capsys):
    rc, out, err = _cli(capsys, "list", str(study_file), "smoke")
    assert rc == 0, err
    assert "(study 'tiny')" in out and "--preset quick" in out and "smoke:" in out


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("ref", "exc", "match"),
    [
        ("{dir}/missing.py:STUDY", FileNotFoundError, "not found"),
        ("{dir}/missing.py", FileNotFoundError, "not found"),
        ("{file}:NOPE", ValueError, r"has no attribute 'NOPE'.*\['STUDY'\]"),
        ("{file}:NOT_A_STUDY", NotAStudyError, "is a int, not a gfgsm Study"),
        ("{file}:make_dgp", NotAStudyError, "is a function, not a gfgsm Study"),
        ("{file}:1x", ValueError, "not a Python name"),
        ("{file}:", ValueError, "not a Python name"),
        ("no_such_study", ValueError, "unknown study 'no_such_study'.*smoke.*study.py:NAME"),
        ("{dir}", ValueError, "unknown study"),
        ("{dir}/none.py", ValueError, "defines no gfgsm Study"),
        ("{dir}/two.py", ValueError, r"defines 2 Study objects \(A, B\); choose one"),
        ("{dir}/a.b.py", ValueError, "contain no '.'"),
        ("{dir}/folder.py", ValueError, "is not a file"),
    ],
)
def test_bad_references_are_clear_errors_that_change_nothing(study_file, tmp_path, capsys, ref,
                                                              exc, match):
    d = study_file.parent
    _write(d, "none.py", "X = 1\n")
    _write(d, "two.py", STUDY_FILE.replace("STUDY = Study(", "A = B = None\nA = Study(")
           + "B = Study(**{**A.__dict__, 'name': 'b'})\n")
    _write(d, "a.b.py", STUDY_FILE)
    (d / "folder.py").mkdir()
    before = sorted(p.name for p in d.iterdir())
    text = ref.format(dir=d, file=study_file)
    with pytest.raises(exc, match=match):
        load_study(text)
    # The command line: one line on stderr, exit status 2, no store.
    out = tmp_path / "store"
    rc, _, err = _cli(capsys, "run", text, "--out", str(out))
    assert rc == 2
    assert err.startswith("gfgsm run: error: ") and "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in d.iterdir()) == before


def test_two_studies_named_one_by_one(tmp_path):
    path = _write(tmp_path, "two.py", STUDY_FILE.replace("STUDY = Study(", "A = Study(")
                  + "B = Study(**{**A.__dict__, 'name': 'b'})\nALIAS = A\n")
    assert load_study(f"{path}:A").name == "tiny"
    assert load_study(f"{path}:B").name == "b"
    assert load_study(f"{path}:ALIAS") is load_study(f"{path}:A")


def test_errors_of_the_files_own_code_propagate_with_the_file_named(tmp_path, capsys):
    path = _write(tmp_path, "broken.py", "import gfgsm\nRESULT = 1 / 0\n")
    with pytest.raises(ZeroDivisionError) as info:
        load_study(str(path))
    assert any(str(path.resolve()) in note for note in info.value.__notes__)
    assert not [m for m in sys.modules if m.startswith(USER_PACKAGE) and m.endswith(".broken")]
    # A study definition that is invalid (ValueError in Study): one line naming the file.
    bad = _write(tmp_path, "bad.py", STUDY_FILE.replace('"full": Preset(reps=50)', ""))
    rc, _, err = _cli(capsys, "run", str(bad), "--out", str(tmp_path / "s"))
    assert rc == 2 and "needs a 'full' preset" in err and str(bad.resolve()) in err
    assert not (tmp_path / "s").exists()


def test_a_non_string_reference_is_a_type_error():
    with pytest.raises(TypeError, match="must be a string"):
        load_study(Path("x.py"))  # type: ignore[arg-type]
