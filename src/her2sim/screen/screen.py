"""In-silico drug screens: dose-response curves and dose matrices, single-agent metrics, synergy.

A screen runs one model per *background* (a list of variants applied on top of the model and the
common ``variants``) over a full grid of doses, reads one :class:`Readout` per condition, and
returns a labelled :class:`xarray.Dataset`:

- dims ``(background, dose_A)`` for :func:`dose_response`, ``(background, dose_A, dose_B[, dose_C])``
  for :func:`dose_matrix`; dose coordinates in nM, each starting at 0 (the untreated control);
  the drug behind each letter is in ``attrs["drug_A"]`` etc. and in the coordinate's ``drug`` attribute;
- ``readout``: the raw readout; ``fraction_unaffected`` = readout / untreated control of the same
  background; ``inhibition`` = 1 - ``fraction_unaffected``; ``status`` ('ok', 'failed',
  'not_steady') and ``status_message`` per condition. A condition that fails is kept (NaN values)
  and says why; one bad member never stops a screen.

Effect scale and sign: inhibition is a fraction (0 = no effect, 1 = readout abolished; negative
when a drug *raises* the readout, e.g. pAKT after mTORC1 inhibition relieves the S6K feedback).
Synergy scores (:func:`synergy_scores`) are observed minus expected inhibition: **positive =
more effect than expected (synergy)**; the Chou-Talalay combination index is < 1 for synergy.

References
----------
.. [1] Bliss CI. The toxicity of poisons applied jointly. Ann Appl Biol 26:585-615 (1939).
.. [2] Loewe S. The problem of synergism and antagonism of combined drugs.
   Arzneimittelforschung 3:285-290 (1953).
.. [3] Hafner M, Niepel M, Chung M, Sorger PK. Growth rate inhibition metrics correct for
   confounders in measuring sensitivity to cancer drugs. Nat Methods 13:521-527 (2016).
.. [4] Ianevski A, Giri AK, Aittokallio T. SynergyFinder 3.0: an interactive analysis and
   consensus interpretation of multi-drug synergies across multiple samples.
   Nucleic Acids Res 50:W739-W743 (2022) (summary = mean over combination cells).
.. [5] Chou TC. Theoretical basis, experimental design, and computerized simulation of
   synergism and antagonism in drug combination studies. Pharmacol Rev 58:621-681 (2006).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import doseresponse as dr
from . import synergy as sy
from ..errors import ScreenInputError
from ..experiments import ConditionBatch, Readout, ReadoutError, run_conditions, screen_label
from ..experiments import parse_readout as parse_any_readout
from ..experiments.readouts import READOUT_KINDS
from ..experiments.reststate import HORIZONS, TOLERANCE, RestStates
from ..experiments.runner import check_readouts, readout_unit
from ..model.network import Network
from ..solvers.batch import run_kernels
from ..solvers.solve import as_network, dose_nM, hours, make_condition
from ..model.units import parse_quantity
from ..validate import check_mapping, check_size, check_tolerances

#: the background label of cells with no extra variant
WILD_TYPE = "wild_type"
#: the engines a screen can run on
ENGINES = ("scipy", "batch")

__all__ = [
    "READOUT_KINDS", "STEADY_HORIZON_H", "SYNERGY_METHODS", "Readout", "ScreenInputError",
    "dose_matrix", "dose_response", "format_metrics_table", "format_synergy_table", "parse_dose_grid",
    "parse_readout", "single_agent_metrics", "synergy_scores",
]

#: longest search (h) of a ``steady:`` readout unless one is given (``steady:pAKT@2000h``): the
#: rest-state service's last horizon (:mod:`her2sim.experiments.reststate`)
STEADY_HORIZON_H = HORIZONS[-1]
#: a ``steady:`` member whose relative drift max |dx/dt| / (|x| + 1e-7 nM) stays above this (1/h)
#: gets status 'not_steady'
STEADY_TOLERANCE = TOLERANCE
SYNERGY_METHODS = ("hsa", "bliss", "loewe", "zip")
#: most conditions one in-memory screen runs (each holds its whole time course); larger: a sweep
MAX_SCREEN_CONDITIONS = 100_000
LETTERS = ("A", "B", "C")
#: a single agent whose fitted maximal inhibition is below this plateaus: Loewe and the Chou-Talalay
#: CI assume drugs that reach full effect, so their scores are then not to be read (use Bliss/HSA)
EMAX_FULL_EFFECT = 0.9
EFFECT_SCALE = ("inhibition = 1 - readout / readout of the untreated control of the same background "
                "(fraction: 0 = no effect, 1 = readout abolished, < 0 = the drugs raise the readout)")
SIGN_CONVENTION = ("synergy score = observed - expected inhibition: positive = more effect than expected "
                   "(synergy), negative = less (antagonism); combination index CI < 1 = synergy")


# ----------------------------------------------------------------------------- readouts
def parse_readout(text: str | Readout) -> Readout:
    """Read a readout: ``"pAKT@24h"``, ``"pAKT"`` (end of run), ``"mean:pAKT@48h"``, ``"auc:pERK"``,
    ``"mean:pS6@6h..24h"``, ``"steady:pAKT"``, ``"rest:pAKT"``, ``"viable_cells@72h"``, ``"gr@72h"`` or
    ``"gr:viable_cells@72h"`` (the one grammar of :mod:`her2sim.experiments.readouts`).

    Raises ScreenInputError (grammar) or UnitError (time without a time unit).
    """
    try:
        return parse_any_readout(text)
    except ReadoutError as exc:
        raise ScreenInputError(str(exc)) from None


def _check_readout(rd: Readout, network: Network, run_h: float) -> str:
    """Raise if the readout names nothing in ``network`` or reads beyond the run; its unit."""
    try:
        check_readouts(network, [rd], run_h)
    except ReadoutError as exc:
        raise ScreenInputError(str(exc)) from None
    return "dimensionless" if rd.kind == "gr" else readout_unit(network, rd)


# ----------------------------------------------------------------------------- doses
def _split_unit(token: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([-+0-9.eE]+)\s*(.*?)\s*", token)
    if m is None:
        raise ScreenInputError(f"dose {token!r} is not a number with an optional unit, e.g. '10nM'")
    return m.group(1), m.group(2)


def parse_dose_grid(text: str) -> tuple[str, list]:
    """``"A=0,1,10,100nM"`` or a log grid ``"A=0:1nM..10uM:7"`` -> (drug, doses).

    In a list, a unit written on the last dose applies to the bare numbers before it (no unit at
    all = nM). A log grid ``[0:]LO..HI:N`` gives N log-spaced doses from LO to HI (plus 0 when
    prefixed with ``0:``; screens add the 0 control anyway). Doses come back as strings with units.
    """
    if "=" not in text:
        raise ScreenInputError(f"--doses expects DRUG=DOSES such as 'lapatinib=0,10,100,1000nM' or "
                               f"'lapatinib=0:1nM..10uM:7', got {text!r}")
    drug, spec = (s.strip() for s in text.split("=", 1))
    if not drug or not spec:
        raise ScreenInputError(f"--doses {text!r}: need a drug name and doses")
    if ".." in spec:
        zero = spec.startswith("0:")
        body = spec[2:] if zero else spec
        m = re.fullmatch(r"(.+?)\.\.(.+?):(\d+)", body)
        if m is None:
            raise ScreenInputError(f"--doses {text!r}: a log grid is [0:]LO..HI:N, e.g. 'A=0:1nM..10uM:7'")
        lo, hi, n = m.group(1).strip(), m.group(2).strip(), int(m.group(3))
        if n < 2:
            raise ScreenInputError(f"--doses {text!r}: a log grid needs N >= 2 doses")
        qlo = parse_quantity(lo if _split_unit(lo)[1] else f"{lo} nM", what=f"dose {lo!r}")
        qhi = parse_quantity(hi if _split_unit(hi)[1] else f"{hi} nM", what=f"dose {hi!r}")
        if qlo.dimensionality != qhi.dimensionality:
            raise ScreenInputError(f"--doses {text!r}: {lo!r} and {hi!r} have different dimensions")
        a, b = float(qlo.magnitude), float(qhi.to(qlo.units).magnitude)
        if not 0 < a < b:
            raise ScreenInputError(f"--doses {text!r}: need 0 < LO < HI")
        unit = f"{qlo.units:~}"
        return drug, ([0.0] if zero else []) + [f"{x:.6g} {unit}" for x in np.geomspace(a, b, n)]
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    parts = [_split_unit(t) for t in tokens]
    default = parts[-1][1] or "nM"
    return drug, [f"{num} {unit or default}" for num, unit in parts]


def _dose_axis(network: Network, drug: str, doses) -> np.ndarray:
    """Doses (unit strings or nM numbers) -> sorted nM array starting with the 0 control."""
    if isinstance(doses, (str, bytes, Mapping)) or np.ndim(doses) != 1:
        raise ScreenInputError(f"doses of {drug}: expected a list such as [0, 10, '1 uM'], got {doses!r}")
    nm = np.array([dose_nM(network, drug, d)[1] for d in doses], dtype=float)
    if np.unique(nm).size != nm.size:
        raise ScreenInputError(f"doses of {drug}: {list(doses)!r} repeats a dose; give each dose once")
    axis = np.unique(np.concatenate([[0.0], nm]))
    if axis.size < 2:
        raise ScreenInputError(f"doses of {drug}: need at least one dose > 0 besides the 0 control")
    return axis


def _backgrounds(backgrounds) -> list[tuple[str, ...]]:
    if backgrounds is None:
        return [()]
    if isinstance(backgrounds, str) or not isinstance(backgrounds, Sequence) or not backgrounds:
        raise ScreenInputError(f"backgrounds must be a non-empty list of variant lists, e.g. [[], ['pik3ca_h1047r']]; "
                               f"got {backgrounds!r}")
    out = []
    for bg in backgrounds:
        bg = (bg,) if isinstance(bg, str) else tuple(bg)
        bg = tuple(v for part in bg for v in part.split("+") if v and v != WILD_TYPE)
        out.append(bg)
    labels = [_label(bg) for bg in out]
    if len(set(labels)) != len(labels):
        raise ScreenInputError(f"backgrounds {labels} repeat a background; give each once")
    return out


def _label(bg: Sequence[str]) -> str:
    return "+".join(bg) or WILD_TYPE


# ----------------------------------------------------------------------------- integration
def _run(network: Network, conditions: Sequence[Mapping], rd: Readout, run_h: float, engine: str, rtol: float,
         atol: float, rest_states: RestStates | None = None, kernels=None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Run ``conditions`` ({"drugs", "parameters"}) through :func:`her2sim.experiments.run_conditions`.

    Returns ({"readout"} or, for GR, {"cells", "cells_t0"}; plus "drift" for steady readouts),
    screen status labels (C,) and messages (C,). Never raises for a failing member.
    ``rest_states`` keeps rest states between calls (the refinement of single-agent metrics);
    ``kernels``: the run's :class:`~her2sim.solvers.ckernels.KernelCache` or None.
    """
    conds = tuple(make_condition(network, c.get("drugs"), c.get("parameters")) for c in conditions)
    batch = ConditionBatch(conds, preequilibrate=network.spec.preequilibrate)
    ds = run_conditions(network, batch, [rd], engine=engine, time=run_h, rtol=rtol, atol=atol, rest_states=rest_states,
                        kernels=kernels)
    value = ds.value.values[:, 0]
    data = {"cells": value, "cells_t0": ds.initial.values[:, 0]} if rd.kind == "gr" else {"readout": value}
    if rd.kind == "steady":
        data["drift"] = ds.drift.values[:, 0]
    codes = np.array([screen_label(c) for c in ds.code.values], dtype=object)
    return data, codes, np.array(ds.message.values, dtype=object)


