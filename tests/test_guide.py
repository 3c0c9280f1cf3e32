"""docs/guide.md runs: every code block, in order, in an empty directory.

Conventions of the guide (checked here, so no block escapes testing):

* a ```` ```python ```` block is executed; all of them share one namespace, in order;
* a ```` ```python ```` block right after the line ``<!-- file: NAME -->`` is written to the
  file ``NAME`` instead (a study file, used by later blocks and commands);
* a ```` ```console ```` block holds commands, one per ``$ `` line: ``$ gfgsm ...`` runs
  :func:`gfgsm.cli.main` in this process and must return 0, ``$ python ...`` runs this
  interpreter in a subprocess and must exit 0, and ``$ pip install ...`` is the only command
  not run (it is the install step itself); any other command fails the test.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gfgsm.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
_FILE_MARK = re.compile(r"^<!--\s*file:\s*(\S+)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of the guide."""

    lang: str
    code: str
    line: int  # 1-based line of the opening fence
    file: str | None  # the file it is written to, for a marked python block


def guide_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` in order; an unclosed fence is an error."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang = lines[i][3:].strip()
            start = i
            mark = _FILE_MARK.match(lines[i - 1].strip()) if i > 0 else None
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"docs/guide.md:{start + 1}: unclosed code fence")
            blocks.append(Block(lang, "\n".join(body) + "\n", start + 1,
                                mark.group(1) if mark else None))
        i += 1
    return blocks


def _commands(block: Block) -> list[str]:
    return [ln[2:].strip() for ln in block.code.splitlines() if ln.startswith("$ ")]


def test_guide_blocks_are_all_runnable_kinds():
    blocks = guide_blocks(GUIDE.read_text())
    assert blocks, "the guide has no code blocks"
    for b in blocks:
        assert b.lang in ("python", "console"), (
            f"docs/guide.md:{b.line}: a ```{b.lang} block is not run by this test; use python "
            "or console")
        if b.lang == "console":
            assert _commands(b), f"docs/guide.md:{b.line}: a console block without commands"
        if b.file is not None:
            assert b.lang == "python", f"docs/guide.md:{b.line}: only python files are written"
        if b.lang == "python":
            compile(b.code, f"docs/guide.md:{b.line}", "exec")  # a syntax error fails here


def _run_command(cmd: str, where: str, cwd: Path) -> None:
    argv = shlex.split(cmd, comments=True)
    if argv[:2] == ["pip", "install"]:
        return  # the install step itself
    if argv[0] == "gfgsm":
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv[1:])
        assert rc == 0, f"{where}: `{cmd}` returned {rc}\n{out.getvalue()}\n{err.getvalue()}"
        assert out.getvalue(), f"{where}: `{cmd}` printed nothing"
        return
    if argv[0] == "python":
        res = subprocess.run([sys.executable, *argv[1:]], cwd=cwd, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, f"{where}: `{cmd}` failed\n{res.stdout}\n{res.stderr}"
        return
    pytest.fail(f"{where}: `{cmd}`: this test runs only gfgsm, python and pip install commands")


@pytest.mark.filterwarnings("error::UserWarning")  # a guide example must not warn
def test_guide_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__guide__"}
    for b in guide_blocks(GUIDE.read_text()):
        where = f"docs/guide.md:{b.line}"
        if b.file is not None:
            (tmp_path / b.file).write_text(b.code)
        elif b.lang == "python":
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(b.code, where, "exec"), namespace)
        else:
            for cmd in _commands(b):
                _run_command(cmd, where, tmp_path)
    # The study file was loaded by path, the runs wrote their stores, nothing else was left
    # beside the study file (no __pycache__).
    assert (tmp_path / "my_study.py").is_file()
    for store in ("my_study-quick", "my_study-procs", "my_study-python", "my_study-script"):
        assert (tmp_path / "results" / store / "manifest.json").is_file(), store
    assert not (tmp_path / "__pycache__").exists()


def test_guide_parser_finds_unclosed_fences_and_file_marks():
    text = "x\n<!-- file: a.py -->\n```python\nA = 1\n```\n```console\n$ gfgsm list\n```\n"
    blocks = guide_blocks(text)
    assert [(b.lang, b.file, b.line) for b in blocks] == [("python", "a.py", 3),
                                                          ("console", None, 6)]
    with pytest.raises(ValueError, match="unclosed"):
        guide_blocks("```python\nA = 1\n")
