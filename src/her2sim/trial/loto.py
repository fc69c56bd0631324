"""Leave-one-trial-out (LOTO) calibration: the honest estimate of the predictive error.

For every calibration trial k: fit :data:`~her2sim.trial.calibrate.PARAMETERS` to the read-outs of
all the other trials, from the same start for every fold (default
:data:`~her2sim.trial.calibrate.NEUTRAL_START`, never the all-trial optimum, which has seen trial
k), then predict trial k's read-outs. The trials are prepared once (common random numbers).

Resumable: with ``out`` every finished fold is one JSON file ``out/fold_<trial>.json`` (written
atomically: :mod:`her2sim.io.atomic`); a re-run with the same settings reads it instead of
fitting again, and prepares the trials only if some fold is still missing. A fold file written
with other settings (patients, seed, start, trial list, evaluations) is refused, not mixed in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from .calibrate import (NEUTRAL_START, Residual, calibration_trials, fit, parameter_names, prepare_calibration,
                        stack_arms, trial_residuals)

#: what a fold file must match to be reused
_SETTINGS = ("trials", "patients", "seed", "start", "max_evaluations", "restarts", "parameter_names")


def fold_path(out: Path, trial: str) -> Path:
    return Path(out) / f"fold_{trial}.json"


def _settings(trials, patients, seed, start, max_evaluations, restarts) -> dict:
    return {"trials": list(trials), "patients": int(patients), "seed": int(seed), "start": [float(v) for v in start],
            "max_evaluations": int(max_evaluations), "restarts": int(restarts), "parameter_names": list(parameter_names(len(start)))}


def read_fold(path: Path, settings: dict) -> dict | None:
    """The fold stored at ``path`` (None if absent); InvalidArgument if it was run with other settings."""
    if not path.exists():
        return None
    d = json.loads(path.read_text())
    diff = [k for k in _SETTINGS if d.get("settings", {}).get(k) != settings[k]]
    if diff:
        raise InvalidArgument(f"out: {path} was written with other settings ({', '.join(diff)} differ); use another "
                              "folder, or delete the fold files to re-run them")
    d["residuals"] = [Residual(**r) for r in d["residuals"]]
    return d


def run_folds(trials=None, *, out=None, only=None, patients: int = 300, seed: int = 2024, start=NEUTRAL_START,
              max_evaluations: int = 250, restarts: int = 2, scheduler=None, progress: bool = False,
              workers: int | None = None, fit_workers: int = 1) -> dict:
    """``{trial: fold}`` for every trial of ``trials`` (default every calibration trial) or of
    ``only`` (a subset to run now); a fold is ``{"trial", "fitted_on": the trials of its objective
    (all but it), "parameters", "objective", "evaluations", "residuals": its read-outs predicted
    (:class:`~her2sim.trial.calibrate.Residual`), "rms_log_residual", "settings"}``. ``out``: folder
    of the fold files (resumable, see the module docstring); None keeps everything in memory."""
    trials = calibration_trials() if trials is None else tuple(trials)
    if len(trials) < 2:
        raise InvalidArgument("trials: leave-one-trial-out needs at least two calibration trials")
    todo = trials if only is None else tuple(only)
    bad = [t for t in todo if t not in trials]
    if bad:
        raise InvalidArgument(f"only: {bad} are not among the trials {list(trials)}")
    settings = _settings(trials, patients, seed, start, max_evaluations, restarts)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
    folds = {t: read_fold(fold_path(out, t), settings) if out is not None else None for t in todo}
    missing = [t for t in todo if folds[t] is None]
    if missing:
        preps = prepare_calibration(trials, patients=patients, seed=seed, scheduler=scheduler, progress=progress,
                                    workers=workers)
        cts = {ct.spec.name: ct for ct in map(stack_arms, preps)}
        for name in missing:
            train = [cts[t] for t in trials if t != name]
            if progress:
                print(f"fold {name}: fitting on {len(train)} trials", flush=True)
            res = fit(train, start=start, max_evaluations=max_evaluations, restarts=restarts, progress=progress,
                      workers=fit_workers)
            theta = np.log([res.parameters[p] for p in parameter_names(len(start))])
            pred = trial_residuals(cts[name], theta)
            logs = [r.residual for r in pred if r.kind == "log"]
            fold = {"trial": name, "fitted_on": list(res.trials), "parameters": res.parameters,
                    "objective": res.objective, "evaluations": res.evaluations, "residuals": pred,
                    "rms_log_residual": float(np.sqrt(np.mean(np.square(logs)))) if logs else float("nan"),
                    "settings": settings}
            if out is not None:
                from ..io.atomic import atomic_write_text

                atomic_write_text(fold_path(out, name), json.dumps(
                    {**fold, "residuals": [r._asdict() for r in pred]}, indent=1, default=float))
            folds[name] = fold
    return folds


def format_loto(folds: dict) -> str:
    """Markdown table (models/calibration.md format): every read-out of each left-out trial,
    published vs predicted, and the pooled error over the folds present."""
    lines = ["| left-out trial | read-out | arm | subgroup | published | predicted | log ratio / difference |",
             "|---|---|---|---|---|---|---|"]
    logs, props = [], []
    for name, d in folds.items():
        if d is None:
            continue
        for v in d["residuals"]:
            diff = f"{v.residual:+.2f}" if v.kind == "log" else f"{100 * v.residual:+.0f} points"
            (logs if v.kind == "log" else props).append(v.residual)
            lines.append(f"| {v.trial} | {v.metric} | {v.arm} | {v.subgroup} | {v.observed:.3g} | {v.simulated:.3g} | "
                         f"{diff} |")
    done = sum(d is not None for d in folds.values())
    lines.append("")
    lines.append(f"{done} of {len(folds)} folds; out-of-fit RMS log ratio {np.sqrt(np.mean(np.square(logs))):.3f} over "
                 f"{len(logs)} median-PFS/HR/PFS-rate read-outs" if logs else f"{done} of {len(folds)} folds")
    if props:
        lines.append(f"response/CNS shares: mean |difference| {100 * np.mean(np.abs(props)):.0f} points over "
                     f"{len(props)} read-outs, within 10 points: {sum(abs(p) <= 0.10 for p in props)} of {len(props)}")
    return "\n".join(lines)


def leave_one_trial_out(trials=None, *, patients: int = 300, seed: int = 2024, start=NEUTRAL_START,
                        max_evaluations: int = 250, restarts: int = 2, scheduler=None,
                        progress: bool = False, workers: int | None = None) -> dict:
    """:func:`run_folds` in memory (no result files), every fold."""
    return run_folds(trials, patients=patients, seed=seed, start=start, max_evaluations=max_evaluations,
                     restarts=restarts, scheduler=scheduler, progress=progress, workers=workers)


#: the version-3 name of :func:`format_loto`
format_leave_one_out = format_loto