# ----------------------------------------------------------------------------- screens
def dose_response(model="default", drug: str | None = None, doses: Sequence | None = None,
                  readout: str | Readout = "viable_cells", *, variants: Sequence[str] = (),
                  backgrounds: Sequence[Sequence[str]] | None = None, time: str | float = "72 h",
                  parameters: Mapping | None = None, engine: str = "scipy", rtol: float = 1e-6,
                  atol: float = 1e-9):
    """Single-drug dose-response curve(s), one per background.

    Parameters
    ----------
    model : bundled name ("default"), TOML path, ModelSpec or Network (backgrounds/variants need a
        name or path).
    drug : drug name or alias. doses : list of doses ("10 nM", "1 ug/mL" or numbers in nM); the 0
        control is added if absent.
    readout : a :class:`Readout` or its text (see :func:`parse_readout`); default viable cells at
        the end of the run.
    variants : applied to every background. backgrounds : list of variant lists to compare, e.g.
        ``[[], ["pik3ca_h1047r"]]`` (``[]`` is labelled 'wild_type'); default one background ``[]``.
    time : assay length ("72 h"); readouts default to it. parameters : overrides for every
        condition, e.g. ``{"NK_activity": 0}`` for a dish without NK cells.
    engine : "scipy" (block BDF, :func:`her2sim.solvers.solve.integrate_conditions`) or "batch"
        (:func:`her2sim.solvers.batch.simulate_batch`), both through :func:`her2sim.experiments.run_conditions`.
    rtol, atol : solver tolerances (atol in nM).

    Returns
    -------
    xarray.Dataset with dims (background, dose_A): readout, fraction_unaffected, inhibition,
    status, status_message (and cells, cells_t0 for GR readouts; drift for steady readouts).

    Examples
    --------
    >>> ds = dose_response("default", "lapatinib", [0, 10, 100, 1000], "pAKT@24h")  # doctest: +SKIP
    >>> ds.fraction_unaffected.sel(background="wild_type").values.round(2)  # doctest: +SKIP
    """
    if drug is None or doses is None:
        raise ScreenInputError("dose_response needs drug and doses, e.g. dose_response('default', 'lapatinib', "
                               "[0, 10, 100, '1 uM'], 'pAKT@24h')")
    return _screen(model, [drug], [doses], readout, variants, backgrounds, time, parameters, engine, rtol, atol,
                   "dose_response")


