"""Stage 2 of a virtual trial: each arm's drugs, PK and exposure-response table -> daily rates per patient.

:func:`plan_arm` gathers what an arm needs besides its patients (PK models, the exposure-response
table from a :class:`TableCache`, concentration scales, the HER2 binders and the cross-resistant
columns); :func:`exposure` turns the patients' individual PK into daily mean in-vitro drug effects
(:class:`~her2sim.trial.tumour.DailyRates`).

Speed and accuracy. :func:`exposure` gets hourly concentrations from
:class:`~her2sim.trial.pk.HourlyPK` (closed form between doses for linear models, coarse Lawson
steps for Michaelis-Menten ones) and reads the table once per ``window_h``-hour window at the
window's mean concentration, with the sensitive and the HER2-lower clone in one read and the
binding-site-barrier read only where an antibody reaches part of a lesion. The reference is
:func:`exposure_stepped`, the original hour-by-hour :class:`~her2sim.trial.pk.PKStepper` path,
which with ``window_h=1`` reads the table at every hour: ``tests/test_trial_speed.py`` bounds the
difference of the two (:data:`WINDOW_ERROR_BOUND`), and ``benchmarks/bench_trial.py`` prints both
timings and the measured error.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InvalidArgument
from .exposure import (Background, ExposureTable, compute_table, content_digest, interpolate, model_files,
                       scheduler_for)
from .hooks import TrialHooks, load_hooks
from .pk import HourlyPK, PKStepper, load_pk, superpose
from .population import Cohort, PopulationSpec
from .tumour import DailyRates, TumourParameters, load_tumour

#: default table-read window (h): the error of this window against hourly reads is measured in
#: ``benchmarks/bench_trial.py`` and bounded by ``tests/test_trial_speed.py``
WINDOW_H = 2
#: bound on |daily rate - hourly reference| (1/h) of the default window (``tests/test_trial_speed.py``):
#: measured 1.5e-4 on HER2CLIMB-like and 1.7e-4 on EMILIA-like patients (the chemotherapy channel of
#: capecitabine, half-life ~1 h); the drug effects reach ~5e-3 1/h
WINDOW_ERROR_BOUND = 3e-4


@dataclass
class TableCache:
    """Exposure-response tables computed in this session, keyed by content.

    The key of a table is (the sha256 of the bytes of every model, module, variant and drug file it
    is computed from and of the exposure constants, the drugs, the rounded reference concentrations),
    so editing a model file and re-running a trial computes a new table instead of returning a
    stale one. The list of files of a (model, drugs) pair is resolved once per cache; their bytes
    are hashed at every lookup. Pass one cache to several trials to share their tables; a trial run
    without one builds its own (no module-level state).
    """

    tables: dict = field(default_factory=dict)
    _files: dict = field(default_factory=dict, repr=False)

    def key(self, drugs, ref, model="default", hooks: TrialHooks | None = None) -> tuple:
        """(content digest, drugs, rounded log10 reference concentrations) of a table."""
        fk = (tuple(drugs), str(model))
        if fk not in self._files:
            self._files[fk] = model_files(drugs, model, hooks)
        return (content_digest(self._files[fk]), tuple(drugs), tuple(np.round(np.log10(ref), 3)))

    def get(self, drugs, ref, backgrounds, *, scheduler=None, model="default", hooks: TrialHooks | None = None,
            workers: int | None = None) -> ExposureTable:
        """The table of ``drugs`` at reference concentrations ``ref`` (nM) covering ``backgrounds``
        on ``model`` (bundled name or path; ``hooks`` its ``[virtual_trial]`` table if already
        read), computed (and stored) on ``scheduler`` if this cache has none for the current content
        of the model. ``workers``: deprecated alias of ``scheduler`` (> 1: "processes")."""
        scheduler = scheduler_for(workers, scheduler)
        hooks = load_hooks(model) if hooks is None else hooks
        key = self.key(drugs, ref, model, hooks)
        cached = self.tables.get(key)
        if cached is not None and set(backgrounds) <= set(cached.backgrounds):
            return cached
        bgs = sorted(set(backgrounds) | set(cached.backgrounds if cached else ()), key=lambda b: b.label)
        tab = compute_table(drugs, ref, bgs, scheduler=scheduler, model=model, hooks=hooks)
        self.tables[key] = tab
        return tab

    def clear(self) -> None:
        self.tables.clear()
        self._files.clear()


def arm_drugs(arm):
    """[(regimen, pk)], the network drugs and each drug's reference (typical mean) free tumour conc (nM)."""
    pairs = [(r, load_pk(r.drug)) for r in arm.regimens]
    drugs, ref = [], {}
    for reg, pk in pairs:
        p = pk.individual(1)
        t_end = 12 * 7 * 24.0
        times, doses = reg.amounts_mg(t_end, np.array([70.0]), np.array([1.75]))
        tt = np.arange(t_end - 21 * 24, t_end, 1.0)
        c = superpose(pk, p, times, doses, tt, route=reg.route)[0]
        free = float(np.mean(pk.mg_per_L_to_nM(c))) * pk.values["fu"] * pk.values["kp_tumour"] * pk.potency_factor
        if pk.network_drug not in drugs:
            drugs.append(pk.network_drug)
        ref[pk.network_drug] = ref.get(pk.network_drug, 0.0) + max(free, 1e-6)
    return pairs, drugs, np.array([ref[d] for d in drugs])


