"""Run a virtual trial in blocks of patients on a scheduler: this process, local processes or dask.

The driver samples the cohort and every random number (:func:`~her2sim.trial.trial.sample_trial`,
the arms' individual PK parameters), builds each arm's exposure-response table once on the batch
path (:func:`~her2sim.trial.trial.plan_arm`) and ships that plan to the workers once. A task is
``(arm, first, last)``: the PK, exposure and lesions of that slice of the arm's patients, returned
as per-patient outcomes (a few numbers and the SLD at each scan). Memory per task is
O(block x days), so cohorts of any size run in bounded memory, and because every patient's
outcome depends only on that patient's draws the results equal the in-process path
(:func:`~her2sim.trial.trial.prepare_trial` + :func:`~her2sim.trial.trial.evaluate`) exactly, on
any scheduler and for any block size (``tests/test_trial_scaleout.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..executors import Progress, check_scheduler, map_tasks
from ..validate import MAX_OUTPUT_BYTES, check_count, check_size
from .arms import TableCache, exposure, plan_arm
from .exposure import scheduler_for
from .trial import (HOURS_PER_MONTH, TrialResult, TrialSpec, TumourInputs, arm_outcomes, assessment_times_h,
                    check_trial_size, load_trial, merge_outcomes, patient_table, sample_trial, summarise,
                    tumour_inputs)

#: patients per task: ~120 MB of hourly concentrations and daily rates per task for a 24-month trial
DEFAULT_BLOCK = 1000
#: memory of a task per patient and simulated hour (~120 MB per 1,000 patients over 24 months)
BYTES_PER_PATIENT_HOUR = 120e6 / (1000 * 24 * 730.5)


@dataclass(frozen=True)
class _TrialPlan:
    """Everything the workers need, shipped once (plain data: picklable)."""

    spec: TrialSpec
    cohort: object
    arm_rows: tuple          # per arm: (n_a,) cohort indices of its patients
    plans: tuple             # per arm: ArmPlan
    pk_params: tuple         # per arm: [per regimen {name: (n_a,) array}]
    inputs: TumourInputs
    dropout_u: np.ndarray


def _run_block(plan: _TrialPlan, arm: int, lo: int, hi: int) -> dict:
    """Outcomes of patients ``lo:hi`` of arm ``arm`` (module level so that it pickles)."""
    rows = plan.arm_rows[arm][lo:hi]
    sub = plan.cohort.subset(rows)
    pk = [{k: v[lo:hi] for k, v in p.items()} for p in plan.pk_params[arm]]
    rates = exposure(plan.plans[arm], sub, pk, plan.spec.follow_up_h)
    return arm_outcomes(plan.spec, rates, plan.inputs, rows, sub["brain_mets"], plan.dropout_u[rows],
                        arm=plan.spec.arms[arm])


def run_trial_blocks(spec: TrialSpec | str | Path, patients: int = 200, seed: int = 0, *, scheduler=None,
                     block: int = DEFAULT_BLOCK, progress: bool = False, cache: TableCache | None = None,
                     workers: int | None = None, **overrides) -> TrialResult:
    """Run a trial end to end in blocks of ``block`` patients on ``scheduler``.

    Parameters
    ----------
    scheduler : where the patient blocks and the exposure-response tables' integrations run: see
        :mod:`her2sim.executors` (None = this process, "processes", "dask://HOST:PORT", a
        distributed.Client).
    block : patients per task (memory per task grows linearly with it).
    workers : deprecated alias of ``scheduler``: > 1 means "processes".
    progress : print the table building per arm and a progress line over patients (stderr).
    cache : :class:`~her2sim.trial.arms.TableCache` holding exposure-response tables to reuse (default:
        a new one for this call; tables are keyed by the content of the model files).
    overrides : calibration knobs of :func:`~her2sim.trial.trial.tumour_inputs`.
    """
    check_count(block, "block", fix="patients per task, e.g. 1000")
    scheduler = scheduler_for(workers, scheduler)
    check_scheduler(scheduler)
    if not isinstance(spec, TrialSpec):
        spec = load_trial(spec)
    check_trial_size(spec, patients, seed)  # before any table is built
    check_size(min(int(block), int(patients)) * spec.follow_up_h, "one patient block (patients x simulated hours)",
               int(MAX_OUTPUT_BYTES / BYTES_PER_PATIENT_HOUR),
               f"use a smaller block (default {DEFAULT_BLOCK:,}) or a shorter follow_up",
               bytes_each=BYTES_PER_PATIENT_HOUR)
    clock = time.perf_counter()
    s = sample_trial(spec, int(patients), seed)
    timings = {"sample_s": time.perf_counter() - clock}
    arm_rows, plans, pk_params = [], [], []
    cache = TableCache() if cache is None else cache
    for a, arm in enumerate(spec.arms):
        t0 = time.perf_counter()
        rows = np.flatnonzero(s.arm_index == a)
        plan = plan_arm(arm, s.cohort.subset(rows), tumour=spec.tumour, scheduler=scheduler,
                        population=spec.population, cache=cache, model=spec.model)
        arm_rows.append(rows)
        plans.append(plan)
        pk_params.append(plan.sample_pk(len(rows), np.random.default_rng([seed, a])))
        timings[f"arm{a}_table_s"] = time.perf_counter() - t0
        if progress:
            print(f"  arm {arm.name}: {len(rows)} patients, exposure-response table "
                  f"{time.perf_counter() - t0:.1f} s", flush=True)
    inputs = tumour_inputs(spec, s.cohort, s.z_growth, s.z_resistant, s.split, **overrides)
    shared = _TrialPlan(spec, s.cohort, tuple(arm_rows), tuple(plans), tuple(pk_params), inputs, s.dropout_u)
    tasks = [(a, lo, min(lo + int(block), len(rows))) for a, rows in enumerate(arm_rows)
             for lo in range(0, len(rows), int(block))]
    bar = Progress(s.cohort.n, enabled=progress, what="trial", unit="patients") if progress else None
    t0 = time.perf_counter()
    results = map_tasks(_run_block, shared, tasks, scheduler=scheduler, progress=bar,
                        weights=[hi - lo for _a, lo, hi in tasks])
    timings["patients_s"] = time.perf_counter() - t0
    parts, sld = [], {}
    months = assessment_times_h(spec) / HOURS_PER_MONTH
    for (a, lo, hi), o in zip(tasks, results):
        parts.append((arm_rows[a][lo:hi], o))
    for a, arm in enumerate(spec.arms):
        blocks = [o["sld"] for (b, _lo, _hi), o in zip(tasks, results) if b == a]
        sld[arm.name] = (months, np.concatenate(blocks) if blocks else np.empty((0, len(months))))
    df = patient_table(spec, s.cohort, s.arm_index, inputs, merge_outcomes(parts, s.cohort.n))
    curves: dict = {}
    summary = summarise(spec, df, curves)
    timings["total_s"] = time.perf_counter() - clock
    return TrialResult(spec, df, summary, curves, sld, timings)


def run_trial(spec: TrialSpec | str | Path, patients: int = 200, seed: int = 0, *, scheduler=None,
              block: int | None = None, progress: bool = False, cache: TableCache | None = None,
              workers: int | None = None, **overrides) -> TrialResult:
    """Run a virtual trial end to end (see the module docstring), in blocks of patients.

    ``scheduler`` (None = this process, "processes", "dask://HOST:PORT" or a distributed.Client)
    and ``block`` (patients per task, default :data:`DEFAULT_BLOCK`) go to
    :func:`run_trial_blocks`; the results do not depend on either. ``workers``: deprecated alias
    of ``scheduler`` (> 1 means "processes").
    ``overrides`` are :func:`her2sim.trial.trial.tumour_inputs`' calibration knobs.

    Examples
    --------
    >>> from her2sim.trial import run_trial
    >>> res = run_trial("emilia_like", patients=100, seed=1)  # doctest: +SKIP
    >>> res.summary["arms"]["T-DM1"]["median_pfs"]  # doctest: +SKIP
    """
    return run_trial_blocks(spec, patients, seed, scheduler=scheduler, block=DEFAULT_BLOCK if block is None else block,
                            progress=progress, cache=cache, workers=workers, **overrides)


def run_trial_task(task: dict) -> dict:
    """Picklable entry point for many trials: ``{"spec": name/path, "patients": n, "seed": s, **overrides}``
    -> the summary dict (plus timings). Overrides are :func:`her2sim.trial.trial.tumour_inputs`' calibration knobs.

    >>> from concurrent.futures import ProcessPoolExecutor
    >>> tasks = [{"spec": "emilia_like", "patients": 200, "seed": s} for s in range(4)]
    >>> with ProcessPoolExecutor(2) as pool:  # doctest: +SKIP
    ...     summaries = list(pool.map(run_trial_task, tasks))
    """
    task = dict(task)
    res = run_trial(task.pop("spec"), task.pop("patients", 200), task.pop("seed", 0), **task)
    return {"summary": res.summary, "timings": res.timings}