def dose_matrix(model="default", drugs: Sequence[str] | None = None, doses=None,
                readout: str | Readout = "viable_cells", *, variants: Sequence[str] = (),
                backgrounds: Sequence[Sequence[str]] | None = None, time: str | float = "72 h",
                parameters: Mapping | None = None, engine: str = "scipy", rtol: float = 1e-6, atol: float = 1e-9):
    """Full factorial dose matrix of two or three drugs, one per background.

    ``drugs`` = [A, B] or [A, B, C]; ``doses`` = {A: [...], B: [...]} (or a list aligned with
    ``drugs``), each starting at 0 (added if absent). Other arguments as :func:`dose_response`.

    Returns
    -------
    xarray.Dataset with dims (background, dose_A, dose_B[, dose_C]) (nM coordinates): readout,
    fraction_unaffected, inhibition, status, status_message. Row ``dose_B = 0`` is drug A alone.

    Examples
    --------
    >>> ds = dose_matrix("default", ["trastuzumab", "alpelisib"],  # doctest: +SKIP
    ...                  {"trastuzumab": [0, 1, 10], "alpelisib": [0, 100, 1000]}, "viable_cells@72h",
    ...                  backgrounds=[[], ["pik3ca_h1047r"]], parameters={"NK_activity": 0})
    """
    if drugs is None or doses is None:
        raise ScreenInputError("dose_matrix needs drugs and doses, e.g. dose_matrix('default', ['trastuzumab', "
                               "'alpelisib'], {'trastuzumab': [0, 1, 10], 'alpelisib': [0, 100, 1000]})")
    if isinstance(drugs, str):
        drugs = [d.strip() for d in drugs.split(",")]
    drugs = list(drugs)
    if len(drugs) not in (2, 3) or len({d.lower() for d in drugs}) != len(drugs):
        raise ScreenInputError(f"drugs must name 2 or 3 different drugs, got {drugs!r}; "
                               "use dose_response for one drug")
    if isinstance(doses, Mapping):
        lower = {str(k).lower(): v for k, v in doses.items()}
        missing = [d for d in drugs if d.lower() not in lower]
        extra = [k for k in doses if str(k).lower() not in {d.lower() for d in drugs}]
        if missing or extra:
            raise ScreenInputError(f"doses must have one entry per drug {drugs}; missing {missing}, unexpected {extra}")
        grids = [lower[d.lower()] for d in drugs]
    else:
        grids = list(doses)
        if len(grids) != len(drugs):
            raise ScreenInputError(f"doses: {len(grids)} dose lists for {len(drugs)} drugs {drugs}")
    return _screen(model, drugs, grids, readout, variants, backgrounds, time, parameters, engine, rtol, atol,
                   "dose_matrix")