def clone_backgrounds(cohort: Cohort, hooks: TrialHooks):
    """Per patient: the signalling background of the sensitive clone (S) and of the HER2-lower clone
    (R, the HER2 level the model's ``[virtual_trial.her2] lower`` gives)."""
    her2 = cohort["her2"]
    pi3k = cohort.pi3k()
    er = cohort["hr_positive"]
    S = [Background(str(h), str(p), bool(e)) for h, p, e in zip(her2, pi3k, er)]
    R = [Background(hooks.lower_clone(b.her2), b.pi3k, b.er_positive) for b in S]
    return S, R


def model_drugs(model="default") -> list:
    """The drug files ``model`` (bundled name or path) can use, as :func:`her2sim.model.load.load_model`
    finds them: those in a ``drugs/`` folder next to the model file first, then the bundled ones."""
    from ..model.load import list_drugs, models_dir, resolve_model_path

    root = models_dir()
    found = {d.dose_parameter: d for d in list_drugs(root)}
    folder = resolve_model_path(model).parent
    if folder != root and (folder / "drugs").is_dir():
        found.update({d.dose_parameter: d for d in list_drugs(folder)})
    return list(found.values())


def her2_antibodies(drugs, model="default") -> list[int]:
    """Indices (into ``drugs``, network dose-parameter names) of the antibodies and ADCs that bind
    HER2, by the drug files of ``model``."""
    binders = {d.dose_parameter for d in model_drugs(model)
               if any(t.startswith("HER2") for t in d.targets)
               and ("antibody" in d.drug_class or "conjugate" in d.drug_class)}
    return [k for k, d in enumerate(drugs) if d in binders]


def reached_fraction(antibody_nM: np.ndarray, saturation_nM: np.ndarray) -> np.ndarray:
    """Binding-site barrier: share of a lesion's cells that HER2-binding antibodies reach.

    In a tumour the antigen is a sink: antibody that leaves the vessels binds the first HER2-rich
    cells it meets and is internalised, so it penetrates only as far as its supply outruns antigen
    turnover (Thurber, Schmidt & Wittrup 2008 Trends Pharmacol Sci 29:57 [recalled, unverified]:
    targeted fraction ~ supply / (antigen x turnover), capped at 1). With the supply measured by
    the free local concentration ``c`` of all HER2 binders together: ``min(1, c / c_sat)``, where
    ``c_sat`` scales with the lesion's HER2 density (:attr:`TumourParameters.antibody_saturation`).
    """
    return np.clip(antibody_nM / saturation_nM, 0.0, 1.0)


