"""Lines of therapy: prior therapies select resistant clones and backgrounds (issue 15, item 2).

A population file may list the therapies its patients progressed on (``[population.lines]``,
:mod:`her2sim.trial.population`); the catalogue ``models/populations/lines.toml`` says, for each
therapy class, which resistance backgrounds it selects and how common each background is in
patients who progressed on one line of it. Grammar of the catalogue::

    [lines]
    name = "lines"
    source = "..."
    [lines.backgrounds.p95her2]           # a resistance background (cohort feature, bool)
    naive = 0.30                          # prevalence before any therapy (fraction)
    source = "..."
    inert_targets = ["HER2 domain"]       # optional: drugs on these targets lose their signalling effect
    resistant_fraction = 0.5              # optional: HER2-lower clone share of the lesion is at least this
    requires = ["her2_high"]              # optional: only in patients with these features (a bool
                                          #   feature such as "hr_positive", or "her2_<level>")
    [lines.therapies.trastuzumab]         # a prior-therapy class
    description = "..."
    selects = {p95her2 = 0.44}            # prevalence after progression on one line (fraction)
    source = "..."

Selection model (assumed: each line removes the same share of the background-free patients by
response, so prevalences compound geometrically). One line of a class whose catalogue entry gives
prevalence ``a`` after progression for a background with naive prevalence ``p0`` selects the share
``s = (a - p0) / (1 - p0)`` of the background-free patients; ``n`` lines (fractional ``n``: the mean
number of lines, or the share of patients who had that therapy) turn a population's prevalence
``p`` into ``1 - (1 - p) (1 - s)**n``. Backgrounds that are already population features
(``pik3ca``, ``pten_loss``) start from the population's prevalence; the others from ``naive``.

What a background does in the simulation: ``pik3ca`` / ``pten_loss`` select the network's PI3K
variant (as before); ``inert_targets`` removes the signalling-channel effect (receptor blockade,
kinase inhibition, endocrine, ADCC) of drugs acting on those targets in that patient's lesions
(p95HER2 lacks the extracellular domain that trastuzumab, pertuzumab and the ADCs bind; ESR1
ligand-binding-domain mutants are active without oestrogen, so aromatase inhibitors lose their
effect) while payload and chemotherapy kill are kept (p95HER2 tumours co-express full-length
HER2, Scaltriti 2007); ``resistant_fraction`` raises the patient's baseline HER2-lower clone share
to at least that value (HER2-heterogeneous tumours).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .files import check_keys, read, require, require_source

#: backgrounds that are ordinary population features (their starting prevalence is the population's)
POPULATION_FEATURES = ("pik3ca", "pten_loss")


@dataclass(frozen=True)
class Background:
    """A resistance background a prior therapy can select (see the module docstring)."""

    name: str
    naive: float
    inert_targets: tuple = ()
    resistant_fraction: float | None = None
    requires: tuple = ()
    source: str = ""


@dataclass(frozen=True)
class TherapyClass:
    """A prior-therapy class: {background: prevalence after progression on one line}."""

    name: str
    selects: dict
    description: str = ""
    source: str = ""


@dataclass(frozen=True)
class Catalogue:
    """The backgrounds and therapy classes of ``models/populations/lines.toml``."""

    backgrounds: dict
    therapies: dict
    path: str = ""

    def per_line_selection(self, therapy: str, background: str) -> float:
        """Share ``s`` of background-free patients one line of ``therapy`` turns into carriers."""
        after = self.therapies[therapy].selects.get(background)
        if after is None:
            return 0.0
        p0 = self.backgrounds[background].naive
        return max(0.0, (after - p0) / (1.0 - p0))


def _fraction(t: dict, key: str, path: Path, entry: str, *, upper: float = 1.0) -> float:
    v = require(t, key, path, entry, kind=float)
    if not 0 <= v <= upper:
        raise ModelFileError(f"{key} must be a fraction in [0, {upper:g}], got {v!r}", path=str(path), entry=entry)
    return v


def load_catalogue(name_or_path: str | Path = "lines") -> Catalogue:
    """Read and validate the lines-of-therapy catalogue (bundled ``lines`` or a path)."""
    path, head, _data = read("lines", name_or_path)
    check_keys(head, {"name", "description", "source", "backgrounds", "therapies"}, path, "lines")
    require_source(head, path, "lines")
    bgs, ths = {}, {}
    for name, t in require(head, "backgrounds", path, "lines", kind=dict).items():
        entry = f"lines.backgrounds.{name}"
        if not isinstance(t, dict):
            raise ModelFileError("each background must be a table with naive and source", path=str(path), entry=entry)
        check_keys(t, {"naive", "source", "description", "inert_targets", "resistant_fraction", "requires"},
                   path, entry)
        inert = t.get("inert_targets", [])
        if not isinstance(inert, list) or not all(isinstance(x, str) and x for x in inert):
            raise ModelFileError(f"inert_targets must be a list of drug targets, got {inert!r}", path=str(path),
                                 entry=entry)
        floor = _fraction(t, "resistant_fraction", path, entry, upper=0.5) if "resistant_fraction" in t else None
        req = t.get("requires", [])
        ok = ("hr_positive", "her2_high", "her2_low")
        if not isinstance(req, list) or any(r not in ok for r in req):
            raise ModelFileError(f"requires must be a list of {list(ok)}, got {req!r}", path=str(path), entry=entry)
        bgs[name] = Background(name, _fraction(t, "naive", path, entry, upper=0.999), tuple(inert), floor,
                               tuple(req), require_source(t, path, entry))
    for name, t in require(head, "therapies", path, "lines", kind=dict).items():
        entry = f"lines.therapies.{name}"
        if not isinstance(t, dict):
            raise ModelFileError("each therapy must be a table with selects and source", path=str(path), entry=entry)
        check_keys(t, {"selects", "source", "description"}, path, entry)
        sel = require(t, "selects", path, entry, kind=dict)
        unknown = sorted(set(sel) - set(bgs))
        if unknown:
            raise ModelFileError(f"selects names unknown background(s) {unknown}; known: {sorted(bgs)}",
                                 path=str(path), entry=entry)
        after = {b: _fraction(sel, b, path, f"{entry}.selects") for b in sel}
        low = [b for b, a in after.items() if a < bgs[b].naive]
        if low:
            raise ModelFileError(f"prevalence after progression must be >= the naive prevalence for {low}",
                                 path=str(path), entry=entry)
        ths[name] = TherapyClass(name, after, t.get("description", ""), require_source(t, path, entry))
    return Catalogue(bgs, ths, str(path))


@dataclass(frozen=True)
class PriorLines:
    """A population's prior therapies and the prevalences they leave (see the module docstring).

    ``prior``: ((therapy class, lines), ...); ``prevalence``: {background: p} after those lines for
    the backgrounds that are not population features (those are folded into the population's
    prevalences by :func:`apply_lines`); ``catalogue``: the :class:`Catalogue` used.
    """

    prior: tuple
    prevalence: dict
    catalogue: Catalogue = field(repr=False)
    source: str = ""

    def inert(self) -> tuple:
        """((background, inert targets), ...) of the backgrounds that make drugs inert."""
        return tuple((b, bg.inert_targets) for b, bg in self.catalogue.backgrounds.items()
                     if bg.inert_targets and b in self.prevalence)

    def sample(self, features: dict, rng: np.random.Generator, n: int) -> dict:
        """Draw the non-population backgrounds for ``n`` patients (same order every time), plus
        ``resistant_floor`` (lowest baseline HER2-lower clone share, 0 = none)."""
        out, floor = {}, np.zeros(n)
        for b in sorted(self.prevalence):
            bg = self.catalogue.backgrounds[b]
            x = rng.random(n) < self.prevalence[b]
            for r in bg.requires:
                x &= (features["her2"] == r[5:]) if r.startswith("her2_") else np.asarray(features[r], bool)
            out[b] = x
            if bg.resistant_fraction is not None:
                floor = np.where(x, np.maximum(floor, bg.resistant_fraction), floor)
        out["resistant_floor"] = floor
        return out


def parse_prior(value, catalogue: Catalogue, path: Path, entry: str) -> tuple:
    """``prior = ["trastuzumab", ...]`` (one line each) or ``{trastuzumab = 3, pertuzumab = 0.6}``
    (lines per patient, fractional = mean) -> ((class, lines), ...) in the file's order."""
    allowed = sorted(catalogue.therapies)
    if isinstance(value, list):
        if not all(isinstance(x, str) for x in value):
            raise ModelFileError(f"prior must list therapy classes (strings), got {value!r}; allowed: {allowed}",
                                 path=str(path), entry=entry)
        counts: dict = {}
        for x in value:
            counts[x] = counts.get(x, 0.0) + 1.0
    elif isinstance(value, dict):
        counts = {}
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 20:
                raise ModelFileError(f"prior.{k} must be a number of lines in [0, 20], got {v!r}", path=str(path),
                                     entry=entry)
            counts[k] = float(v)
    else:
        raise ModelFileError(f"prior must be a list of therapy classes or a table {{class = lines}}, got {value!r}",
                             path=str(path), entry=entry)
    unknown = [k for k in counts if k not in catalogue.therapies]
    if unknown:
        raise ModelFileError(f"prior: unknown therapy class {unknown[0]!r}; allowed: {allowed}", path=str(path),
                             entry=entry)
    return tuple(counts.items())


def apply_lines(prior: tuple, bernoulli: dict, catalogue: Catalogue, source: str = "") -> tuple[dict, PriorLines]:
    """(population prevalences with the selected PI3K backgrounds raised, :class:`PriorLines`)."""
    bern = dict(bernoulli)
    prev = {}
    for b, bg in catalogue.backgrounds.items():
        p = bern[b] if b in POPULATION_FEATURES and b in bern else bg.naive
        keep = 1.0
        for therapy, n in prior:
            keep *= (1.0 - catalogue.per_line_selection(therapy, b)) ** n
        p = 1.0 - (1.0 - p) * keep
        if b in POPULATION_FEATURES and b in bern:
            bern[b] = p
        else:
            prev[b] = p
    return bern, PriorLines(tuple(prior), prev, catalogue, source)