def _screen(model, drugs, grids, readout, variants, backgrounds, time, parameters, engine, rtol, atol, kind):
    import xarray as xr

    if engine not in ENGINES:
        raise ScreenInputError(f"engine must be one of {ENGINES}, got {engine!r}")
    rtol, atol = check_tolerances(rtol, atol)  # every argument before any work
    parameters = check_mapping(parameters, "parameters", "{'NK_activity': 0}")
    if isinstance(variants, str):
        variants = [variants]
    rd = parse_readout(readout)
    run_h = hours(time, what="time")
    if run_h <= 0:
        raise ScreenInputError(f"time: {time!r} must be > 0")
    bgs = _backgrounds(backgrounds)
    if not isinstance(model, (str, Path)) and (variants or bgs != [()]):
        raise ScreenInputError("variants/backgrounds need the model as a name or path, not a compiled object")
    params = dict(parameters or {})
    names, axes = None, None
    columns: dict[str, list] = {}
    codes_bg, messages_bg = [], []
    for bg in bgs:
        network = as_network(model, variants=tuple(variants) + bg, drugs=drugs) if isinstance(model, (str, Path)) \
            else as_network(model)
        if axes is None:
            names = [network.spec.drug(d).name for d in drugs]
            if len(set(names)) != len(names):
                raise ScreenInputError(f"drugs {drugs} name the same drug twice ({names})")
            axes = [_dose_axis(network, d, g) for d, g in zip(drugs, grids)]
            unit = _check_readout(rd, network, run_h)
        check_size(math.prod(a.size for a in axes) * len(bgs), "the screen's conditions (doses x backgrounds)",
                   MAX_SCREEN_CONDITIONS, "use fewer doses, or run it as a sweep (her2sim sweep), which writes "
                   "chunk by chunk")
        grid = list(itertools.product(*axes))
        conditions = [{"drugs": dict(zip(drugs, combo)), "parameters": params} for combo in grid]
        kernels = run_kernels([network], len(conditions), rtol) if engine == "batch" else None  # owned by this run
        measured, codes_b, messages_b = _run(network, conditions, rd, run_h, engine, rtol, atol, kernels=kernels)
        for key, values in measured.items():
            columns.setdefault(key, []).append(values.reshape([a.size for a in axes]))
        codes_bg.append(codes_b)
        messages_bg.append(messages_b)
    shape = (len(bgs),) + tuple(a.size for a in axes)
    data = {k: np.stack(v) for k, v in columns.items()}
    codes = np.concatenate(codes_bg).reshape(shape)
    messages = np.concatenate(messages_bg).reshape(shape)
    control = (slice(None),) + (0,) * len(axes)
    if rd.kind == "gr":
        data["readout"] = _gr(data["cells"], data["cells_t0"], codes, messages)
    with np.errstate(divide="ignore", invalid="ignore"):
        fu = data["readout"] / data["readout"][control].reshape((-1,) + (1,) * len(axes))
    dims = ("background",) + tuple(f"dose_{LETTERS[i]}" for i in range(len(axes)))
    coords = {"background": [_label(bg) for bg in bgs],
              "variants": ("background", ["+".join(tuple(variants) + bg) for bg in bgs])}
    for i, (name, axis) in enumerate(zip(names, axes)):
        coords[dims[i + 1]] = (dims[i + 1], axis, {"units": "nM", "drug": name, "long_name": f"{name} dose"})
    variables = {
        "readout": (dims, data["readout"], {"long_name": str(rd), "units": unit}),
        "fraction_unaffected": (dims, fu, {"long_name": "readout / untreated control of the same background",
                                           "units": "1"}),
        "inhibition": (dims, 1.0 - fu, {"long_name": "1 - fraction_unaffected", "units": "1"}),
        "status": (dims, codes.astype(str)),
        "status_message": (dims, messages.astype(str)),
    }
    if rd.kind == "gr":
        variables["cells"] = (dims, data["cells"], {"long_name": f"{rd.name} at the readout time"})
        variables["cells_t0"] = (dims, data["cells_t0"], {"long_name": f"{rd.name} at dosing (x0)"})
    if rd.kind == "steady":
        variables["drift"] = (dims, data["drift"], {"long_name": "relative drift max |dx/dt| / (|x| + 1e-7 nM) at "
                                                                 "the steady state found", "units": "1/h"})
    from .. import __version__

    attrs = {"screen": kind, "model": _model_source(model),
             "model_name": network.spec.name, "common_variants": "+".join(variants), "readout": str(rd),
             "readout_unit": unit, "time_h": run_h, "parameters": json.dumps(params, default=float), "engine": engine,
             "rtol": rtol, "atol": atol, "drugs": ",".join(names), "effect_scale": EFFECT_SCALE,
             "sign_convention": SIGN_CONVENTION, "her2sim_version": __version__}
    attrs.update({f"drug_{LETTERS[i]}": n for i, n in enumerate(names)})
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def _model_source(model) -> str:
    """How to load the model again: a bundled name, an absolute path, or '' for an in-memory object."""
    if not isinstance(model, (str, Path)):
        return ""
    path = Path(model)
    return str(path.resolve()) if path.suffix == ".toml" or path.exists() else str(model)