@dataclass(frozen=True)
class ArmPlan:
    """What computing one arm's exposure needs besides the patients (picklable: shipped to workers).

    ``pairs`` (regimen, PK model) per regimen; ``drugs`` the network dose parameters; ``table`` the
    exposure-response table; per regimen the drug's column and the mg/L -> nM free-concentration
    factors in body lesions and in the brain; ``antibodies`` the columns of HER2 binders; the
    binding-site-barrier saturation concentration of a HER2 3+ lesion (nM); and ``cross`` the
    columns of drugs acting on a target of the population's prior therapy (all columns for a
    pre-treated population without ``prior_therapy``, none for a treatment-naive one).
    """

    pairs: tuple
    drugs: tuple
    table: ExposureTable
    col: tuple
    scale_body: tuple
    scale_brain: tuple
    antibodies: tuple
    saturation_nM: float
    cross: tuple = ()
    #: ((cohort feature, columns), ...): in patients with the feature, the signalling channel is read
    #: with those drugs' concentrations at zero (:mod:`her2sim.trial.lines`: p95HER2, ESR1)
    inert: tuple = ()
    #: population progressed on prior therapy: with no cross-resistant column the arm's signalling
    #: change is kept whole (``xS`` = 0), not scaled as if every drug were cross-resistant
    pretreated: bool = False

    def sample_pk(self, n: int, rng: np.random.Generator) -> list:
        """Per-regimen individual PK parameters of ``n`` patients (in regimen order, as one rng stream)."""
        return [pk.individual(n, rng) for _reg, pk in self.pairs]


@dataclass(frozen=True)
class Choice:
    """One option of a physician's-choice arm: its regimens and its share of the arm's patients."""

    name: str
    regimens: tuple
    share: float
    source: str = ""


def assign_choices(shares, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) option index per patient: counts ``floor(n share)`` with the remainder going to the
    largest fractional parts, in a random order from ``rng`` (so the shares are met exactly)."""
    w = np.asarray(shares, float) / float(np.sum(shares))
    counts = np.floor(n * w).astype(int)
    order = np.argsort(-(n * w - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(w)), counts))


@dataclass(frozen=True)
class MixPlan:
    """A physician's-choice arm: an :class:`ArmPlan` per option, the options' shares and names.

    Every patient of the arm gets one option (:func:`assign_choices`); :meth:`sample_pk` returns
    ``[{"choice": (n,) option index}, *PK of option 0's regimens, *PK of option 1's, ...]`` so
    that slicing the list by patients (as :mod:`her2sim.trial.scaleout` does for blocks) keeps
    each patient's option and PK together, and :func:`exposure` gives each patient the rates of
    their own option.
    """

    plans: tuple
    shares: tuple
    names: tuple

    @property
    def table(self) -> ExposureTable:
        """The first option's table, its wall time the sum over the options' tables."""
        return replace(self.plans[0].table, wall_time_s=float(sum(p.table.wall_time_s for p in self.plans)))

    def sample_pk(self, n: int, rng: np.random.Generator) -> list:
        out = [{"choice": assign_choices(self.shares, n, rng)}]
        for p in self.plans:
            out.extend(p.sample_pk(n, rng))
        return out


def mix_exposure(plan: MixPlan, cohort: Cohort, pk_params: list, follow_up_h: float, fn, **kw) -> DailyRates:
    """Daily rates of a physician's-choice arm: each option's patients through ``fn``
    (:func:`exposure` or :func:`exposure_stepped`) with that option's plan, gathered in cohort order.
    Where one option carries the cross-resistant signalling change (``xS``) and another does not,
    the latter's is its whole signalling change (what ``None`` means in :class:`DailyRates`)."""
    choice = np.asarray(pk_params[0]["choice"])
    parts, k0 = [], 1
    for j, p in enumerate(plan.plans):
        pk_j = pk_params[k0:k0 + len(p.pairs)]
        k0 += len(p.pairs)
        idx = np.flatnonzero(choice == j)
        if len(idx):
            parts.append((idx, fn(p, cohort.subset(idx), [{k: v[idx] for k, v in d.items()} for d in pk_j],
                                  follow_up_h, **kw)))
    N, days = cohort.n, int(np.ceil(follow_up_h / 24.0))
    dS = np.zeros((N, days, 2, 3), dtype=np.float32)
    dR = np.zeros((N, days, 2, 3), dtype=np.float32)
    by = np.zeros((N, days, 2), dtype=np.float32)
    with_x = any(r.xS is not None for _i, r in parts)
    with_base = all(r.base is not None for _i, r in parts)
    base = np.zeros((N, 2)) if with_base else None
    xS = np.zeros((N, days, 2), dtype=np.float32) if with_x else None
    xR = np.zeros((N, days, 2), dtype=np.float32) if with_x else None
    for idx, r in parts:
        dS[idx], dR[idx], by[idx] = r.dS, r.dR, r.byst
        if with_base:
            base[idx] = r.base
        if with_x:
            xS[idx] = r.dS[..., 0] if r.xS is None else r.xS
            xR[idx] = r.dR[..., 0] if r.xR is None else r.xR
    return DailyRates(dS, dR, by, xS, xR, base)


