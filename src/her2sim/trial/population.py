"""Virtual patients: ``models/populations/*.toml`` -> :class:`PopulationSpec` -> sampled :class:`Cohort`.

Prevalences and distributions are data with sources (parameters.md 2.10); sampling is seeded.
Population file grammar::

    [population]
    name = "her2_mbc_pretreated"
    description = "..."
    source = "..."
    tumour = "tumour"                         # tumour-parameter file (models/populations/tumour.toml)
    pretreated = true                         # progressed on a prior line of therapy
    [population.prior_therapy]                # optional: what that line targeted
    targets = ["HER2"]                        # drug targets (prefixes: "HER2" = "HER2", "HER2 domain IV", ...)
    source = "..."
    [population.features.hr_positive]         # bernoulli features: p in [0, 1]
    p = 0.5
    source = "..."
    [population.features.cd16a]               # categorical: levels and probabilities
    levels = {FF = 0.32, VF = 0.49, VV = 0.19}
    source = "..."
    [population.continuous.weight]            # log-normal: median and cv
    median = "70 kg"
    cv = 0.2
    source = "..."

Required features: hr_positive, pik3ca, pten_loss, her2 (categorical high/low), cd16a (FF/VF/VV),
pdl1_positive, brain_mets, occult_brain. Required continuous: weight (kg), bsa (m2),
baseline_sld (mm), resistant_fraction (fraction of the HER2-lower clone at baseline).
Optional ``[population.immunity.tils]`` (median % of stroma, cv, source): stromal TILs per patient
(:mod:`her2sim.trial.immunity`). Every cohort also carries ``tils`` and ``brain_threshold`` (an Exp(1)
draw for :mod:`her2sim.trial.brain`), drawn from a child stream of the sampling generator.
PIK3CA mutation and PTEN loss are sampled independently; a patient with both gets the PIK3CA
background (one PI3K-pathway background per patient in the network).
Lines of therapy (issue 15): ``base = "other_population"`` inherits every table of that file (this
file's entries replace the base's, feature by feature), and ``[population.lines]`` with
``prior = ["trastuzumab", "taxane"]`` (or ``{trastuzumab = 3}``: lines per patient) and a source
lists the therapies the patients progressed on; the resistance backgrounds those select
(p95HER2, PI3K pathway, HER2 heterogeneity, ESR1) are drawn as in :mod:`her2sim.trial.lines`.
A trial's eligibility replaces prevalences (``{feature = p}``; 1 = required, 0 = excluded).
``pretreated`` (default false) marks populations that progressed on prior therapy: the signalling
response to drugs that act on a target of that therapy (``prior_therapy.targets``, matched against
the drug files' ``targets`` by :func:`cross_resistant`) is scaled by the tumour file's
``pretreated_signal_factor`` (:mod:`her2sim.trial.tumour`); drugs new to the patients (everolimus
after an aromatase inhibitor) keep the network's response. Without ``prior_therapy`` every drug
counts as cross-resistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument, ModelFileError, UnknownNameError
from .files import check_keys, quantity, read, require, require_source
from .immunity import load_tils, sample_tils

BERNOULLI = ("hr_positive", "pik3ca", "pten_loss", "pdl1_positive", "brain_mets", "occult_brain")
CATEGORICAL = {"her2": ("high", "low"), "cd16a": ("FF", "VF", "VV")}
CONTINUOUS = {"weight": "kg", "bsa": "m**2", "baseline_sld": "mm", "resistant_fraction": ""}


@dataclass(frozen=True)
class PopulationSpec:
    """Feature prevalences and covariate distributions of a patient population."""

    name: str
    bernoulli: dict            # feature -> p
    categorical: dict          # feature -> {level: p}
    continuous: dict           # name -> (median in internal unit, cv)
    tumour: str = "tumour"
    pretreated: bool = False
    prior_targets: tuple = ()  # targets of the prior line (empty with pretreated: every drug)
    description: str = ""
    source: str = ""
    sources: dict = field(default_factory=dict)
    path: str = ""
    lines: object = None       # her2sim.trial.lines.PriorLines of [population.lines], or None
    tils: tuple | None = None  # (median %, cv) of stromal TILs (her2sim.trial.immunity); None: no TILs

    def with_eligibility(self, overrides: dict) -> PopulationSpec:
        """A copy with prevalences replaced (eligibility / enrolled fractions); unknown names raise."""
        bern, cat = dict(self.bernoulli), {k: dict(v) for k, v in self.categorical.items()}
        cont = dict(self.continuous)
        for k, v in overrides.items():
            if k in bern:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 1:
                    raise InvalidArgument(f"eligibility {k}: expected a probability in [0, 1], got {v!r}")
                bern[k] = float(v)
            elif k in cat:
                if not isinstance(v, dict) or set(v) - set(CATEGORICAL[k]) or abs(sum(v.values()) - 1) > 1e-6:
                    raise InvalidArgument(f"eligibility {k}: expected {{level: p}} over {CATEGORICAL[k]} summing to 1, "
                                     f"got {v!r}")
                cat[k] = {lv: float(v.get(lv, 0.0)) for lv in CATEGORICAL[k]}
            elif k in cont:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
                    raise InvalidArgument(f"eligibility {k}: expected a positive median, got {v!r}")
                cont[k] = (float(v), cont[k][1])
            else:
                raise UnknownNameError("population feature", k, list(bern) + list(cat) + list(cont))
        return replace(self, bernoulli=bern, categorical=cat, continuous=cont)


@dataclass(frozen=True)
class Cohort:
    """Sampled patients: ``features`` maps names to (N,) arrays (bool, str or float)."""

    features: dict
    seed: int | None = None

    @property
    def n(self) -> int:
        return len(next(iter(self.features.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.features[name]

    def subset(self, mask: np.ndarray) -> Cohort:
        return Cohort({k: v[mask] for k, v in self.features.items()}, self.seed)

    def pi3k(self) -> np.ndarray:
        """PI3K background per patient: 'pik3ca', 'pten_loss' or 'wt'."""
        return np.where(self["pik3ca"], "pik3ca", np.where(self["pten_loss"], "pten_loss", "wt"))

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.features)


def load_population(name_or_path: str | Path) -> PopulationSpec:
    """Read and validate a population file (bundled name or path)."""
    path, head, _data = read("population", name_or_path)
    check_keys(head, {"name", "description", "source", "tumour", "pretreated", "prior_therapy", "features",
                      "continuous", "immunity", "base", "lines"}, path, "population")
    head = _with_base(head, path)
    name = require(head, "name", path, "population")
    source = require_source(head, path, "population")
    feats = head.get("features", {})
    cont = head.get("continuous", {})
    bern, cat, cn, sources = {}, {}, {}, {}
    for f in BERNOULLI:
        entry = f"population.features.{f}"
        t = feats.get(f)
        if not isinstance(t, dict):
            raise ModelFileError(f"missing [{entry}] with p and source", path=str(path), entry=entry)
        check_keys(t, {"p", "source", "description"}, path, entry)
        sources[f] = require_source(t, path, entry)
        p = require(t, "p", path, entry, kind=float)
        if not 0 <= p <= 1:
            raise ModelFileError(f"p must be in [0, 1], got {p!r}", path=str(path), entry=entry)
        bern[f] = p
    for f, levels in CATEGORICAL.items():
        entry = f"population.features.{f}"
        t = feats.get(f)
        if not isinstance(t, dict):
            raise ModelFileError(f"missing [{entry}] with levels and source", path=str(path), entry=entry)
        check_keys(t, {"levels", "source", "description"}, path, entry)
        sources[f] = require_source(t, path, entry)
        lv = require(t, "levels", path, entry, kind=dict)
        if set(lv) - set(levels) or any(not isinstance(v, (int, float)) or v < 0 for v in lv.values()):
            raise ModelFileError(f"levels must map {levels} to probabilities, got {lv!r}", path=str(path), entry=entry)
        total = sum(lv.values())
        if abs(total - 1) > 0.02:
            raise ModelFileError(f"level probabilities must sum to 1 (within rounding), got {total:g}", path=str(path),
                                 entry=entry)
        cat[f] = {k: float(lv.get(k, 0.0)) / total for k in levels}
    unknown = set(feats) - set(BERNOULLI) - set(CATEGORICAL)
    if unknown:
        raise UnknownNameError("population feature", min(unknown), list(BERNOULLI) + list(CATEGORICAL))
    for c, unit in CONTINUOUS.items():
        entry = f"population.continuous.{c}"
        t = cont.get(c)
        if not isinstance(t, dict):
            raise ModelFileError(f"missing [{entry}] with median, cv and source", path=str(path), entry=entry)
        check_keys(t, {"median", "cv", "source", "description"}, path, entry)
        sources[c] = require_source(t, path, entry)
        med = quantity(require(t, "median", path, entry, kind=(str if isinstance(t.get("median"), str) else float)),
                       unit, path, entry + ".median")
        cv = require(t, "cv", path, entry, kind=float)
        if med <= 0 or not 0 <= cv < 5:
            raise ModelFileError(f"median must be > 0 and cv in [0, 5), got {t['median']!r}, {cv!r}", path=str(path),
                                 entry=entry)
        cn[c] = (med, cv)
    pretreated = head.get("pretreated", False)
    if not isinstance(pretreated, bool):
        raise ModelFileError(f"pretreated must be true or false, got {pretreated!r}", path=str(path),
                             entry="population.pretreated")
    prior = _prior_targets(head.get("prior_therapy"), pretreated, path)
    bern, lines = _lines(head.get("lines"), bern, path)
    return PopulationSpec(name, bern, cat, cn, head.get("tumour", "tumour"), pretreated, prior,
                          head.get("description", ""), source, sources, str(path), lines,
                          tils=load_tils(head.get("immunity"), path))


def _with_base(head: dict, path: Path, depth: int = 0) -> dict:
    """``head`` merged over the population file named by its ``base`` key (tables merged one level
    deep: a feature given here replaces the base's feature); ``lines`` is not inherited."""
    base = head.get("base")
    if base is None:
        return head
    if not isinstance(base, str) or not base.strip() or depth > 4:
        raise ModelFileError(f"base must name another population file (no cycles), got {base!r}", path=str(path),
                             entry="population.base")
    bpath, bhead, _ = read("population", base if Path(base).suffix != ".toml" else path.parent / base)
    bhead = _with_base(bhead, bpath, depth + 1)
    out = {k: v for k, v in bhead.items() if k not in ("lines", "base")}
    for k, v in head.items():
        if k in ("features", "continuous") and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        elif k != "base":
            out[k] = v
    return out


def _lines(table, bern: dict, path: Path):
    """(prevalences, PriorLines or None) of ``[population.lines]``."""
    if table is None:
        return bern, None
    entry = "population.lines"
    if not isinstance(table, dict):
        raise ModelFileError("lines must be a table with prior = [...] and source", path=str(path), entry=entry)
    check_keys(table, {"prior", "source", "description", "catalogue"}, path, entry)
    src = require_source(table, path, entry)
    from .lines import apply_lines, load_catalogue, parse_prior

    cat = load_catalogue(table.get("catalogue", "lines"))
    if "prior" not in table:
        raise ModelFileError(f"missing prior = [...]; allowed therapy classes: {sorted(cat.therapies)}",
                             path=str(path), entry=entry)
    prior = parse_prior(table["prior"], cat, path, entry + ".prior")
    return apply_lines(prior, bern, cat, src)


def _prior_targets(table, pretreated: bool, path) -> tuple:
    if table is None:
        return ()
    entry = "population.prior_therapy"
    if not isinstance(table, dict):
        raise ModelFileError("prior_therapy must be a table with targets = [...] and source", path=str(path),
                             entry=entry)
    check_keys(table, {"targets", "source"}, path, entry)
    require_source(table, path, entry)
    if not pretreated:
        raise ModelFileError("prior_therapy needs pretreated = true (or remove it)", path=str(path), entry=entry)
    targets = table.get("targets")
    if not isinstance(targets, list) or not targets or not all(isinstance(x, str) and x for x in targets):
        raise ModelFileError(f"targets must be a non-empty list of drug targets, got {targets!r}", path=str(path),
                             entry=entry)
    from ..model.load import list_drugs

    known = sorted({tg for d in list_drugs() for tg in d.targets})
    unknown = [x for x in targets if not any(cross_resistant((k,), (x,)) for k in known)]
    if unknown:
        raise ModelFileError(f"no bundled drug has target(s) {unknown}; known targets: {known}", path=str(path),
                             entry=entry)
    return tuple(targets)


def cross_resistant(drug_targets, prior_targets) -> bool:
    """True if a drug with ``drug_targets`` acts on a target of the prior therapy: equal names, or a
    prior target that names the whole protein ("HER2" covers "HER2 domain IV", not "HER4")."""
    return any(t == p or t.startswith(p + " ") for t in drug_targets for p in prior_targets)


def lognormal(rng: np.random.Generator, median: float, cv: float, n: int) -> np.ndarray:
    """Log-normal draws with the given median and coefficient of variation."""
    return median * np.exp(rng.normal(0.0, np.sqrt(np.log1p(cv ** 2)), n))


def sample_population(spec: PopulationSpec, n: int, seed: int | np.random.Generator = 0) -> Cohort:
    """Sample ``n`` patients; the same seed gives the same cohort.

    Feature draws are independent (no correlations between, e.g., HR status and PIK3CA are
    modelled). ``resistant_fraction`` is capped at 0.5.
    """
    if int(n) < 1:
        raise InvalidArgument(f"n must be >= 1, got {n!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = {"patient": np.arange(n)}
    for f, p in spec.bernoulli.items():
        out[f] = rng.random(n) < p
    for f, lv in spec.categorical.items():
        names = list(lv)
        out[f] = np.asarray(names)[rng.choice(len(names), size=n, p=np.array([lv[k] for k in names]))]
    for c, (med, cv) in spec.continuous.items():
        out[c] = lognormal(rng, med, cv, n)
    out["resistant_fraction"] = np.minimum(out["resistant_fraction"], 0.5)
    out["occult_brain"] = out["occult_brain"] & ~out["brain_mets"]
    # issue 15 (brain, immunity): from a child stream, so every draw above stays as it was
    extra = rng.spawn(1)[0]
    out["tils"] = sample_tils(spec.tils, n, extra)
    out["brain_threshold"] = extra.exponential(size=n)   # Exp(1): her2sim.trial.brain.new_lesion_day
    if spec.lines is not None:  # drawn last: cohorts of populations without lines are unchanged
        out.update(spec.lines.sample(out, rng, n))
    return Cohort(out, seed if isinstance(seed, int) else None)


def list_populations() -> list[str]:
    from .files import trial_models_dir

    out = []
    for p in sorted((trial_models_dir() / "populations").glob("*.toml")):
        if "population" in p.read_text(encoding="utf-8").split("]", 1)[0]:
            out.append(p.stem)
    return out