def _gr(cells, cells_t0, codes, messages) -> np.ndarray:
    """GR values per background against its own untreated control (Hafner 2016 [3]_)."""
    out = np.full(cells.shape, np.nan)
    for b in range(cells.shape[0]):
        xc, x0 = cells[b].flat[0], cells_t0[b].flat[0]
        usable = (codes[b] == "ok") & np.isfinite(cells[b]) & (cells[b] > 0)
        try:
            out[b][usable] = dr.gr_value(cells[b][usable], xc, x0)
        except dr.DoseResponseInputError as exc:
            ok = codes[b] == "ok"
            codes[b][ok] = "failed"
            messages[b][ok] = f"GR undefined in this background: {exc}"
    return out


# ----------------------------------------------------------------------------- single agents
def _edge(ds, letter: str):
    """The single-agent curve of drug ``letter``: every other dose at 0."""
    others = {d: 0 for d in ds.readout.dims if d.startswith("dose_") and d != f"dose_{letter}"}
    return ds.isel(others)


def dose_letters(ds) -> list[str]:
    return [d[-1] for d in ds.readout.dims if d.startswith("dose_")]


def _curve_function(ds, background: str, letter: str, model=None, networks=None) -> Callable[[float], float]:
    """f(dose) -> fraction unaffected of drug ``letter`` alone, simulated afresh in ``background``.

    ``networks`` caches compiled networks per background across calls."""
    rd = parse_readout(ds.attrs["readout"])
    drugs = ds.attrs["drugs"].split(",")
    variants = [v for v in str(ds.variants.sel(background=background).values).split("+") if v]
    source = model if model is not None else ds.attrs["model"]
    if not source:
        raise ScreenInputError("this screen was run on a compiled model; pass model=... to single_agent_metrics "
                               "or refine=False")
    networks = {} if networks is None else networks
    if background not in networks:
        networks[background] = as_network(source, variants=variants, drugs=drugs) if isinstance(source, (str, Path)) \
            else as_network(source)
    network = networks[background]
    params = json.loads(ds.attrs["parameters"])
    run_h = float(ds.attrs["time_h"])
    control = ds.isel({d: 0 for d in ds.readout.dims if d.startswith("dose_")}).sel(background=background)
    drug = drugs[LETTERS.index(letter)]
    rest_states = RestStates()  # the curve's rest state is computed once

    def f(dose: float) -> float:
        cond = {"drugs": {**{d: 0.0 for d in drugs}, drug: float(dose)}, "parameters": params}
        m, codes, _ = _run(network, [cond], rd, run_h, ds.attrs["engine"], float(ds.attrs["rtol"]),
                           float(ds.attrs["atol"]), rest_states)
        if codes[0] != "ok":
            return math.nan
        if rd.kind == "gr":
            return float(dr.gr_value(m["cells"][0], float(control.cells), float(control.cells_t0)))
        return float(m["readout"][0] / float(control.readout))

    return f