def plan_arm(arm, cohort: Cohort, *, tumour: TumourParameters | None = None, scheduler=None,
             population: PopulationSpec | None = None, cache: TableCache | None = None,
             model="default", workers: int | None = None) -> ArmPlan:
    """The arm's drugs, PK and exposure-response table on ``model`` (bundled name or path),
    covering the backgrounds of ``cohort``; ``population`` decides which drugs are cross-resistant (:attr:`ArmPlan.cross`); ``cache``
    (default: a new one) supplies the table if it holds one for the model's current content, else
    it is computed on ``scheduler`` (``workers``: deprecated alias, > 1 means "processes")."""
    scheduler = scheduler_for(workers, scheduler)
    tumour = tumour or load_tumour()
    cache = TableCache() if cache is None else cache
    if getattr(arm, "choices", ()):  # physician's choice: one plan per option
        return MixPlan(tuple(plan_arm(c, cohort, tumour=tumour, scheduler=scheduler, population=population,
                                      cache=cache, model=model) for c in arm.choices),
                       tuple(c.share for c in arm.choices), tuple(c.name for c in arm.choices))
    hooks = load_hooks(model)
    pairs, drugs, ref = arm_drugs(arm)
    S, R = clone_backgrounds(cohort, hooks)
    tab = cache.get(drugs, ref, S + R, scheduler=scheduler, model=model, hooks=hooks)
    col, body, brain = [], [], []
    for _reg, pk in pairs:
        mw = 1e6 / pk.molecular_weight
        body.append(mw * pk.values["fu"] * pk.values["kp_tumour"] * pk.potency_factor)
        brain.append(mw * pk.values["fu"] * pk.values["kp_uu_brain"] * pk.potency_factor)
        col.append(drugs.index(pk.network_drug))
    return ArmPlan(tuple(pairs), tuple(drugs), tab, tuple(col), tuple(body), tuple(brain),
                   tuple(her2_antibodies(drugs, model)), float(tumour.antibody_saturation),
                   cross_columns(drugs, population, model), inert_columns(drugs, population, model),
                   bool(population is not None and population.pretreated))


def inert_columns(drugs, population: PopulationSpec | None, model="default") -> tuple:
    """((background, columns), ...): the drugs (indices into ``drugs``) whose signalling effect a
    background selected by prior therapy removes (:meth:`her2sim.trial.lines.PriorLines.inert`)."""
    if population is None or population.lines is None:
        return ()
    from .population import cross_resistant

    targets = {d.dose_parameter: d.targets for d in model_drugs(model)}
    out = []
    for feature, inert in population.lines.inert():
        cols = tuple(k for k, d in enumerate(drugs) if cross_resistant(targets.get(d, ()), inert))
        if cols:
            out.append((feature, cols))
    return tuple(out)


