"""The report: one section per claim of docs/theory.md s.8, built from results stores.

A section is produced by a function registered under the entry-point group
``gfgsm.report_sections`` (each study module of ``simulations/`` registers one):

    section(preset: str, results: Path, figures: Path) -> Section

It runs (or resumes) its study with :func:`gfgsm.mc.run` into ``results``, reads the store,
draws its figures into ``figures`` and returns a :class:`Section` whose every number comes from
the store (never typed).  :func:`build_report` calls the sections in their ``order`` and writes
``README.md``.

A section may also be split into ``summarise`` and ``render`` (:mod:`gfgsm.report.summaries`):
it then attaches its :class:`~gfgsm.report.summaries.Summaries` to the returned section, and
exposes ``section.render = render``.  :func:`build_report` saves the summaries beside the report
(``<out>/summaries/<name>/``), and ``build_report(from_summaries=DIR)`` renders every section
from saved summaries without running or reading a study (the committed full-size report).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pandas as pd

from .summaries import Summaries, load_summaries, save_summaries

__all__ = [
    "Section",
    "Summaries",
    "build_report",
    "load_summaries",
    "markdown_table",
    "provenance",
    "run_study",
    "save_figure",
    "save_summaries",
    "sections",
    "split_section",
    "store_manifest",
    "style",
]

GROUP = "gfgsm.report_sections"


@dataclass
class Section:
    """One claim of the report.

    ``verdict`` is one sentence saying whether the simulation agrees with the theory, built
    from the numbers; ``agrees`` is ``True``/``False`` (``None`` where the section states facts
    rather than testing a claim, e.g. real data).
    """

    key: str
    title: str
    claim: str
    verdict: str
    agrees: bool | None
    figures: list[tuple[str, str]] = field(default_factory=list)  # (path, caption)
    tables: list[tuple[str, str]] = field(default_factory=list)  # (caption, markdown)
    provenance: str = ""
    notes: str = ""
    #: What the section was rendered from, when it is split into summarise/render (saved by
    #: :func:`build_report`; not part of the text).
    summaries: Summaries | None = field(default=None, repr=False, compare=False)


def style() -> Any:
    """seaborn settings for figures that survive grayscale printing: white grid, dark
    sequential gray palette, and every line also told apart by marker and dash."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", palette="dark:#222222",
                  rc={"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": 10,
                      "axes.labelsize": 9, "legend.fontsize": 8})
    return sns


#: Markers and dashes to pass to seaborn (``markers=MARKERS, dashes=DASHES``).
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = [(1, 0), (4, 2), (1, 1), (6, 2, 1, 2), (3, 1, 1, 1), (2, 2), (5, 1), (1, 2)]