def single_agent_metrics(ds, *, level: float = 0.5, refine: bool = True, model=None):
    """IC50, EC50, Emax and Hill slope of each drug alone, per background.

    From the simulated curve (the screen's edge with every other drug at 0): ``ic50_interpolated``
    (log-linear interpolation, :func:`her2sim.screen.doseresponse.interpolate_ic50`) and, with
    ``refine=True``, ``ic50`` found by root finding on the model itself
    (:func:`her2sim.screen.doseresponse.find_ic50` with a function that simulates, bracketed by the
    interpolation interval); ``ec50`` likewise at half of the observed maximal effect;
    ``emax`` = 1 - min fraction unaffected; ``hill_local`` = the Hill slope the model has at its
    EC50, :math:`-4\\,(df/d\\ln d) / E_{max}` (exact for a Hill curve). For compatibility with
    assay software: a 4-parameter log-logistic fit (``fit_*``, :func:`fit_loglogistic4`), and GR
    metrics for GR readouts (``gr50``, ``gr_max``, ``gr_inf``, ``gr_aoc``). The metrics assume a
    readout the drug lowers (viability, pAKT, ...).

    Parameters
    ----------
    ds : a :func:`dose_response` or :func:`dose_matrix` Dataset.
    level : fraction unaffected that defines the IC50 (0.5 = absolute IC50; GR50 for GR readouts).
    refine : root-find on the model (a few extra simulations per drug and background).
    model : the model object, needed to refine a screen run on a ModelSpec/Network.

    Returns
    -------
    xarray.Dataset with dims (background, drug); ``status`` says why a metric is missing.
    """
    import xarray as xr

    letters = dose_letters(ds)
    bgs = [str(b) for b in ds.background.values]
    keys = ("ic50", "ic50_interpolated", "ec50", "ec50_interpolated", "emax", "hill_local", "fit_ic50", "fit_ec50",
            "fit_hill", "fit_top", "fit_bottom", "fit_emax", "fit_rms")
    is_gr = parse_readout(ds.attrs["readout"]).kind == "gr"
    if is_gr:
        keys += ("gr50", "gr_max", "gr_inf", "gr_aoc")
    out = {k: np.full((len(bgs), len(letters)), np.nan) for k in keys}
    status = np.full((len(bgs), len(letters)), "", dtype=object)
    networks: dict = {}
    for i, bg in enumerate(bgs):
        for j, letter in enumerate(letters):
            edge = _edge(ds, letter).sel(background=bg)
            doses, fu = edge[f"dose_{letter}"].values, edge.fraction_unaffected.values
            notes = []
            if not np.all(edge.status.values == "ok") or not np.all(np.isfinite(fu)):
                status[i, j] = "not computed: a single-agent member failed or the control is not finite"
                continue
            out["emax"][i, j] = dr.emax(fu)
            half = 1.0 - 0.5 * out["emax"][i, j]
            f = None
            for key, lvl in (("ic50", level), ("ec50", half)):
                est = dr.interpolate_ic50(doses, fu, lvl)
                out[f"{key}_interpolated"][i, j] = est.value
                if not est.crossed:
                    notes.append(f"{key} {est.status.replace('_', ' ')}")
                    continue
                if refine:
                    f = f or _curve_function(ds, bg, letter, model, networks)
                    try:
                        out[key][i, j] = _root(f, doses, fu, lvl)
                    except dr.DoseResponseInputError as exc:
                        notes.append(f"{key} root finding failed: {exc}")
                    if not np.isfinite(out[key][i, j]):
                        notes.append(f"{key}: the model's crossing could not be bracketed (see {key}_interpolated)")
            if refine and f is not None and np.isfinite(out["ec50"][i, j]) and out["emax"][i, j] > 0:
                c, step = out["ec50"][i, j], 1e-3
                slope = (f(c * math.exp(step)) - f(c * math.exp(-step))) / (2 * step)
                out["hill_local"][i, j] = -4.0 * slope / out["emax"][i, j]
            try:
                fit = dr.fit_loglogistic4(doses, fu)
                out["fit_ic50"][i, j] = float(fit.inverse(level))
                for k in ("ec50", "hill", "top", "bottom"):
                    out[f"fit_{k}"][i, j] = getattr(fit, k)
                out["fit_emax"][i, j], out["fit_rms"][i, j] = dr.emax_fitted(fit), fit.residual_rms
                if not fit.converged:
                    notes.append("4PL fit did not converge")
            except dr.DoseResponseInputError as exc:
                notes.append(f"no 4PL fit: {exc}")
            if is_gr:
                try:
                    g = dr.gr_metrics(doses, fu)
                    out["gr50"][i, j], out["gr_max"][i, j], out["gr_inf"][i, j], out["gr_aoc"][i, j] = (
                        g.gr50, g.grmax, g.gr_inf, g.gr_aoc)
                except dr.DoseResponseInputError as exc:
                    notes.append(f"no GR metrics: {exc}")
            status[i, j] = "; ".join(notes) or "ok"
    units = {"ic50": "nM", "ic50_interpolated": "nM", "ec50": "nM", "ec50_interpolated": "nM", "fit_ic50": "nM",
             "fit_ec50": "nM", "gr50": "nM"}
    dims = ("background", "drug")
    variables = {k: (dims, v, {"units": units.get(k, "1")}) for k, v in out.items()}
    variables["status"] = (dims, status.astype(str))
    drugs = [ds.attrs[f"drug_{x}"] for x in letters]
    return xr.Dataset(variables, coords={"background": bgs, "drug": drugs},
                      attrs={"readout": ds.attrs["readout"], "level": level, "refined": int(refine),
                             "effect_scale": ds.attrs["effect_scale"]})


def _root(f: Callable[[float], float], doses: np.ndarray, fu: np.ndarray, level: float) -> float:
    """Dose where the model crosses ``level``: brentq on the sampled crossing interval, widened by
    one grid step on each side if solver noise moves the crossing onto a grid point."""
    d = doses[doses > 0]
    y = fu[doses > 0] - level
    k = int(np.flatnonzero((np.sign(y[1:]) != np.sign(y[:-1])) | (y[:-1] == 0))[0]) if y[0] != 0 else 0
    for lo, hi in ((k, min(k + 1, d.size - 1)), (max(k - 1, 0), min(k + 2, d.size - 1))):
        if hi > lo:
            est = dr.find_ic50(f, float(d[lo]), float(d[hi]), level, xtol=1e-5)
            if est.crossed:
                return est.value
    return math.nan