def inert_mask(plan: ArmPlan, cohort: Cohort) -> np.ndarray | None:
    """(N, D) bool: drug columns whose signalling effect is absent in each patient (None: none)."""
    if not plan.inert:
        return None
    mask = np.zeros((cohort.n, len(plan.drugs)), dtype=bool)
    for feature, cols in plan.inert:
        if feature in cohort.features:
            mask[np.ix_(np.asarray(cohort[feature], bool), list(cols))] = True
    return mask if mask.any() else None


def cross_columns(drugs, population: PopulationSpec | None, model="default") -> tuple:
    """Indices into ``drugs`` (dose-parameter names) of the drugs a pre-treated population is
    cross-resistant to (:func:`her2sim.trial.population.cross_resistant`), by the targets in the
    drug files of ``model``."""
    if population is None or not population.pretreated:
        return ()
    if not population.prior_targets:
        return tuple(range(len(drugs)))
    from .population import cross_resistant

    targets = {d.dose_parameter: d.targets for d in model_drugs(model)}
    return tuple(k for k, d in enumerate(drugs) if cross_resistant(targets.get(d, ()), population.prior_targets))


def arm_exposure(arm, cohort: Cohort, follow_up_h: float, rng: np.random.Generator, *,
                 tumour: TumourParameters | None = None, scheduler=None, block_days: int = 7,
                 window_h: int = WINDOW_H, population: PopulationSpec | None = None,
                 cache: TableCache | None = None, model="default",
                 workers: int | None = None) -> tuple[DailyRates, ExposureTable]:
    """Daily mean in-vitro drug effects (N, days, 2 sites, 3 channels) for the patients of one arm.

    :func:`plan_arm`, then individual PK parameters from ``rng``, then :func:`exposure`.
    """
    plan = plan_arm(arm, cohort, tumour=tumour, scheduler=scheduler_for(workers, scheduler), population=population,
                    cache=cache, model=model)
    pk_params = plan.sample_pk(cohort.n, rng)
    return exposure(plan, cohort, pk_params, follow_up_h, block_days=block_days, window_h=window_h), plan.table


class _Reader:
    """Table reads of one arm's patients: both clones in one interpolation, binding-site barrier included."""

    def __init__(self, plan: ArmPlan, cohort: Cohort):
        tab = plan.table
        S, R = clone_backgrounds(cohort, tab.hooks)
        N = cohort.n
        bS = np.array([tab.background_index(b) for b in S])
        bR = np.array([tab.background_index(b) for b in R])
        host = np.array([tab.host_index(str(c), "positive" if p else "negative")
                         for c, p in zip(cohort["cd16a"], cohort["pdl1_positive"])])
        # (N, L**D, 8): the S clone's 4 outputs, then the R clone's
        self.both = np.concatenate([tab.patient_tables(bS, host), tab.patient_tables(bR, host)], axis=-1)
        self.signal = np.ascontiguousarray(self.both[..., [0, 4]])  # signalling channel of S and R
        self.tab, self.ab = tab, list(plan.antibodies)
        self.c_sat = plan.saturation_nM * np.array([tab.hooks.her2_factor(b.her2) for b in S])  # (N,) nM
        self.base = interpolate(self.both, np.arange(N), np.zeros((N, len(plan.drugs))), tab)[:, [0, 4]]

    def read(self, table: np.ndarray, pid: np.ndarray, c: np.ndarray) -> np.ndarray:
        """(M, K) values at concentrations ``c`` (M, D) of patients ``pid`` (M,): the reached share
        ``phi`` of the cells sees every drug, the rest all but the HER2 binders; each of the two
        reads only where its weight is non-zero (the same numbers as reading both everywhere)."""
        if not self.ab:
            return interpolate(table, pid, c, self.tab)
        phi = reached_fraction(c[:, self.ab].sum(axis=1), self.c_sat[pid])
        out = np.zeros((len(pid), table.shape[-1]))
        on = np.flatnonzero(phi > 0)
        if len(on) == len(pid):
            out = phi[:, None] * interpolate(table, pid, c, self.tab)
        elif len(on):
            out[on] = phi[on, None] * interpolate(table, pid[on], c[on], self.tab)
        part = np.flatnonzero(phi < 1)
        if len(part):
            c0 = c[part].copy()
            c0[:, self.ab] = 0.0
            out[part] += (1.0 - phi[part, None]) * interpolate(table, pid[part], c0, self.tab)
        return out


