"""The explorer's simulation service and HTTP server (standard library only).

:class:`Explorer` owns the compiled networks (one per variant set, all explorer drugs loaded) and
the untreated-control results, both in explicit bounded caches keyed by everything that changes the
result. :func:`serve` wraps it in a ``ThreadingHTTPServer`` with a small JSON API:

* ``GET /`` the page; ``GET /static/NAME`` its script and style sheet;
* ``GET /api/meta`` drugs, variants, observables with units, diagram nodes and edges, lessons;
* ``POST /api/simulate`` controls (JSON, see :func:`parse_controls`) -> time courses of the treated
  cells and of their untreated control (same variants and medium), plus the time taken.

Simulations run on the scipy path (``her2sim.simulate`` with the cached Network): about 0.05-0.3 s
per request on a 2-core machine after the first request for a variant set (~1 s to compile).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

import numpy as np

from ..errors import ExploreInputError, Her2simError
from ..experiments.cache import RestCache
from .lessons import LESSONS

__all__ = ["Controls", "Explorer", "ExploreInputError", "parse_controls", "make_server", "serve",
           "DRUGS", "VARIANTS", "NODES", "EDGES"]

#: drugs offered, with the dose slider range (nM) and a default dose
DRUGS: tuple[tuple[str, str, float, float, float], ...] = (
    # name, label, min nM, max nM, default nM
    ("trastuzumab", "trastuzumab (anti-HER2 domain IV)", 0.01, 300.0, 10.0),
    ("pertuzumab", "pertuzumab (anti-HER2 domain II)", 0.1, 300.0, 70.0),
    ("margetuximab", "margetuximab (Fc-engineered)", 0.1, 300.0, 70.0),
    ("tdm1", "T-DM1 (ADC, DM1 payload)", 0.1, 100.0, 10.0),
    ("tdxd", "T-DXd (ADC, permeable payload)", 0.1, 100.0, 10.0),
    ("lapatinib", "lapatinib (EGFR/HER2 TKI)", 1.0, 10000.0, 1000.0),
    ("neratinib", "neratinib (covalent pan-HER TKI)", 0.1, 1000.0, 100.0),
    ("tucatinib", "tucatinib (HER2-selective TKI)", 1.0, 10000.0, 300.0),
    ("alpelisib", "alpelisib (PI3Kalpha)", 1.0, 10000.0, 1000.0),
    ("everolimus", "everolimus (mTORC1)", 0.1, 1000.0, 10.0),
    ("palbociclib", "palbociclib (CDK4/6)", 1.0, 10000.0, 300.0),
    ("fulvestrant", "fulvestrant (ER degrader)", 0.1, 1000.0, 100.0),
)
DRUG_NAMES = tuple(d[0] for d in DRUGS)

#: variant switches: name, label; CD16A genotypes are exclusive (the host has one)
VARIANTS: tuple[tuple[str, str], ...] = (
    ("pik3ca_h1047r", "PIK3CA H1047R"), ("pten_loss", "PTEN loss"), ("her3_high", "HER3 high"),
    ("ccnd1_amp", "CCND1 amplified"), ("p95her2", "p95HER2"), ("her2_low", "HER2-low"),
    ("er_positive", "ER-positive (raise ER)"), ("cd16a_158f", "host CD16A-158F/F"),
    ("cd16a_158v", "host CD16A-158V/V"),
)
VARIANT_NAMES = tuple(v[0] for v in VARIANTS)
EXCLUSIVE = (("cd16a_158f", "cd16a_158v"),)

MAX_HOURS = 240.0

#: pathway diagram: id, label, observable coloured by, group, centre x, y (SVG units, 640 x 470 canvas)
NODES: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("EGFR", "EGFR", "pEGFR", "receptors", 90, 60),
    ("HER2", "HER2", "pHER2", "receptors", 230, 60),
    ("HER3", "HER3", "pHER3", "receptors", 370, 60),
    ("HER3tot", "HER3 protein", "HER3_total", "receptors", 510, 60),
    ("RAS", "RAS", "RAS_active", "mapk", 90, 160),
    ("PI3K", "PI3K / PIP3", "PIP3_level", "pi3k", 300, 160),
    ("ER", "ER activity", "ER_activity", "er", 560, 160),
    ("ERK", "ERK", "pERK", "mapk", 90, 250),
    ("AKT", "AKT", "pAKT", "pi3k", 300, 250),
    ("FOXO", "nuclear FOXO", "FOXO_nuclear", "pi3k", 430, 250),
    ("4EBP1", "4E-BP1", "p4EBP1", "pi3k", 70, 330),
    ("mTOR", "mTORC1 / S6", "pS6", "pi3k", 200, 330),
    ("CycD", "cyclin D1", "cyclinD1", "cycle", 400, 330),
    ("CDK46", "CDK4/6", "CDK46_active", "cycle", 550, 330),
    ("NK", "NK-cell ADCC", "adcc_rate_obs", "immune", 90, 420),
    ("Apop", "apoptosis", "apoptosis_rate", "fate", 240, 420),
    ("Prolif", "proliferation", "proliferation_rate", "fate", 390, 420),
    ("Rb", "pRb", "pRb", "cycle", 550, 420),
)
#: edges: source, target, kind ("act" arrow, "inh" bar), bend (px of a quadratic curve; 0 straight)
EDGES: tuple[tuple[str, str, str, float], ...] = (
    ("EGFR", "RAS", "act", 0), ("HER2", "RAS", "act", 0), ("HER2", "PI3K", "act", 0), ("HER3", "PI3K", "act", 0),
    ("RAS", "ERK", "act", 18), ("ERK", "RAS", "inh", 18), ("PI3K", "AKT", "act", 0), ("AKT", "mTOR", "act", 0),
    ("mTOR", "4EBP1", "inh", 0), ("mTOR", "PI3K", "inh", -70), ("AKT", "FOXO", "inh", 0),
    ("FOXO", "HER3tot", "act", 0), ("FOXO", "ER", "act", 0), ("ERK", "CycD", "act", 0), ("ER", "CycD", "act", 0),
    ("mTOR", "CycD", "act", 0), ("CycD", "CDK46", "act", 0), ("CDK46", "Rb", "act", 0), ("Rb", "Prolif", "act", 0),
    ("AKT", "Apop", "inh", 0), ("HER3tot", "HER3", "act", 0), ("HER2", "NK", "act", 0),
)
#: drug -> diagram nodes it acts on (badges)
DRUG_TARGETS = {
    "trastuzumab": ("HER2", "NK"), "pertuzumab": ("HER2",), "margetuximab": ("HER2", "NK"),
    "tdm1": ("HER2", "Apop"), "tdxd": ("HER2", "Apop"), "lapatinib": ("EGFR", "HER2"),
    "neratinib": ("EGFR", "HER2"), "tucatinib": ("HER2",), "alpelisib": ("PI3K",), "everolimus": ("mTOR",),
    "palbociclib": ("CDK46",), "fulvestrant": ("ER",),
}
#: extra series sent besides every observable (species reported as relative counts)
EXTRA_SERIES = ("viable_cells",)


@dataclass(frozen=True)
class Controls:
    """One simulation request. Doses in nM, ligands in nM, times in h."""

    drugs: tuple[tuple[str, float], ...] = ()
    variants: tuple[str, ...] = ()
    hrg_nM: float = 0.0
    egf_nM: float = 0.0
    nk: bool = False
    hours: float = 72.0
    washout_h: float | None = None

    def medium(self) -> tuple:
        """Everything but the drugs: the key of the untreated control."""
        return (self.variants, self.hrg_nM, self.egf_nM, self.nk, self.hours)

    def parameters(self) -> dict:
        params = {"HRG": self.hrg_nM, "EGF": self.egf_nM}
        if not self.nk:
            params["NK_activity"] = 0.0  # an in-vitro dish: no NK cells
        return params


def _number(payload: dict, key: str, default: float, lo: float, hi: float) -> float:
    value = payload.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ExploreInputError(f"{key}: expected a number, got {value!r}") from None
    if not (lo <= value <= hi) or not math.isfinite(value):
        raise ExploreInputError(f"{key}: {value:g} is outside [{lo:g}, {hi:g}]")
    return value


def parse_controls(payload: dict) -> Controls:
    """Validate a JSON controls object: ``drugs`` {name: dose nM >= 0}, ``variants`` [names],
    ``hrg_nM``, ``egf_nM`` (0-100 nM), ``nk`` (bool), ``hours`` (0-240], ``washout_h`` (null or
    inside (0, hours)). Drugs at dose 0 are dropped. Raises ExploreInputError naming the field."""
    if not isinstance(payload, dict):
        raise ExploreInputError("controls: expected a JSON object")
    unknown = set(payload) - {"drugs", "variants", "hrg_nM", "egf_nM", "nk", "hours", "washout_h"}
    if unknown:
        raise ExploreInputError(f"controls: unknown field(s) {sorted(unknown)}")
    drugs = payload.get("drugs") or {}
    if not isinstance(drugs, dict):
        raise ExploreInputError("drugs: expected an object {name: dose_nM}")
    doses = []
    for name, dose in sorted(drugs.items()):
        if name not in DRUG_NAMES:
            raise ExploreInputError(f"drugs: unknown drug {name!r}; the explorer offers {', '.join(DRUG_NAMES)}")
        value = _number(drugs, name, 0.0, 0.0, 1e6)
        if value > 0:
            doses.append((name, value))
    variants = payload.get("variants") or []
    if not isinstance(variants, list) or any(v not in VARIANT_NAMES for v in variants):
        raise ExploreInputError(f"variants: expected a list of {', '.join(VARIANT_NAMES)}, got {variants!r}")
    for group in EXCLUSIVE:
        if len(set(group) & set(variants)) > 1:
            raise ExploreInputError(f"variants: {' and '.join(group)} exclude each other (a host has one genotype)")
    hours = _number(payload, "hours", 72.0, 1.0, MAX_HOURS)
    washout = payload.get("washout_h")
    if washout is not None:
        washout = _number(payload, "washout_h", 0.0, 0.0, hours)
        if not 0.0 < washout < hours:
            raise ExploreInputError(f"washout_h: {washout:g} must lie inside (0, {hours:g}) h, or be null")
    nk = payload.get("nk", False)
    if not isinstance(nk, bool):
        raise ExploreInputError(f"nk: expected true or false, got {nk!r}")
    return Controls(tuple(doses), tuple(sorted(set(variants))), _number(payload, "hrg_nM", 0.0, 0.0, 100.0),
                    _number(payload, "egf_nM", 0.0, 0.0, 100.0), nk, hours, washout)


@dataclass
class Explorer:
    """Simulation service of the explorer; owns its caches (bounded, LRU, per instance).

    ``networks``: variant set -> compiled Network (model ``model`` with every explorer drug loaded).
    ``controls_cache``: :meth:`Controls.medium` -> untreated control trajectories.
    ``rest_cache``: drug-free rest states (:class:`her2sim.experiments.RestCache`, keyed by each
    network's digest), shared by treated and control runs of the same cells and medium.
    """

    model: str = "default"
    max_networks: int = 16
    max_controls: int = 64
    networks: OrderedDict = field(default_factory=OrderedDict, repr=False)
    controls_cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    rest_cache: RestCache = field(default_factory=RestCache, repr=False)
    #: simulations run one at a time: the rest-state cache is not thread-safe, and the GIL would
    #: serialise most of the work anyway
    run_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def network(self, variants: tuple[str, ...]):
        """Compiled network for a variant set (compiled on first use, then cached)."""
        from ..model.load import load_model
        from ..model.network import compile_network

        key = (self.model, variants)
        with self.lock:
            if key in self.networks:
                self.networks.move_to_end(key)
                return self.networks[key]
        net = compile_network(load_model(self.model, variants=list(variants), drugs=list(DRUG_NAMES)))
        with self.lock:
            self.networks[key] = net
            while len(self.networks) > self.max_networks:
                self.networks.popitem(last=False)
        return net

    def warm(self, variant_sets) -> None:
        """Compile the networks of ``variant_sets`` (iterable of name tuples) ahead of their first use."""
        for variants in variant_sets:
            self.network(tuple(sorted(variants)))

    @staticmethod
    def times(hours: float) -> np.ndarray:
        """Output grid (h): every 0.5 h up to 96 h, at most 193 points beyond."""
        return np.linspace(0.0, hours, int(min(2 * hours, 192)) + 1)

    def _run(self, controls: Controls, drugs: dict, events=()):
        from ..solvers.solve import simulate

        network = self.network(controls.variants)
        with self.run_lock:
            return simulate(network, drugs=drugs, time=controls.hours, t_eval=self.times(controls.hours),
                            parameters=controls.parameters(), events=events, rest_cache=self.rest_cache)

    def control(self, controls: Controls):
        """Untreated control of the same cells and medium (cached)."""
        key = (self.model, controls.medium())
        with self.lock:
            if key in self.controls_cache:
                self.controls_cache.move_to_end(key)
                return self.controls_cache[key]
        result = self._run(controls, {})
        with self.lock:
            self.controls_cache[key] = result
            while len(self.controls_cache) > self.max_controls:
                self.controls_cache.popitem(last=False)
        return result

    def simulate(self, controls: Controls) -> dict:
        """Treated and control time courses as JSON-ready lists, with the wall time in ms."""
        t0 = time.perf_counter()
        control = self.control(controls)
        drugs = dict(controls.drugs)
        if drugs:
            events = [(controls.washout_h, {k: 0.0 for k in drugs})] if controls.washout_h else []
            treated = self._run(controls, drugs, events)
        else:
            treated = control
        names = list(treated.observable_names) + [n for n in EXTRA_SERIES if n in treated.species_names]
        series = {n: {"treated": _clean(treated.values(n)[0]), "control": _clean(control.values(n)[0]),
                      "unit": treated.unit_of(n)} for n in names}
        return {"time": _clean(treated.time), "series": series,
                "controls": {"drugs": drugs, "variants": list(controls.variants), "hrg_nM": controls.hrg_nM,
                             "egf_nM": controls.egf_nM, "nk": controls.nk, "hours": controls.hours,
                             "washout_h": controls.washout_h},
                "elapsed_ms": round(1000 * (time.perf_counter() - t0), 1)}

    def meta(self) -> dict:
        """Static description of the controls, the diagram and the lessons."""
        from ..demos import SUMMARIES
        from ..model.load import load_model

        spec = load_model(self.model)
        units = {o.name: o.unit for o in spec.observables}
        desc = {o.name: o.description for o in spec.observables}
        for s in spec.species:
            if s.name in EXTRA_SERIES:
                units[s.name], desc[s.name] = s.unit, s.description
        return {
            "model": self.model,
            "drugs": [{"name": n, "label": lab, "min_nM": lo, "max_nM": hi, "default_nM": d} for n, lab, lo, hi, d in DRUGS],
            "variants": [{"name": n, "label": lab} for n, lab in VARIANTS],
            "exclusive": [list(g) for g in EXCLUSIVE],
            "units": units, "descriptions": desc,
            "nodes": [{"id": i, "label": lab, "observable": o, "group": g, "x": x, "y": y} for i, lab, o, g, x, y in NODES],
            "edges": [{"source": a, "target": b, "kind": k, "bend": w} for a, b, k, w in EDGES],
            "drug_targets": {k: list(v) for k, v in DRUG_TARGETS.items()},
            "lessons": [{**item.to_json(), "summary": SUMMARIES.get(item.demo, "")} for item in LESSONS],
            "max_hours": MAX_HOURS,
        }


def _clean(values) -> list:
    """Floats rounded to 6 significant digits; non-finite -> None (JSON null)."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in np.asarray(values, dtype=float).tolist()]


# ----------------------------------------------------------------------------- HTTP
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
MAX_BODY = 65536


def _static(name: str) -> bytes:
    return resources.files("her2sim.explore").joinpath("static", name).read_bytes()


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 0, *, quiet: bool = True) -> ThreadingHTTPServer:
    """A ThreadingHTTPServer serving ``explorer`` (``port=0``: any free port; see ``server_address``)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "her2sim-explore"

        def log_message(self, fmt, *args):  # noqa: D401 - stdlib signature
            if not quiet:
                super().log_message(fmt, *args)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, obj) -> None:
            self._send(status, json.dumps(obj, allow_nan=False).encode(), "application/json")

        def do_GET(self):  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                return self._send(200, _static("index.html"), STATIC_FILES["index.html"])
            if path.startswith("/static/") and path[len("/static/"):] in STATIC_FILES:
                name = path[len("/static/"):]
                return self._send(200, _static(name), STATIC_FILES[name])
            if path == "/api/meta":
                return self._json(200, explorer.meta())
            return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

        def do_POST(self):  # noqa: N802 - stdlib name
            if self.path != "/api/simulate":
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: {self.path}"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "request too large"})
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
                result = explorer.simulate(parse_controls(payload))
            except json.JSONDecodeError as exc:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": f"body is not JSON: {exc}"})
            except Her2simError as exc:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return self._json(200, result)

    return ThreadingHTTPServer((host, port), Handler)


def serve(*, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True, model: str = "default") -> int:
    """Run the explorer until Ctrl-C; compiles the default network first so the page answers at once."""
    explorer = Explorer(model)
    try:
        server = make_server(explorer, host, port)
    except OSError as exc:
        raise ExploreInputError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                                "pass another --port, or --port 0 for any free port") from None
    print("her2sim explore: compiling the network ...", flush=True)
    explorer.control(parse_controls({}))
    # the lessons' variant sets compile in the background (~1 s each) so that picking a lesson is instant
    lesson_sets = {tuple(sorted(c.get("variants", ()))) for item in LESSONS for _, c in item.steps}
    threading.Thread(target=explorer.warm, args=(sorted(lesson_sets),), daemon=True).start()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{server.server_address[1]}/"
    print(f"her2sim explore: open {url}  (Ctrl-C to stop)", flush=True)
    if host in ("0.0.0.0", ""):
        print("  listening on every interface: students on the same network use this machine's address", flush=True)
    if open_browser:
        import webbrowser

        threading.Timer(0.3, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nher2sim explore: stopped")
    finally:
        server.server_close()
    return 0