# ----------------------------------------------------------------------------- synergy
def synergy_scores(ds, methods: Sequence[str] = SYNERGY_METHODS, *, combination_index: bool = True,
                   clip: bool = True):
    """Synergy scores of a dose matrix, per background (:mod:`her2sim.screen.synergy`).

    Parameters
    ----------
    ds : a :func:`dose_matrix` Dataset (two drugs; for three drugs only "hsa" and "bliss", taken
        over all three: expected = max of single effects / :math:`1 - \\prod f_i`).
    methods : any of "hsa", "bliss", "loewe", "zip" (loewe and zip fit Hill curves per drug and need
        >= 3 non-zero doses of each).
    combination_index : also compute the Chou-Talalay CI (two drugs).
    clip : inhibition outside [0, 1] (a drug that raises the readout, or GR < 0 cell kill) is
        clipped into [0, 1] before scoring and the count reported in ``clipped_cells``; with
        ``clip=False`` such a background is not scored (``synergy_status`` says why).

    Returns
    -------
    xarray.Dataset: ``<method>`` (background, dose_A, dose_B[, dose_C]) per-cell observed -
    expected inhibition (NaN off the combination cells), ``<method>_expected``,
    ``<method>_summary`` (background) = mean over combination cells (both doses > 0; for three
    drugs at least two > 0), ``ci`` and ``ci_summary`` (geometric mean), ``clipped_cells`` and
    ``synergy_status``. Positive = synergy; CI < 1 = synergy.
    """
    import xarray as xr

    methods = [methods] if isinstance(methods, str) else list(methods)
    letters = dose_letters(ds)
    unknown = [m for m in methods if m not in SYNERGY_METHODS]
    if unknown or not methods:
        raise ScreenInputError(f"methods must be a non-empty subset of {SYNERGY_METHODS}, got {methods!r}")
    if len(letters) < 2:
        raise ScreenInputError("synergy_scores needs a dose_matrix Dataset (two or three drugs)")
    if len(letters) == 3 and (set(methods) - {"hsa", "bliss"}):
        raise ScreenInputError("three-drug matrices are scored with methods=('hsa', 'bliss') only; for the others "
                               "score two-drug slices")
    few = [ds.attrs[f"drug_{x}"] for x in letters if ds[f"dose_{x}"].size - 1 < 3]
    if few and set(methods) & {"loewe", "zip"}:
        raise ScreenInputError(f"loewe and zip fit a Hill curve per drug and need >= 3 non-zero doses; {few} "
                               "have fewer. Use methods=('hsa', 'bliss') or add doses.")
    ci_on = combination_index and len(letters) == 2
    dims = ds.inhibition.dims
    bgs = [str(b) for b in ds.background.values]
    cells = {m: np.full(ds.inhibition.shape, np.nan) for m in methods}
    expected = {m: np.full(ds.inhibition.shape, np.nan) for m in methods}
    summary = {m: np.full(len(bgs), np.nan) for m in methods}
    ci, ci_summary = np.full(ds.inhibition.shape, np.nan), np.full(len(bgs), np.nan)
    clipped = np.zeros(len(bgs), dtype=int)
    notes = np.full(len(bgs), "ok", dtype=object)
    emax = np.full((len(bgs), 2), np.nan)
    plateau = np.full(len(bgs), "", dtype=object)
    axes = [ds[f"dose_{x}"].values for x in letters]
    for b in range(len(bgs)):
        e = ds.inhibition.values[b]
        if not np.all(np.isfinite(e)) or not np.all(ds.status.values[b] == "ok"):
            notes[b] = f"not scored: {int(np.sum(ds.status.values[b] != 'ok'))} member(s) not ok or non-finite values"
            continue
        outside = (e < -sy.INHIBITION_TOLERANCE) | (e > 1 + sy.INHIBITION_TOLERANCE)
        clipped[b] = int(outside.sum())
        if clipped[b] and not clip:
            notes[b] = f"not scored: {clipped[b]} cell(s) with inhibition outside [0, 1] (clip=False)"
            continue
        e = np.clip(e, 0.0, 1.0)
        problems = []
        for m in methods:
            try:
                if len(letters) == 3:
                    score, exp_, summ = _score_nd(m, e)
                else:
                    s = getattr(sy, m)(axes[0], axes[1], e)
                    score, exp_, summ = s.scores, s.expected, s.summary
                cells[m][b], expected[m][b], summary[m][b] = score, exp_, summ
            except dr.DoseResponseInputError as exc:
                problems.append(f"{m}: {exc}")
        if len(letters) == 2 and ("loewe" in methods or ci_on):
            emax[b] = [sy.fitted_emax(axes[k], e[:, 0] if k == 0 else e[0, :]) for k in (0, 1)]
            low = [f"{ds.attrs[f'drug_{x}']} {emax[b][k]:.0%}" for k, x in enumerate(letters)
                   if emax[b][k] < EMAX_FULL_EFFECT]
            if low:
                plateau[b] = (f"fitted Emax below {EMAX_FULL_EFFECT:.0%} ({', '.join(low)}): Loewe and CI assume drugs "
                              "that reach full effect; read Bliss and HSA instead")
        if ci_on:
            try:
                res = sy.combination_index(axes[0], axes[1], e)
                ci[b], ci_summary[b] = res.ci, res.summary
            except dr.DoseResponseInputError as exc:
                problems.append(f"ci: {exc}")
        notes[b] = "; ".join(problems) or ("ok" if not clipped[b] else f"ok ({clipped[b]} cell(s) clipped into [0, 1])")
    variables = {}
    for m in methods:
        variables[m] = (dims, cells[m], {"long_name": f"{m} synergy (observed - expected inhibition)", "units": "1"})
        variables[f"{m}_expected"] = (dims, expected[m], {"long_name": f"{m} expected inhibition", "units": "1"})
        variables[f"{m}_summary"] = ("background", summary[m], {"long_name": f"mean {m} score over combination cells"})
    if ci_on:
        variables["ci"] = (dims, ci, {"long_name": "Chou-Talalay combination index (< 1 synergy)"})
        variables["ci_summary"] = ("background", ci_summary, {"long_name": "geometric mean CI over combination cells"})
    variables["clipped_cells"] = ("background", clipped)
    variables["synergy_status"] = ("background", notes.astype(str))
    if len(letters) == 2 and ("loewe" in methods or ci_on):
        for k, x in enumerate(letters):
            variables[f"fitted_emax_{x}"] = ("background", emax[:, k], {
                "long_name": f"fitted maximal inhibition of drug {x} alone (4PL; observed maximum if the fit fails)",
                "units": "1"})
        variables["plateau_warning"] = ("background", plateau.astype(str))
    coords = {k: ds.coords[k] for k in ds.inhibition.coords}
    attrs = {k: ds.attrs[k] for k in ("readout", "drugs", "effect_scale", "sign_convention") if k in ds.attrs}
    attrs.update({k: v for k, v in ds.attrs.items() if k.startswith("drug_")})
    attrs["methods"] = ",".join(methods)
    warned = [f"{b}: {w}" for b, w in zip(bgs, plateau) if w]
    if warned:
        attrs["reference_model_warning"] = "; ".join(warned)
    return xr.Dataset(variables, coords=coords, attrs=attrs)