def exposure(plan: ArmPlan, cohort: Cohort, pk_params: list, follow_up_h: float, *, block_days: int = 7,
             window_h: int = WINDOW_H) -> DailyRates:
    """Daily mean in-vitro drug effects (N, days, 2 sites, 3 channels) of ``cohort`` under ``plan``.

    Hourly concentrations come from :class:`~her2sim.trial.pk.HourlyPK`; the exposure-response
    table is read at the mean concentration of each ``window_h``-hour window (24 must be a
    multiple) and the rates are averaged over the day. Brain rates are computed only for patients
    with a brain lesion (known or occult); others get 0. HER2-binding antibodies reach only the
    fraction :func:`reached_fraction` of a lesion's cells (binding-site barrier); the other cells
    see the remaining drugs only, and the lesion's rate is the cell-weighted mean of the two table
    reads. When only some of the drugs are cross-resistant (``plan.cross``), the signalling change
    of those drugs alone is read too (``xS``, ``xR``); when none is and the population is
    pre-treated, ``xS`` = ``xR`` = 0 (nothing is scaled). In patients carrying a background that
    makes a drug inert (``plan.inert``: p95HER2, ESR1) the signalling channel is read with that
    drug at zero. Every patient's rates depend only on that
    patient's row, so any split of a cohort into blocks gives the same numbers.
    """
    if int(window_h) < 1 or 24 % int(window_h):
        raise InvalidArgument(f"window_h must divide 24, got {window_h!r}")
    if isinstance(plan, MixPlan):
        return mix_exposure(plan, cohort, pk_params, follow_up_h, exposure, block_days=block_days, window_h=window_h)
    w = int(window_h)
    drugs = plan.drugs
    N, D = cohort.n, len(drugs)
    rd = _Reader(plan, cohort)
    days = int(np.ceil(follow_up_h / 24.0))
    H = days * 24
    pks = []
    for (reg, pk), p in zip(plan.pairs, pk_params):
        times, doses = reg.amounts_mg(H, cohort["weight"], cohort["bsa"])
        pks.append(HourlyPK(pk, p, reg.route, np.round(times).astype(int), doses))
    dS = np.zeros((N, days, 2, 3), dtype=np.float32)
    dR = np.zeros((N, days, 2, 3), dtype=np.float32)
    by = np.zeros((N, days, 2), dtype=np.float32)
    others = [k for k in range(D) if k not in plan.cross]
    partial = bool(plan.cross) and bool(others)
    none_cross = plan.pretreated and not plan.cross   # no drug on a prior target: nothing is scaled
    xS = np.zeros((N, days, 2), dtype=np.float32) if partial or none_cross else None
    xR = np.zeros((N, days, 2), dtype=np.float32) if partial or none_cross else None
    brain_needed = np.flatnonzero(cohort["brain_mets"] | cohort["occult_brain"])
    per_day = 24 // w
    mask = inert_mask(plan, cohort)
    for d0 in range(0, days, block_days):
        nd = min(block_days, days - d0)
        nw = nd * per_day
        body = np.zeros((N, nw, D))
        brain = np.zeros((N, nw, D))
        for j, hp in enumerate(pks):
            cw = hp.block(nd * 24).reshape(N, nw, w).mean(axis=2)  # mean plasma conc per window, mg/L
            body[:, :, plan.col[j]] += cw * plan.scale_body[j]
            brain[:, :, plan.col[j]] += cw * plan.scale_brain[j]
        for site, conc, who in ((0, body, np.arange(N)), (1, brain, brain_needed)):
            if len(who) == 0:
                continue
            n = len(who)
            cw = conc[who].reshape(-1, D)
            pid = np.repeat(who, nw)
            v = rd.read(rd.both, pid, cw)
            mrow = None if mask is None else mask[pid]
            if mrow is not None:  # signalling of the inert drugs removed in those patients
                on = np.flatnonzero(mrow.any(axis=1))
                if len(on):
                    v[on[:, None], [0, 4]] = rd.read(rd.signal, pid[on], np.where(mrow[on], 0.0, cw[on]))
            v = v.reshape(n, nd, per_day, 8).mean(axis=2)
            if partial:
                cx = cw.copy() if mrow is None else np.where(mrow, 0.0, cw)
                cx[:, others] = 0.0
                x = rd.read(rd.signal, pid, cx).reshape(n, nd, per_day, 2).mean(axis=2)
                xS[who, d0:d0 + nd, site] = x[:, :, 0] - rd.base[who, None, 0]
                xR[who, d0:d0 + nd, site] = x[:, :, 1] - rd.base[who, None, 1]
            v[:, :, 0] -= rd.base[who, None, 0]
            v[:, :, 4] -= rd.base[who, None, 1]
            dS[who, d0:d0 + nd, site] = v[:, :, 0:3]
            dR[who, d0:d0 + nd, site] = v[:, :, 4:7]
            by[who, d0:d0 + nd, site] = v[:, :, 3]
    return DailyRates(dS, dR, by, xS, xR, np.asarray(rd.base, float))


