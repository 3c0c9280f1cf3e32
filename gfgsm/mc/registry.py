"""Finding studies: the ``gfgsm.studies`` entry-point group.

A study is any :class:`~gfgsm.mc.spec.Study` object exposed by an installed package under the
entry-point group ``gfgsm.studies`` (this project registers those of ``simulations/`` in its
``pyproject.toml``), so a user's own package can add studies the same way and nothing is
imported from a folder by path.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from .spec import Study

__all__ = ["get_study", "list_studies"]

GROUP = "gfgsm.studies"


def list_studies() -> dict[str, Study]:
    """Every registered study, by name (loading each entry point)."""
    out: dict[str, Study] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        study = ep.load()
        if not isinstance(study, Study):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a gfgsm Study")
        out[ep.name] = study
    return out


def get_study(name: str) -> Study:
    """The registered study called ``name``; a clear error listing the others otherwise."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        known = sorted(ep.name for ep in entry_points(group=GROUP))
        raise ValueError(f"unknown study {name!r}; registered studies: {known}")
    study = matches[0].load()
    if not isinstance(study, Study):
        raise TypeError(f"entry point {name!r} is not a gfgsm Study")
    return study
