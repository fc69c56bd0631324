"""Virtual trials: trial spec (TOML) -> cohort -> PK -> exposure-response -> lesions -> RECIST -> statistics.

Pipeline (each stage a function; exposure-response tables kept in an explicit, content-keyed cache):

1. :func:`load_trial` reads ``models/trials/NAME.toml`` (arms = regimens, population +
   eligibility, follow-up, assessment interval, subgroups, and for calibration trials the
   observed read-outs with sources: :data:`METRICS`; ``[trial.cns_response]`` gives the trial's CNS
   response criterion, ``volume_decrease`` or ``diameter_decrease`` with a source, default RANO-BM).
2. :func:`prepare_trial` samples the cohort (seeded), randomises it to the arms, computes every
   patient's hourly PK (:class:`her2sim.trial.pk.HourlyPK`) and turns the free tumour and brain
   concentrations into daily mean growth-rate changes through the arm's exposure-response table
   (:func:`her2sim.trial.exposure.compute_table`, batch path, kept in a content-keyed
   :class:`her2sim.trial.arms.TableCache`); see :mod:`her2sim.trial.arms`. This is independent
   of the calibrated tumour parameters.
3. :func:`evaluate` grows the lesions with the tumour parameters (:func:`her2sim.trial.tumour.grow`),
   assesses RECIST 1.1 at the scheduled scans and computes PFS, response rates, hazard ratios and
   subgroups. Calibration re-runs only this stage.

OS is not modelled (no post-progression therapy or death model): trials report PFS, ORR, DCR, CBR.

Scale-out: :func:`her2sim.trial.scaleout.run_trial` runs stages 2-3 in blocks of patients through
:mod:`her2sim.trial.scaleout` on any scheduler of :mod:`her2sim.executors` (this process, local
processes, a dask cluster), with results identical to :func:`prepare_trial` + :func:`evaluate`,
which keep every arm's daily rates in memory so that calibration can re-run stage 3 alone.
:func:`run_trial_task` (plain dict in, plain dict out) maps many whole trials (seeds, parameter
sets) over the same schedulers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from ..validate import MAX_PATIENTS, check_count, check_seed
from .arms import TableCache, arm_exposure
from .exposure import scheduler_for
# stage 2 moved to trial.arms in version 2; these names keep working from here
from .arms import ArmPlan, cross_columns, exposure, exposure_stepped, her2_antibodies, plan_arm  # noqa: F401
from .arms import model_drugs, reached_fraction  # noqa: F401
from .brain import RANO_BM_DECREASE, cns_first, cns_response_decrease, micromet_speed, new_lesion_calls, new_lesion_day
from .files import check_keys, quantity, read, require, require_source
from .hooks import load_hooks
from .immunity import is_checkpoint_arm, tcell_kill
from .population import Cohort, PopulationSpec, load_population, sample_population
from .recist import assess, rates
from .regimen import load_regimen
from .survival import cox_single, kaplan_meier, logrank, median_survival
from .tumour import DailyRates, TumourParameters, grow, load_tumour

HOURS_PER_MONTH = 730.5
#: files :meth:`TrialResult.save` writes
OUT_FILES = ("patients.csv", "summary.json", "summary.txt", "trial.png")
#: longest follow-up a trial spec may ask for: PK and growth are simulated on an hourly/daily grid
#: over the whole follow-up, ~120 MB per 1,000-patient block for 24 months, so ~600 MB at 10 years
MAX_FOLLOW_UP_H = 10 * 8766.0
#: shortest assessment interval: tumour sizes are computed per day
MIN_ASSESSMENT_H = 24.0
#: calibration read-outs: PFS (median, HR, rate at a time), ORR, and CNS outcomes: ``cns_orr`` (share of
#: patients with measured brain metastases whose brain lesion shrinks by the trial's CNS response
#: criterion, ``[trial.cns_response]``, default RANO-BM >= 30% in diameter), ``cns_first_progression``
#: (share of the arm whose first progression is, or includes, CNS progression: CEREBEL's read-out),
#: ``median_cns_pfs`` (median CNS-PFS of the patients with measured brain metastases)
METRICS = ("median_pfs", "hazard_ratio", "pfs_rate", "orr", "cns_orr", "cns_first_progression", "median_cns_pfs")
#: RANO-BM partial response of a brain target lesion (Lin et al. 2015 Lancet Oncol 16:e270): >= 30% decrease
CNS_RESPONSE_DECREASE = 0.30
SUBGROUPS = ("hr_positive", "pik3ca", "pten_loss", "cd16a", "brain_mets", "pdl1_positive", "her2")


@dataclass(frozen=True)
class Arm:
    """A trial arm: its regimens, or for a physician's-choice arm ``choices`` (each patient gets one
    :class:`~her2sim.trial.arms.Choice` by its share; ``regimens`` is then empty)."""

    name: str
    regimens: tuple
    control: bool = False
    ratio: float = 1.0
    choices: tuple = ()
    #: a checkpoint inhibitor is among the regimens (her2sim.trial.immunity); None: look it up when needed
    checkpoint: bool | None = None


@dataclass(frozen=True)
class Target:
    """An observed calibration read-out: metric, arm (or experimental arm for HRs), value, subgroup."""

    metric: str
    arm: str
    value: float
    at_months: float | None = None
    subgroup: dict = field(default_factory=dict)
    source: str = ""
    #: patients behind the published number (the denominator of a share, the arm of a median, both arms
    #: of a hazard ratio); None: not given (the calibration then uses a reference arm size)
    n: int | None = None


@dataclass(frozen=True)
class TrialSpec:
    name: str
    role: str                  # "calibration" or "held_out"
    population: PopulationSpec
    tumour: TumourParameters
    arms: tuple
    follow_up_h: float
    assessment_h: float
    subgroups: tuple
    targets: tuple = ()
    description: str = ""
    source: str = ""
    path: str = ""
    #: the model whose network gives the exposure-response tables: a bundled name or a model file path
    model: str = "default"
    #: diameter decrease of a brain target lesion that counts as CNS response ([trial.cns_response])
    cns_response_decrease: float = RANO_BM_DECREASE

    @property
    def control(self) -> Arm:
        return next(a for a in self.arms if a.control)


_TRIAL_KEYS = {"name", "description", "source", "role", "population", "eligibility", "follow_up", "assessment_interval",
               "arm", "subgroups", "observed", "tumour", "model", "cns_response"}


def trial_model(head: dict, path: Path) -> str:
    """The trial's ``model`` key (default ``"default"``): a bundled model name, or a path to a model
    file (relative paths are relative to the trial file); its ``[virtual_trial]`` table is checked
    here (:func:`her2sim.trial.hooks.load_hooks`), so a model that cannot run trials is refused
    before any work."""
    model = head.get("model", "default")
    if not isinstance(model, str) or not model.strip():
        raise ModelFileError(f"model must be a bundled model name or a path to a model file, got {model!r}",
                             path=str(path), entry="trial.model")
    p = Path(model)
    if (p.suffix == ".toml" or len(p.parts) > 1) and not p.is_absolute():
        model = str((path.parent / p).resolve())
    load_hooks(model)
    return model



def _arm_has_checkpoint(arm: Arm, drugs, path) -> bool:
    """Whether the arm's patients get a checkpoint inhibitor; a physician's-choice arm must give one in all
    of its options or in none (the T-cell channel is per arm, not per option)."""
    if not arm.choices:
        return is_checkpoint_arm(arm.regimens, drugs)
    flags = {is_checkpoint_arm(c.regimens, drugs) for c in arm.choices}
    if len(flags) > 1:
        raise ModelFileError(f"arm {arm.name!r}: a checkpoint inhibitor in only some physician's-choice options is "
                             "not supported; give it in every option or in none", path=str(path), entry="trial.arm")
    return flags.pop()

def load_trial(name_or_path: str | Path) -> TrialSpec:
    """Read and validate a trial spec (bundled name such as ``"emilia_like"`` or a path)."""
    path, head, _data = read("trial", name_or_path)
    check_keys(head, _TRIAL_KEYS, path, "trial")
    name = require(head, "name", path, "trial")
    source = require_source(head, path, "trial")
    role = require(head, "role", path, "trial")
    if role not in ("calibration", "held_out"):
        raise ModelFileError(f"role must be 'calibration' or 'held_out', got {role!r}", path=str(path), entry="trial")
    pop = load_population(require(head, "population", path, "trial"))
    elig = head.get("eligibility", {})
    if not isinstance(elig, dict):
        raise ModelFileError("eligibility must be a table {feature = {value = ..., source = ...}}", path=str(path),
                             entry="trial.eligibility")
    over = {}
    for k, v in elig.items():
        if not isinstance(v, dict) or "value" not in v:
            raise ModelFileError(f"eligibility {k!r} must be {{value = ..., source = \"...\"}}", path=str(path),
                                 entry=f"trial.eligibility.{k}")
        require_source(v, path, f"trial.eligibility.{k}")
        over[k] = v["value"]
    try:
        pop = pop.with_eligibility(over)
    except (ValueError, KeyError) as exc:
        raise ModelFileError(str(exc).strip("'\""), path=str(path), entry="trial.eligibility") from None
    tumour = load_tumour(head.get("tumour", pop.tumour))
    follow = quantity(require(head, "follow_up", path, "trial"), "h", path, "trial.follow_up")
    assess_h = quantity(require(head, "assessment_interval", path, "trial"), "h", path, "trial.assessment_interval")
    if not np.isfinite(follow) or not 0 < follow <= MAX_FOLLOW_UP_H:
        raise ModelFileError(f"follow_up must be a finite time > 0 and at most {MAX_FOLLOW_UP_H / 8766:g} years "
                             "(PK is simulated hourly over the whole follow-up), got "
                             f"{head['follow_up']!r}", path=str(path), entry="trial.follow_up")
    if not MIN_ASSESSMENT_H <= assess_h < follow:
        raise ModelFileError(f"assessment_interval must be at least {MIN_ASSESSMENT_H / 24:g} day (scans are daily "
                             "at the finest) and shorter than follow_up, got "
                             f"{head['assessment_interval']!r}; trials scan every 6-12 weeks", path=str(path),
                             entry="trial.assessment_interval")
    arms_raw = head.get("arm")
    if not isinstance(arms_raw, list) or not arms_raw:
        raise ModelFileError("needs at least one [[trial.arm]] with name and regimens", path=str(path), entry="trial")
    arms = []
    for k, a in enumerate(arms_raw):
        entry = f"trial.arm[{k}]"
        if not isinstance(a, dict):
            raise ModelFileError(f"each arm must be a table [[trial.arm]] with name and regimens, got {a!r}",
                                 path=str(path), entry=entry)
        check_keys(a, {"name", "regimens", "control", "ratio", "description", "choice"}, path, entry)
        regimens, choices = arm_regimens(a, path, entry)
        ratio = a.get("ratio", 1.0)
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1e6:
            raise ModelFileError(f"ratio must be a finite number > 0 (e.g. 2 for 2:1 randomisation), got {ratio!r}",
                                 path=str(path), entry=entry)
        arms.append(Arm(require(a, "name", path, entry), regimens, bool(a.get("control", False)), float(ratio),
                        choices))
    if len(arms) > 1 and sum(a.control for a in arms) != 1:
        raise ModelFileError("exactly one arm must have control = true", path=str(path), entry="trial.arm")
    if len(arms) == 1:
        arms[0] = Arm(arms[0].name, arms[0].regimens, True, arms[0].ratio, arms[0].choices)
    model = trial_model(head, path)
    drugs = model_drugs(model)
    arms = [replace(a, checkpoint=_arm_has_checkpoint(a, drugs, path)) for a in arms]
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ModelFileError(f"arm names must be unique, got {names}", path=str(path), entry="trial.arm")
    subgroups = tuple(head.get("subgroups", ("hr_positive", "pik3ca", "cd16a", "brain_mets")))
    bad = [s for s in subgroups if s not in SUBGROUPS]
    if bad:
        raise ModelFileError(f"unknown subgroup(s) {bad}; known: {SUBGROUPS}", path=str(path), entry="trial.subgroups")
    targets = []
    for k, o in enumerate(head.get("observed", [])):
        entry = f"trial.observed[{k}]"
        if role != "calibration":
            raise ModelFileError("observed read-outs are only allowed in calibration trials (held-out trials are "
                                 "never tuned to)", path=str(path), entry=entry)
        check_keys(o, {"metric", "arm", "value", "at", "subgroup", "source", "n"}, path, entry)
        src = require_source(o, path, entry)
        metric = require(o, "metric", path, entry)
        if metric not in METRICS:
            raise ModelFileError(f"metric must be one of {METRICS}, got {metric!r}", path=str(path), entry=entry)
        arm = require(o, "arm", path, entry)
        if arm not in names:
            raise ModelFileError(f"arm {arm!r} is not one of {names}", path=str(path), entry=entry)
        if metric in ("median_pfs", "median_cns_pfs"):
            val = quantity(o["value"], "h", path, entry) / HOURS_PER_MONTH
        else:
            val = float(require(o, "value", path, entry, kind=float))
        at = quantity(o["at"], "h", path, entry) / HOURS_PER_MONTH if "at" in o else None
        targets.append(Target(metric, arm, val, at, dict(o.get("subgroup", {})), src, observed_n(o, path, entry)))
    return TrialSpec(name, role, pop, tumour, tuple(arms), follow, assess_h, subgroups, tuple(targets),
                     head.get("description", ""), source, str(path), model,
                     cns_response_decrease(head.get("cns_response"), path))


def observed_n(o: dict, path: Path, entry: str) -> int | None:
    """The optional ``n`` of a ``[[trial.observed]]`` table: patients behind the read-out, a whole
    number 1-1,000,000 (ModelFileError naming the entry otherwise); None if absent."""
    if "n" not in o:
        return None
    n = o["n"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1_000_000:
        raise ModelFileError(f"n must be the number of patients behind the read-out, a whole number 1-1000000 "
                             f"(e.g. n = 397), got {n!r}", path=str(path), entry=entry)
    return int(n)


def arm_regimens(a: dict, path: Path, entry: str) -> tuple[tuple, tuple]:
    """(regimens, choices) of an arm table: ``regimens = [...]``, or for a physician's-choice arm
    ``[[trial.arm.choice]]`` tables with ``regimens``, ``share`` (> 0; normalised over the
    options) and ``source`` (the trial's published shares)."""
    def load(regs, where):
        if not isinstance(regs, list) or not regs:
            raise ModelFileError("needs regimens = [...] with at least one regimen", path=str(path), entry=where)
        try:
            return tuple(load_regimen(r) for r in regs)
        except (ModelFileError, KeyError) as exc:
            raise ModelFileError(f"regimen problem: {exc}", path=str(path), entry=where) from None

    if "choice" not in a:
        if "regimens" not in a:
            raise ModelFileError("an arm needs regimens = [...] or [[trial.arm.choice]] options", path=str(path),
                                 entry=entry)
        return load(a["regimens"], entry), ()
    if "regimens" in a:
        raise ModelFileError("give either regimens or [[trial.arm.choice]] options, not both", path=str(path),
                             entry=entry)
    opts = a["choice"]
    if not isinstance(opts, list) or len(opts) < 2:
        raise ModelFileError("a physician's-choice arm needs at least two [[trial.arm.choice]] options",
                             path=str(path), entry=entry)
    from .arms import Choice

    choices = []
    for j, c in enumerate(opts):
        where = f"{entry}.choice[{j}]"
        if not isinstance(c, dict):
            raise ModelFileError("each option must be a table with regimens, share and source", path=str(path),
                                 entry=where)
        check_keys(c, {"name", "regimens", "share", "source", "description"}, path, where)
        src = require_source(c, path, where)
        share = c.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1e6:
            raise ModelFileError(f"share must be a number > 0 (the option's share of the arm), got {share!r}",
                                 path=str(path), entry=where)
        regs = load(c.get("regimens"), where)
        choices.append(Choice(str(c.get("name", " + ".join(r.name for r in regs))), regs, float(share), src))
    total = sum(c.share for c in choices)
    return (), tuple(Choice(c.name, c.regimens, c.share / total, c.source) for c in choices)


# ----------------------------------------------------------------------------- stage 2: exposure (arms.py)
@dataclass
class PreparedTrial:
    """Everything that does not depend on the calibrated tumour parameters."""

    spec: TrialSpec
    cohort: Cohort
    arm_index: np.ndarray
    rates: list                 # DailyRates per arm
    z_growth: np.ndarray
    z_resistant: np.ndarray
    split: np.ndarray           # body-lesion split fraction
    dropout_u: np.ndarray
    seed: int
    timings: dict


@dataclass(frozen=True)
class SampledTrial:
    """The seeded random draws of a trial, for all patients in cohort order."""

    cohort: Cohort
    arm_index: np.ndarray       # (N,) arm of each patient
    z_growth: np.ndarray        # (N,) standard normal: growth-rate IIV
    z_resistant: np.ndarray     # (N,) standard normal: HER2-lower clone share IIV
    split: np.ndarray           # (N,) share of the first body lesion in the baseline SLD
    dropout_u: np.ndarray       # (N,) uniform: drop-out time


def check_trial_size(spec: TrialSpec, patients, seed, *, names: tuple[str, str] = ("patients", "seed")) -> None:
    """Raise InvalidArgument/TooLargeError unless ``patients`` (at least one per arm, at most
    :data:`~her2sim.validate.MAX_PATIENTS`) and ``seed`` (>= 0) are usable; nothing is allocated.
    ``names``: what the caller calls the two arguments (``--patients`` on the command line)."""
    check_count(patients, names[0], minimum=len(spec.arms), limit=MAX_PATIENTS,
                fix=f"at least one patient per arm ({len(spec.arms)} arms)",
                split="run several trials with different seeds and pool their patients tables")
    check_seed(seed, names[1])


def sample_trial(spec: TrialSpec, patients: int, seed: int) -> SampledTrial:
    """Sample the cohort and randomise it to the arms by their ratios (one rng stream from ``seed``).
    Individual PK parameters come later, from the stream ``[seed, arm]`` of each arm."""
    check_trial_size(spec, patients, seed)
    patients = int(patients)
    rng = np.random.default_rng(seed)
    cohort = sample_population(spec.population, patients, rng)
    ratios = np.array([a.ratio for a in spec.arms])
    counts = np.floor(patients * ratios / ratios.sum()).astype(int)
    counts[: patients - counts.sum()] += 1
    arm_index = rng.permutation(np.repeat(np.arange(len(spec.arms)), counts))
    z_g, z_r = rng.normal(size=patients), rng.normal(size=patients)
    split = rng.uniform(0.3, 0.7, patients)
    return SampledTrial(cohort, arm_index, z_g, z_r, split, rng.random(patients))


def prepare_trial(spec: TrialSpec | str | Path, patients: int = 200, seed: int = 0, *, scheduler=None,
                  progress: bool = False, cache: TableCache | None = None,
                  workers: int | None = None) -> PreparedTrial:
    """Stage 1-2: sample ``patients`` (all arms together, randomised by the arms' ratios) and
    compute each arm's daily exposure-driven rates; ``cache`` (:class:`~her2sim.trial.arms.TableCache`,
    default a new one) shares exposure-response tables between calls; tables are computed on
    ``scheduler`` (:mod:`her2sim.executors`; ``workers``: deprecated alias, > 1 means "processes")."""
    import time

    scheduler = scheduler_for(workers, scheduler)

    if not isinstance(spec, TrialSpec):
        spec = load_trial(spec)
    clock = time.perf_counter()
    s = sample_trial(spec, int(patients), seed)
    cohort, arm_index = s.cohort, s.arm_index
    rates_, timings = [], {"sample_s": time.perf_counter() - clock}
    cache = TableCache() if cache is None else cache
    for a, arm in enumerate(spec.arms):
        t0 = time.perf_counter()
        sub = cohort.subset(arm_index == a)
        r, tab = arm_exposure(arm, sub, spec.follow_up_h, np.random.default_rng([seed, a]), tumour=spec.tumour,
                              scheduler=scheduler, population=spec.population, cache=cache, model=spec.model)
        rates_.append(r)
        timings[f"arm{a}_s"] = time.perf_counter() - t0
        timings[f"arm{a}_table_s"] = tab.wall_time_s
        if progress:
            print(f"  arm {arm.name}: {sub.n} patients, {time.perf_counter() - t0:.1f} s", flush=True)
    return PreparedTrial(spec, cohort, arm_index, rates_, s.z_growth, s.z_resistant, s.split, s.dropout_u, int(seed),
                         timings)


# ----------------------------------------------------------------------------- stage 3: tumours and read-outs
@dataclass
class TrialResult:
    """Per-patient outcomes (``patients``: a pandas DataFrame) and the trial's summary statistics."""

    spec: TrialSpec
    patients: object
    summary: dict
    curves: dict
    sld: dict
    timings: dict

    def report(self) -> str:
        return format_summary(self)

    def save(self, out, *, report: str | None = None, figure: bool = True) -> tuple:
        """Write :data:`OUT_FILES` into the folder ``out`` (created if its parent exists), each file
        atomically (:mod:`her2sim.io.atomic`): patients.csv, summary.json, summary.txt (``report``,
        default :meth:`report`) and, if ``figure``, trial.png. Returns the paths written.
        Raises InvalidArgument for an unusable folder before writing anything."""
        import json

        from ..io.atomic import atomic_path, atomic_write_text
        from ..validate import check_output_dir

        out = check_output_dir(out, "out")
        out.mkdir(exist_ok=True)
        written = [out / "patients.csv", out / "summary.json", out / "summary.txt"]
        with atomic_path(written[0]) as tmp:
            self.patients.to_csv(tmp, index=False)
        atomic_write_text(written[1], json.dumps(self.summary, indent=1, default=float))
        atomic_write_text(written[2], (self.report() if report is None else report) + "\n")
        if figure:
            from .plots import trial_figure

            written.append(out / "trial.png")
            trial_figure(self, written[-1])
        return tuple(written)


@dataclass(frozen=True)
class TumourInputs:
    """Per-patient lesion inputs of a trial (all patients, in cohort order) and the effect knobs.

    g : (N,) untreated growth rate 1/h; f : (N,) baseline HER2-lower clone share; d0 : (N, J)
    baseline diameters in mm (NaN = no lesion; last column the brain); scales : (signal,
    payload, chemo) in-vitro -> in-vivo factors; resistance_rate : 1/h (None = the tumour file's);
    pretreated_factor : rho applied to the cross-resistant signalling change (1 if not pre-treated).
    """

    g: np.ndarray
    f: np.ndarray
    d0: np.ndarray
    scales: tuple
    resistance_rate: float | None
    pretreated_factor: float = 1.0
    #: (N,) T-cell kill rate 1/h under a checkpoint inhibitor (her2sim.trial.immunity); None: none
    tcell: np.ndarray | None = None
    #: (N,) Exp(1) thresholds of the new-brain-lesion hazard (her2sim.trial.brain); None: no new lesions
    brain_threshold: np.ndarray | None = None
    #: 1/h, loss of the chemotherapy effect (version 6); None: the signalling ``resistance_rate``
    chemo_resistance_rate: float | None = None
    #: cell-loss factor phi of :func:`her2sim.trial.tumour.in_vivo_effects` (version 6); None: no cell loss
    cell_loss_factor: float | None = None


def tumour_inputs(spec: TrialSpec, cohort: Cohort, z_growth: np.ndarray, z_resistant: np.ndarray,
                  split: np.ndarray, *, growth_rate: float | None = None, growth_cv: float | None = None,
                  signal_scale: float | None = None, payload_scale: float | None = None,
                  chemo_scale: float | None = None, resistance_rate: float | None = None,
                  pretreated_signal_factor: float | None = None,
                  resistant_fraction: float | None = None, chemo_resistance_rate: float | None = None,
                  cell_loss_factor: float | None = None) -> TumourInputs:
    """Patient-level tumour parameters from the trial's random numbers; keyword overrides are the
    calibration knobs (growth_rate, resistance_rate and chemo_resistance_rate in 1/h;
    resistant_fraction = population median; cell_loss_factor: version 6, see
    :func:`her2sim.trial.tumour.in_vivo_effects`)."""
    tp = spec.tumour
    g_med = tp.growth_rate if growth_rate is None else growth_rate
    g_cv = tp.growth_cv if growth_cv is None else growth_cv
    scales = [d if v is None else v for v, d in zip((signal_scale, payload_scale, chemo_scale), tp.scales)]
    rho = 1.0
    if spec.population.pretreated:
        rho = tp.pretreated_signal_factor if pretreated_signal_factor is None else pretreated_signal_factor
    f_med, f_cv = spec.population.continuous["resistant_fraction"]
    if resistant_fraction is not None:
        f_med = resistant_fraction
    N = cohort.n
    g = g_med * np.exp(np.sqrt(np.log1p(g_cv ** 2)) * z_growth)
    f = np.minimum(f_med * np.exp(np.sqrt(np.log1p(f_cv ** 2)) * z_resistant), 0.5)
    if "resistant_floor" in cohort.features:  # HER2-heterogeneous tumours selected by prior therapy (trial.lines)
        f = np.maximum(f, cohort["resistant_floor"])
    nb = tp.body_lesions
    fr = np.column_stack([split, 1 - split] + [np.full(N, 0.5)] * max(nb - 2, 0))[:, :nb]
    fr = fr / fr.sum(axis=1, keepdims=True)
    d_body = cohort["baseline_sld"][:, None] * fr
    d_brain = np.where(cohort["brain_mets"], tp.brain_lesion_diameter,
                       np.where(cohort["occult_brain"], tp.occult_lesion_diameter, np.nan))
    feats = cohort.features
    tcell = (tcell_kill(feats["pdl1_positive"], feats["tils"], tp.tcell_kill_rate) if "tils" in feats else None)
    return TumourInputs(g, f, np.column_stack([d_body, d_brain]), tuple(scales), resistance_rate, float(rho),
                        tcell, feats.get("brain_threshold"),
                        tp.chemo_resistance_rate if chemo_resistance_rate is None else chemo_resistance_rate,
                        tp.cell_loss_factor if cell_loss_factor is None else cell_loss_factor)


def assessment_times_h(spec: TrialSpec) -> np.ndarray:
    """Scheduled RECIST assessments (h from randomisation; 0 = baseline)."""
    return np.arange(0.0, spec.follow_up_h + 1e-9, spec.assessment_h)


def arm_outcomes(spec: TrialSpec, rates: DailyRates, inputs: TumourInputs, rows: np.ndarray,
                 brain_target: np.ndarray, dropout_u: np.ndarray, *, arm: Arm | None = None) -> dict:
    """Grow the lesions of the patients ``rows`` (indices into ``inputs``; ``rates``, ``brain_target``
    and ``dropout_u`` are already theirs), assess RECIST at the scheduled scans and censor drop-outs.
    ``arm``: the arm they receive; with a checkpoint inhibitor in it, the T-cell kill of
    :mod:`her2sim.trial.immunity` acts (None: no T-cell channel). New brain lesions appear by the
    hazard of :mod:`her2sim.trial.brain` in patients with occult or known brain disease.

    Returns per-patient arrays: pfs_months, progressed, best_response, best_change_pct,
    resistant_share (HER2-lower share of the first lesion at PD or the end), pd_new_brain,
    cns_pfs_months and cns_progressed (:func:`cns_progression`), and sld (n, assessments) in mm. Each patient's outcome depends only on that patient's inputs.
    """
    tp = spec.tumour
    g, f, d0 = inputs.g[rows], inputs.f[rows], inputs.d0[rows]
    n = len(rows)
    site = np.array([0] * tp.body_lesions + [1])
    assess_h = assessment_times_h(spec)
    assess_day = np.round(assess_h / 24.0).astype(int)
    tcell = None
    if arm is not None and inputs.tcell is not None and (
            arm.checkpoint if arm.checkpoint is not None else is_checkpoint_arm(arm.regimens, model_drugs(spec.model))):
        tcell = inputs.tcell[rows]
    last = rates.dS.shape[1]
    # only the scans and the last day are read: grow returns those (A + 1 columns)
    out_days = np.append(np.minimum(assess_day, last), last)
    dOut, sOut = grow(rates, tp, g, f, d0, site, scales=inputs.scales, resistance_rate=inputs.resistance_rate,
                      pretreated_signal_factor=inputs.pretreated_factor, tcell=tcell,
                      chemo_resistance_rate=inputs.chemo_resistance_rate, cell_loss_factor=inputs.cell_loss_factor,
                      days_out=out_days)
    dA = dOut[:, :-1]                                                # (n, A, J)
    target = np.isfinite(d0)
    target[:, -1] &= brain_target
    visible = np.where(dA >= tp.detection_limit, dA, 0.0)
    sld = np.where(target[:, None, :], visible, 0.0).sum(axis=2)
    sld[:, 0] = np.where(target, d0, 0.0).sum(axis=1)
    all_gone = (np.where(target[:, None, :], visible, 0.0) == 0).all(axis=2)
    if inputs.brain_threshold is not None:   # new brain lesions by the hazard of her2sim.trial.brain
        lam = tp.resistance_rate if inputs.resistance_rate is None else inputs.resistance_rate
        risk = np.flatnonzero(np.isfinite(d0[:, -1]))   # occult or known brain disease: the others never
        speed = micromet_speed(rates, g[risk], f[risk], tp.growth_rate, scales=inputs.scales, resistance_rate=lam,
                               pretreated_signal_factor=inputs.pretreated_factor,
                               tcell=None if tcell is None else tcell[risk],
                               chemo_resistance_rate=inputs.chemo_resistance_rate,
                               cell_loss_factor=inputs.cell_loss_factor, rows=risk)
        new_day = np.full(n, np.inf)
        new_day[risk] = new_lesion_day(speed, tp.new_brain_lesion_hazard, inputs.brain_threshold[rows][risk],
                                       np.ones(len(risk), bool))
    else:
        new_day = np.full(n, np.inf)
    new = new_lesion_calls(new_day, assess_day)
    r = assess(sld, all_gone, new)
    k = r["progression_index"]
    t_pd = np.where(k > 0, assess_h[np.maximum(k, 0)], np.inf)
    t_drop = -np.log(dropout_u) / max(tp.dropout_hazard, 1e-300)
    last_before_drop = assess_h[np.maximum(np.searchsorted(assess_h, t_drop, side="right") - 1, 0)]
    cens = np.minimum(assess_h[-1], last_before_drop)
    event = t_pd <= cens
    # share at the scan of progression, or on the last day
    at = np.where(k > 0, np.maximum(k, 0), len(assess_day))
    cns_t, cns_event = cns_progression(dA[:, :, -1], brain_target, new, assess_h, cens)
    # best change of a measured brain lesion before CNS progression or censoring (NaN: none measured)
    db = np.where(assess_h[None, :] < cns_t[:, None], dA[:, :, -1], np.nan)[:, 1:] / d0[:, -1:] - 1.0
    seen = brain_target & np.isfinite(db).any(axis=1)
    cns_best = np.where(seen, np.nanmin(np.where(np.isfinite(db), db, np.inf), axis=1), np.nan) * 100.0
    return {"pfs_months": np.where(event, t_pd, cens) / HOURS_PER_MONTH, "progressed": event,
            "cns_pfs_months": cns_t / HOURS_PER_MONTH, "cns_progressed": cns_event, "cns_best_change_pct": cns_best,
            "best_response": np.asarray(r["best"]).astype(str), "best_change_pct": np.asarray(r["best_change"], float),
            "resistant_share": sOut[np.arange(n), at, 0],
            "pd_new_brain": event & new[np.arange(n), np.maximum(k, 0)],
            "new_brain_lesion_months": new_day * 24.0 / HOURS_PER_MONTH, "sld": sld}


#: CNS progression of a measured brain lesion: growth over its nadir (RANO-BM, Lin et al. 2015 Lancet
#: Oncol 16:e270: >= 20% increase in the sum of CNS target lesion diameters)
CNS_PROGRESSION_INCREASE = 0.20


def cns_progression(brain_d: np.ndarray, brain_target: np.ndarray, new_brain: np.ndarray, assess_h: np.ndarray,
                    censor_h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CNS progression as its own event, whatever happens outside the brain (patients stay on
    treatment in the simulation): the first scan at which a measured brain lesion is
    :data:`CNS_PROGRESSION_INCREASE` above its nadir, or a new brain lesion is seen.

    brain_d : (n, A) brain lesion diameter (mm) at the assessments (NaN: none); brain_target : (n,)
    a measured brain lesion at baseline; new_brain : (n, A) a new brain lesion is called; censor_h :
    (n,) censoring time (drop-out or end of follow-up). Returns (time h, event) per patient.
    """
    d = np.nan_to_num(brain_d, nan=0.0)
    nadir = np.minimum.accumulate(d, axis=1)
    grown = brain_target[:, None] & (d >= (1.0 + CNS_PROGRESSION_INCREASE) * nadir) & (nadir > 0)
    hit = grown | new_brain
    hit[:, 0] = False
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    t = np.where(first > 0, assess_h[np.maximum(first, 0)], np.inf)
    event = t <= censor_h
    return np.where(event, t, censor_h), event


def patient_table(spec: TrialSpec, cohort: Cohort, arm_index: np.ndarray, inputs: TumourInputs, outcomes: dict):
    """The per-patient DataFrame: cohort features, arm, tumour inputs and outcomes (cohort order)."""
    import pandas as pd

    df = pd.DataFrame({k: v for k, v in cohort.features.items()})
    df["arm"] = [spec.arms[a].name for a in arm_index]
    df["growth_rate_per_day"] = inputs.g * 24
    df["resistant_fraction"] = inputs.f
    df["pfs_months"] = outcomes["pfs_months"]
    df["progressed"] = outcomes["progressed"]
    df["best_response"] = outcomes["best_response"].astype(str)
    df["best_change_pct"] = outcomes["best_change_pct"]
    df["resistant_share_at_pd_or_end"] = outcomes["resistant_share"]
    df["progression_by_new_brain_lesion"] = outcomes["pd_new_brain"]
    df["cns_pfs_months"] = outcomes["cns_pfs_months"]
    df["cns_progressed"] = outcomes["cns_progressed"]
    df["cns_best_change_pct"] = outcomes["cns_best_change_pct"]
    if "new_brain_lesion_months" in outcomes:
        df["new_brain_lesion_months"] = outcomes["new_brain_lesion_months"]
    return df


def merge_outcomes(parts: list, n: int) -> dict:
    """Scatter ``[(rows, outcomes)]`` of arms or blocks into cohort-ordered arrays (sld excluded)."""
    out = {}
    for rows, o in parts:
        for key, v in o.items():
            if key == "sld":
                continue
            if key not in out:
                out[key] = np.empty(n, dtype=object if v.dtype.kind == "U" else v.dtype)
            out[key][rows] = v
    return out


def evaluate(prep: PreparedTrial, **overrides) -> TrialResult:
    """Grow lesions, assess RECIST and compute statistics; keyword overrides are
    :func:`tumour_inputs`' calibration knobs (growth_rate and resistance_rate in 1/h;
    resistant_fraction = population median)."""
    import time

    clock = time.perf_counter()
    spec, coh = prep.spec, prep.cohort
    inputs = tumour_inputs(spec, coh, prep.z_growth, prep.z_resistant, prep.split, **overrides)
    months = assessment_times_h(spec) / HOURS_PER_MONTH
    parts, sld_store = [], {}
    for a, arm in enumerate(spec.arms):
        idx = np.flatnonzero(prep.arm_index == a)
        o = arm_outcomes(spec, prep.rates[a], inputs, idx, coh["brain_mets"][idx], prep.dropout_u[idx], arm=arm)
        parts.append((idx, o))
        sld_store[arm.name] = (months, o["sld"])
    df = patient_table(spec, coh, prep.arm_index, inputs, merge_outcomes(parts, coh.n))
    curves: dict = {}
    summary = summarise(spec, df, curves)
    return TrialResult(spec, df, summary, curves, sld_store, {**prep.timings, "evaluate_s": time.perf_counter() - clock})


def summarise(spec: TrialSpec, df, curves: dict) -> dict:
    """Per-arm PFS/response statistics, HRs vs control, subgroup HRs (computed from the patient table)."""
    out = {"trial": spec.name, "role": spec.role, "arms": {}, "comparisons": {}, "subgroups": {}}
    for arm in spec.arms:
        d = df[df.arm == arm.name]
        km = kaplan_meier(d.pfs_months.values, d.progressed.values)
        curves[arm.name] = km
        med, lo, hi = median_survival(km)
        sd_weeks = np.where(d.best_response.values == "SD", d.pfs_months.values * HOURS_PER_MONTH / 168.0, 0.0)
        rr = rates(d.best_response.values, sd_weeks)
        out["arms"][arm.name] = {"n": len(d), "events": int(d.progressed.sum()), "median_pfs": med,
                                 "median_pfs_ci": (lo, hi), "pfs_12mo": km.at(12.0), **rr}
        b = d[d.brain_mets.astype(bool)]
        if len(b):  # CNS-PFS of the patients with measured brain metastases at baseline
            cns = kaplan_meier(b.cns_pfs_months.values, b.cns_progressed.values)
            out["arms"][arm.name].update({"n_brain_mets": len(b), "median_cns_pfs": median_survival(cns)[0],
                                          "cns_pfs_12mo": cns.at(12.0),
                                          "cns_orr": cns_response_rate(b, spec.cns_response_decrease)})
        out["arms"][arm.name]["cns_progression_share"] = float(d.cns_progressed.mean()) if len(d) else float("nan")
        out["arms"][arm.name]["cns_first_progression"] = float(np.mean(cns_first(
            d.cns_progressed.values, d.cns_pfs_months.values, d.progressed.values, d.pfs_months.values))) \
            if len(d) else float("nan")
    ctrl = spec.control
    for arm in spec.arms:
        if arm is ctrl:
            continue
        d = df[df.arm.isin([arm.name, ctrl.name])]
        x = (d.arm == arm.name).values.astype(float)
        out["comparisons"][arm.name] = _compare(d.pfs_months.values, d.progressed.values, x)
        subs = {}
        for var in spec.subgroups:
            for level in sorted(set(d[var].astype(str))):
                m = (d[var].astype(str) == level).values
                subs[f"{var}={level}"] = _compare(d.pfs_months.values[m], d.progressed.values[m], x[m])
                subs[f"{var}={level}"]["n"] = int(m.sum())
        out["subgroups"][arm.name] = subs
    return out


def _compare(t, e, x) -> dict:
    try:
        c = cox_single(t, e, x)
        chi2, p = logrank(t, e, x)
        return {"hazard_ratio": c.hazard_ratio, "ci": (c.ci_low, c.ci_high), "cox_p": c.p_value, "logrank_chi2": chi2,
                "logrank_p": p}
    except ValueError as exc:
        return {"hazard_ratio": float("nan"), "ci": (float("nan"), float("nan")), "cox_p": float("nan"),
                "logrank_chi2": float("nan"), "logrank_p": float("nan"), "note": str(exc)}


def cns_response_share(best_change_pct: np.ndarray, decrease: float) -> float:
    """Share of the brain lesions whose best change ``best_change_pct`` (%, one per patient with a
    measured brain lesion) is a shrinkage by at least ``decrease`` (fraction of the diameter); NaN for none."""
    return float(np.mean(best_change_pct <= -100.0 * decrease)) if len(best_change_pct) else float("nan")


def cns_response_rate(b, decrease: float) -> float:
    """Share of the patients ``b`` (rows with a measured brain lesion) whose brain lesion shrank by at
    least ``decrease`` (fraction of its diameter) before CNS progression; NaN for none."""
    return cns_response_share(b.cns_best_change_pct.values, decrease)


def target_value(result: TrialResult, target: Target) -> float:
    """The simulated value of an observed read-out (same metric, arm, subgroup)."""
    df = result.patients
    return target_value_columns(result.spec, {k: df[k].to_numpy() for k in df.columns}, target)


def target_value_columns(spec: TrialSpec, cols: dict, target: Target) -> float:
    """:func:`target_value` on the patient table as ``{column: (N,) array}`` (no DataFrame needed)."""
    keep = np.ones(len(cols["arm"]), bool)
    for k, v in target.subgroup.items():
        keep &= np.asarray(cols[k]).astype(str) == str(v)
    arm = np.asarray(cols["arm"])
    if target.metric == "hazard_ratio":
        d = keep & ((arm == target.arm) | (arm == spec.control.name))
        return _compare(cols["pfs_months"][d], cols["progressed"][d], (arm[d] == target.arm).astype(float))[
            "hazard_ratio"]
    d = keep & (arm == target.arm)
    if target.metric == "orr":
        return rates(cols["best_response"][d])["ORR"]
    if target.metric == "cns_orr":
        decrease = getattr(spec, "cns_response_decrease", RANO_BM_DECREASE)   # duck-typed specs: RANO-BM
        b = d & np.asarray(cols["brain_mets"]).astype(bool)
        return cns_response_share(cols["cns_best_change_pct"][b], decrease)
    if target.metric == "cns_first_progression":
        first = cns_first(cols["cns_progressed"][d], cols["cns_pfs_months"][d], cols["progressed"][d],
                          cols["pfs_months"][d])
        return float(np.mean(first)) if d.any() else np.nan
    if target.metric == "median_cns_pfs":
        b = d & np.asarray(cols["brain_mets"]).astype(bool)
        return (median_survival(kaplan_meier(cols["cns_pfs_months"][b], cols["cns_progressed"][b]))[0] if b.any()
                else np.nan)
    km = kaplan_meier(cols["pfs_months"][d], cols["progressed"][d])
    if target.metric == "pfs_rate":
        return km.at(target.at_months)
    return median_survival(km)[0]


def format_summary(result: TrialResult) -> str:
    s = result.summary
    lines = [f"trial {s['trial']} ({'calibration trial' if s['role'] == 'calibration' else 'HELD-OUT prediction, not tuned'})"]
    for name, a in s["arms"].items():
        lo, hi = a["median_pfs_ci"]
        lines.append(f"  {name:<48} n={a['n']:<5d} events={a['events']:<5d} median PFS {a['median_pfs']:5.1f} mo "
                     f"(95% CI {lo:4.1f}-{hi:4.1f})  12-mo PFS {a['pfs_12mo']:.2f}  ORR {a['ORR']:.2f}  "
                     f"DCR {a['DCR']:.2f}  CBR {a.get('CBR', float('nan')):.2f}")
    lines.append("  CNS-first progression (new brain lesion or brain growth at or before any other progression): "
                 + ", ".join(f"{name} {a['cns_first_progression']:.0%}" for name, a in s["arms"].items()))
    for name, a in s["arms"].items():
        if "median_cns_pfs" in a:
            lines.append(f"  {name:<48} CNS-PFS (n={a['n_brain_mets']} with brain metastases): median "
                         f"{a['median_cns_pfs']:5.1f} mo, 12-mo {a['cns_pfs_12mo']:.2f}, CNS ORR {a['cns_orr']:.2f}; "
                         "CNS progression in "
                         f"{a['cns_progression_share']:.0%} of the arm")
    for name, c in s["comparisons"].items():
        lines.append(f"  HR {name} vs {result.spec.control.name}: {c['hazard_ratio']:.2f} "
                     f"(95% CI {c['ci'][0]:.2f}-{c['ci'][1]:.2f}), log-rank p={c['logrank_p']:.2g}")
    if result.spec.targets:
        lines.append("  calibration read-outs (observed -> simulated):")
        for t in result.spec.targets:
            sub = ",".join(f"{k}={v}" for k, v in t.subgroup.items())
            lines.append(f"    {t.metric:<12} {t.arm:<40} {sub:<14} {t.value:7.2f} -> {target_value(result, t):7.2f}")
    return "\n".join(lines)