def exposure_stepped(plan: ArmPlan, cohort: Cohort, pk_params: list, follow_up_h: float, *, block_days: int = 7,
                     window_h: int = 1) -> DailyRates:
    """The reference of :func:`exposure` (the trial path before version 2): the same daily rates with
    PK stepped hour by hour (:class:`~her2sim.trial.pk.PKStepper`) and, by default, a table read at
    every hour. Slow (a Python step per hour and drug); used by tests and the benchmark only.

    PK is stepped hourly; the exposure-response table is read at the mean concentration of each
    ``window_h``-hour window (24 must be a multiple) and the rates are averaged over the day. Brain
    rates are computed only for patients with a brain lesion (known or occult); others get 0.
    HER2-binding antibodies reach only the fraction :func:`reached_fraction` of a lesion's cells
    (binding-site barrier); the other cells see the remaining drugs only, and the lesion's rate is
    the cell-weighted mean of the two table reads. When only some of the drugs are cross-resistant
    (``plan.cross``), the signalling change of those drugs alone is read too (``xS``, ``xR``); when
    none is and the population is pre-treated, ``xS`` = ``xR`` = 0 (nothing is scaled).
    Every patient's rates depend only on that patient's row, so any split of a cohort into blocks
    gives the same numbers.
    """
    if 24 % int(window_h):
        raise InvalidArgument(f"window_h must divide 24, got {window_h!r}")
    if isinstance(plan, MixPlan):
        return mix_exposure(plan, cohort, pk_params, follow_up_h, exposure_stepped, block_days=block_days,
                            window_h=window_h)
    tab, drugs = plan.table, plan.drugs
    S, R = clone_backgrounds(cohort, tab.hooks)
    N = cohort.n
    bS = np.array([tab.background_index(b) for b in S])
    bR = np.array([tab.background_index(b) for b in R])
    host = np.array([tab.host_index(str(c), "positive" if p else "negative")
                     for c, p in zip(cohort["cd16a"], cohort["pdl1_positive"])])
    days = int(np.ceil(follow_up_h / 24.0))
    H = days * 24
    steppers, schedules = [], []
    for (reg, pk), p in zip(plan.pairs, pk_params):
        steppers.append(PKStepper(pk, p, reg.route))
        times, doses = reg.amounts_mg(H, cohort["weight"], cohort["bsa"])
        hours = np.round(times).astype(int)
        schedules.append({int(h): doses[:, k] for k, h in enumerate(hours)})
    ab = list(plan.antibodies)
    c_sat = plan.saturation_nM * np.array([tab.hooks.her2_factor(b.her2) for b in S])  # (N,) nM
    tS, tR = tab.patient_tables(bS, host), tab.patient_tables(bR, host)
    zero = np.zeros((N, len(drugs)))
    base_S = interpolate(tS, np.arange(N), zero, tab)[:, 0]
    base_R = interpolate(tR, np.arange(N), zero, tab)[:, 0]
    dS = np.zeros((N, days, 2, 3), dtype=np.float32)
    dR = np.zeros((N, days, 2, 3), dtype=np.float32)
    by = np.zeros((N, days, 2), dtype=np.float32)
    others = [k for k in range(len(drugs)) if k not in plan.cross]
    partial = bool(plan.cross) and bool(others)
    none_cross = plan.pretreated and not plan.cross   # no drug on a prior target: nothing is scaled
    xS = np.zeros((N, days, 2), dtype=np.float32) if partial or none_cross else None
    xR = np.zeros((N, days, 2), dtype=np.float32) if partial or none_cross else None

    def read(table, pid, c):
        """Table values at concentrations c (rows of patients pid), binding-site barrier included."""
        v = interpolate(table, pid, c, tab)
        if ab:
            phi = reached_fraction(c[:, ab].sum(axis=1), c_sat[pid])[:, None]
            c0 = c.copy()
            c0[:, ab] = 0.0
            v = phi * v + (1.0 - phi) * interpolate(table, pid, c0, tab)
        return v

    brain_needed = np.flatnonzero(cohort["brain_mets"] | cohort["occult_brain"])
    mask = inert_mask(plan, cohort)
    w = window_h
    hour = 0
    for d0 in range(0, days, block_days):
        nd = min(block_days, days - d0)
        body = np.zeros((N, nd * 24, len(drugs)))
        brain = np.zeros((N, nd * 24, len(drugs)))
        for k in range(nd * 24):
            for j, st in enumerate(steppers):
                st.step(schedules[j].get(hour))
                c = st.concentration()
                body[:, k, plan.col[j]] += c * plan.scale_body[j]
                brain[:, k, plan.col[j]] += c * plan.scale_brain[j]
            hour += 1
        for site, conc, who in ((0, body, np.arange(N)), (1, brain, brain_needed)):
            if len(who) == 0:
                continue
            n = len(who)
            # mean concentration over windows of w hours, then the rates at that mean
            cw = conc[who].reshape(n, nd * 24 // w, w, len(drugs)).mean(axis=2).reshape(-1, len(drugs))
            pid = np.repeat(who, nd * 24 // w)
            vS, vR = read(tS, pid, cw), read(tR, pid, cw)
            mrow = None if mask is None else mask[pid]
            if mrow is not None:
                on = np.flatnonzero(mrow.any(axis=1))
                if len(on):
                    c0 = np.where(mrow[on], 0.0, cw[on])
                    vS[on, 0], vR[on, 0] = read(tS, pid[on], c0)[:, 0], read(tR, pid[on], c0)[:, 0]
            if partial:
                cx = cw.copy() if mrow is None else np.where(mrow, 0.0, cw)
                cx[:, others] = 0.0
                for x, table, base in ((xS, tS, base_S), (xR, tR, base_R)):
                    v = read(table, pid, cx)[:, 0].reshape(n, nd, 24 // w).mean(axis=2)
                    x[who, d0:d0 + nd, site] = v - base[who, None]
            vS = vS.reshape(n, nd, 24 // w, 4).mean(axis=2)
            vR = vR.reshape(n, nd, 24 // w, 4).mean(axis=2)
            vS[:, :, 0] -= base_S[who, None]
            vR[:, :, 0] -= base_R[who, None]
            dS[who, d0:d0 + nd, site] = vS[:, :, :3]
            dR[who, d0:d0 + nd, site] = vR[:, :, :3]
            by[who, d0:d0 + nd, site] = vS[:, :, 3]
    return DailyRates(dS, dR, by, xS, xR, np.column_stack([base_S, base_R]).astype(float))