def save_figure(fig: Any, figures: Path, name: str) -> Path:
    """Save ``fig`` as ``figures/name.png`` (deterministic metadata) and close it."""
    import matplotlib.pyplot as plt

    figures.mkdir(parents=True, exist_ok=True)
    path = figures / f"{name}.png"
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub pipe table of ``df`` (strings as they are, floats with ``floatfmt``)."""
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def store_manifest(store: str | Path) -> dict[str, Any]:
    """The validated manifest of a results store (:meth:`gfgsm.mc.ResultStore.open`): its
    ``preset``, ``study`` definition, ``generator``, versions, ..."""
    from ..mc.store import ResultStore

    return ResultStore.open(store).manifest


def provenance(store: Path) -> str:
    """Conditions and seeds of a results store, read from its manifest."""
    m = store_manifest(store)
    st = m["study"]
    conds = [c["condition"] for c in st["conditions"]]
    factors = st.get("factors", [])
    grid = {f: sorted({c[f] for c in conds}, key=str) for f in factors}
    grid_txt = "; ".join(f"{k} in {v}" for k, v in grid.items())
    methods = ", ".join(x["name"] for x in st["methods"])
    if m.get("generator", "").startswith("philox"):
        seeding = (f"data of replication r of condition c drawn by {m['generator']} at counter "
                   f"r under the key of SeedSequence({st['seed']}, spawn_key=(c,))")
    else:
        seeding = (f"replication r of condition c seeded by SeedSequence({st['seed']}, "
                   f"spawn_key=(c, r))")
    return (f"Study `{st['name']}` (preset `{st['preset']}`, {st['reps']} replications per "
            f"condition, {len(conds)} conditions: {grid_txt}); methods: {methods}; study seed "
            f"{st['seed']}, {seeding}; definition hash `{m['study_hash'][:16]}`; store "
            f"`{store}`.")


#: Run options of the report being built (``gfgsm report --backend --executor --workers``),
#: applied by :func:`run_study` to every section's study.
RUN_OPTIONS: dict[str, Any] = {}


def run_study(study: Any, preset: str, results: str | Path, executor: str = "processes",
              workers: int = 2, chunk_size: int | None = None) -> Path:
    """Run (or resume) a section's study into ``results/<name>-<preset>`` without a progress
    bar (:func:`gfgsm.mc.run`) and return the store's path.

    The report's :data:`RUN_OPTIONS` win over the section's ``executor`` and ``workers``; on
    the ``cupy`` backend the default executor is ``local`` (one process owns the device).
    """
    from ..mc import run

    backend = RUN_OPTIONS.get("backend")
    if RUN_OPTIONS.get("executor") is not None:
        executor = RUN_OPTIONS["executor"]
    elif backend == "cupy":
        executor = "local"
    if RUN_OPTIONS.get("workers") is not None:
        workers = RUN_OPTIONS["workers"]
    return run(study, preset, Path(results) / f"{study.name}-{preset}", backend=backend,
               executor=executor, workers=workers, chunk_size=chunk_size, progress=False)


def split_section(summarise: Callable[..., Summaries], render: Callable[..., Section],
                  study: Any, preset: str, results: str | Path, figures: Path,
                  executor: str = "processes", **run_options: Any) -> Section:
    """The body of a section split into ``summarise``/``render`` (module docstring): run (or
    resume) ``study`` (:func:`run_study`), ``render(summarise(store, study), figures)``, and
    attach the summaries to the section for :func:`build_report` to save."""
    store = run_study(study, preset, results, executor, **run_options)
    summ = summarise(store, study)
    sec = render(summ, figures)
    sec.summaries = summ
    return sec


def sections() -> list[tuple[str, Callable[..., Section]]]:
    """Registered section functions, in their ``order`` (then name)."""
    found = [(ep.name, ep.load()) for ep in entry_points(group=GROUP)]
    return sorted(found, key=lambda kv: (getattr(kv[1], "order", 100), kv[0]))


def build_report(preset: str = "quick", results: str | Path | None = None,
                 out: str | Path = "reports", only: Iterable[str] | None = None, *,
                 backend: str | None = None, executor: str | None = None,
                 workers: int | None = None,
                 from_summaries: str | Path | None = None) -> Path:
    """Run every section (its study first) and write ``out/README.md`` with its figures, and
    each split section's summaries under ``out/summaries/<name>/``.

    ``backend``, ``executor`` and ``workers`` apply to every section's study
    (:data:`RUN_OPTIONS`); ``None`` keeps the sections' own (2 worker processes, NumPy).
    ``from_summaries``: render every section from the summaries saved under that directory
    instead (no study runs; a section without saved summaries, or that cannot render from
    them, is an error naming it); the seconds shown are those of the run that saved them.
    """
    out = Path(out)
    results = Path(results) if results is not None else Path("results")
    figures = out / "figures"
    wanted = set(only) if only is not None else None
    chosen = [(name, fn) for name, fn in sections() if wanted is None or name in wanted]
    if wanted is not None and wanted - {name for name, _ in chosen}:
        raise ValueError(f"unknown sections {sorted(wanted - {n for n, _ in chosen})}; "
                         f"registered: {[n for n, _ in sections()]}")
    if from_summaries is not None:
        src = Path(from_summaries)
        missing = [name for name, fn in chosen
                   if getattr(fn, "render", None) is None or not (src / name).is_dir()]
        if missing:
            raise ValueError(f"cannot render {missing} from {src}: no saved summaries there "
                             "(or the section has no render); build them with `gfgsm report`")
    out.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Section, float]] = []
    saved = dict(RUN_OPTIONS)
    RUN_OPTIONS.update(backend=backend, executor=executor, workers=workers)
    try:
        for name, fn in chosen:
            if from_summaries is not None:
                summ = load_summaries(Path(from_summaries) / name)
                preset = str(summ.meta.get("preset", preset))
                sec = fn.render(summ, figures)
                done.append((sec, float(summ.meta.get("report_seconds", float("nan")))))
                if Path(from_summaries).resolve() != (out / "summaries").resolve():
                    save_summaries(summ, out / "summaries" / name)
                continue
            t0 = time.perf_counter()
            sec = fn(preset, results, figures)
            seconds = time.perf_counter() - t0
            done.append((sec, seconds))
            if sec.summaries is not None:
                sec.summaries.meta["report_seconds"] = seconds
                save_summaries(sec.summaries, out / "summaries" / name)
    finally:
        RUN_OPTIONS.clear()
        RUN_OPTIONS.update(saved)
    text = _render(done, preset, out, from_summaries=from_summaries is not None)
    (out / "README.md").write_text(text)
    return out / "README.md"


def _render(done: list[tuple[Section, float]], preset: str, out: Path,
            from_summaries: bool = False) -> str:
    from .. import __version__

    how = (f"`gfgsm report --from-summaries {out.as_posix()}/summaries` (gfgsm {__version__}), "
           "from the summaries that the run of the studies saved in `summaries/`; every number "
           "below was read from the results stores named in each section"
           if from_summaries else
           f"`gfgsm report --preset {preset}` (gfgsm {__version__}). Every number below is read "
           "from the results stores named in each section, and the summaries it was rendered "
           "from are saved in `summaries/`")
    lines = [
        f"# gfgsm report ({preset} preset)",
        "",
        f"Generated by {how}; estimates are followed by their Monte Carlo standard error in "
        "parentheses. Claims are those of docs/theory.md section 8.",
        "",
        "| claim | agrees with the theory? | seconds |",
        "|---|---|---:|",
    ]
    for sec, secs in done:
        mark = {True: "yes", False: "**no**", None: "n/a"}[sec.agrees]
        lines.append(f"| [{sec.title}](#{sec.key}) | {mark} | {secs:.0f} |")
    for sec, _ in done:
        lines += ["", f"<a id=\"{sec.key}\"></a>", f"## {sec.title}", "", f"**Claim.** {sec.claim}",
                  "", f"**Result.** {sec.verdict}", ""]
        for path, caption in sec.figures:
            rel = Path(path).relative_to(out) if Path(path).is_absolute() or str(path).startswith(
                str(out)) else Path(path)
            lines += [f"![{caption}]({rel.as_posix()})", "", f"*{caption}*", ""]
        for caption, table in sec.tables:
            lines += [f"{caption}", "", table, ""]
        if sec.notes:
            lines += [sec.notes, ""]
        if sec.provenance:
            lines += [f"<sub>{sec.provenance}</sub>", ""]
    return "\n".join(lines) + "\n"