def _score_nd(method: str, e: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """HSA / Bliss over all drugs of an N-drug matrix (single agents on the axes through 0)."""
    singles = []
    for k in range(e.ndim):
        index = [0] * e.ndim
        index[k] = slice(None)
        shape = [1] * e.ndim
        shape[k] = e.shape[k]
        singles.append(e[tuple(index)].reshape(shape))
    if method == "hsa":
        exp_ = np.maximum.reduce(np.broadcast_arrays(*singles))
    else:
        exp_ = 1.0 - np.prod([1.0 - s for s in np.broadcast_arrays(*singles)], axis=0)
    present = np.zeros(e.shape, dtype=int)
    for k, n in enumerate(e.shape):
        shape = [1] * e.ndim
        shape[k] = n
        present = present + (np.arange(n) > 0).reshape(shape)
    combo = present >= 2
    score = np.where(combo, e - exp_, np.nan)
    return score, np.where(combo, exp_, np.nan), float(np.nanmean(score[combo])) if combo.any() else math.nan


# ----------------------------------------------------------------------------- text tables
def format_metrics_table(metrics) -> str:
    """Text table of :func:`single_agent_metrics` (interpolated IC50/EC50, Emax, 4PL Hill)."""
    lines = [f"single agents (readout {metrics.attrs['readout']}; IC50 at fraction unaffected {metrics.attrs['level']:g})",
             f"{'background':<24}{'drug':<22}{'IC50 nM':>11}{'EC50 nM':>11}{'Emax':>8}{'Hill(4PL)':>11}  note"]
    for b in metrics.background.values:
        for d in metrics.drug.values:
            m = metrics.sel(background=b, drug=d)
            ic50 = m.ic50 if np.isfinite(m.ic50) else m.ic50_interpolated
            ec50 = m.ec50 if np.isfinite(m.ec50) else m.ec50_interpolated
            note = str(m.status.values)
            lines.append(f"{b!s:<24}{d!s:<22}{float(ic50):>11.4g}{float(ec50):>11.4g}{float(m.emax):>8.3f}"
                         f"{float(m.fit_hill):>11.3g}  {'' if note == 'ok' else note}")
    return "\n".join(lines)


def format_synergy_table(scores) -> str:
    """Text table of synergy summaries per background (fraction units; > 0 = synergy; CI < 1 = synergy)."""
    methods = scores.attrs["methods"].split(",")
    cols = methods + (["ci"] if "ci_summary" in scores else [])
    lines = ["synergy summary (mean over combination cells; > 0 = synergy, CI < 1 = synergy)",
             f"{'background':<24}" + "".join(f"{c.upper():>10}" for c in cols) + "  note"]
    for k, b in enumerate(scores.background.values):
        vals = [float(scores[f"{c}_summary"].values[k]) for c in cols]
        note = str(scores.synergy_status.values[k])
        lines.append(f"{b!s:<24}" + "".join(f"{v:>10.4f}" for v in vals) + f"  {'' if note == 'ok' else note}")
    if "plateau_warning" in scores:
        for b, w in zip(scores.background.values, scores.plateau_warning.values):
            if str(w):
                lines.append(f"warning: {b}: {w}")
    return "\n".join(lines)
