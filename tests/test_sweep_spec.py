"""Sweep specs: every validation error with its documented message (one table), readout grammar,
unit conversion of axes, deterministic sampling, and lazy, process-independent enumeration."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from her2sim.sweep.load import load_sweep_spec
from her2sim.sweep.spec import SweepSpecError, parse_readout

MODEL = Path(__file__).parent / "models" / "screen_product.toml"

GOOD = f"""
[sweep]
name = "t"
model = "{MODEL}"
time = "24 h"
readouts = ["R@12h", "auc:R", "viable_cells@24h"]
chunk = 5

[drugs.screen_a]
doses = {{ start = "1 nM", stop = "100 nM", num = 3, scale = "log", zero = true }}

[drugs.screen_b]
doses = ["0 nM", "12 ug/mL"]

[parameters.kU]
values = [0.5, 1, 2]
relative = true

[parameters.kV]
value = "0.25 nM/h"

[samples]
method = "sobol"
n = 4
seed = 3
[samples.parameters]
dU = {{ start = "0.5 1/h", stop = "2 1/h", scale = "log" }}
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_good_spec_resolves_axes_units_and_shape(tmp_path):
    spec = load_sweep_spec(write(tmp_path, GOOD))
    assert spec.dims == ("kU", "sample", "screen_a", "screen_b")  # doses last
    assert spec.shape == (3, 4, 4, 2) and spec.n_conditions == 96 and spec.n_chunks == 20
    doses_a = spec.axes[2].values
    assert doses_a[0] == 0 and np.allclose(doses_a[1:], [1, 10, 100])
    # 12 ug/mL of a 400 g/mol drug is 30 uM
    assert spec.axes[3].values == (0.0, pytest.approx(30000.0))
    assert spec.axes[0].relative and spec.relative == {"kU"}
    assert spec.fixed == (("kV", 0.25),)
    pts = spec.samples.points(np.arange(4))[:, 0]
    assert np.all((pts >= 0.5) & (pts <= 2))
    assert [r.kind for r in spec.readouts] == ["at", "auc", "at"]
    assert spec.readouts[1].t0 == 0 and spec.readouts[1].t1 == 24


def test_dict_and_file_give_the_same_digest(tmp_path):
    import tomllib

    path = write(tmp_path, GOOD)
    from_file = load_sweep_spec(path)
    from_dict = load_sweep_spec(tomllib.loads(path.read_text()))
    assert from_file.digest == from_dict.digest
    assert load_sweep_spec(path, chunk=7).digest != from_file.digest


BASE = f"""
[sweep]
model = "{MODEL}"
time = "24 h"
readouts = ["R@12h"]
"""

BAD_SPECS = [
    ("unknown-drug", BASE + '[drugs.screen_aa]\ndoses = ["1 nM"]\n', ["[drugs.screen_aa]", "unknown drug 'screen_aa'",
                                                                       "Did you mean 'screen_a'"]),
    ("negative-dose", BASE + '[drugs.screen_a]\ndoses = ["-5 nM"]\n', ["[drugs.screen_a.doses[0]]", "negative"]),
    ("negative-bare-dose", BASE + '[drugs.screen_a]\ndoses = [-5]\n', ["negative"]),
    ("dose-unit", BASE + '[drugs.screen_a]\ndoses = ["5 kg"]\n', ["[drugs.screen_a.doses[0]]", "expected nM"]),
    ("unreadable-unit", BASE + '[drugs.screen_a]\ndoses = ["5 nMolar"]\n', ["cannot read"]),
    ("log-grid-at-zero", BASE + '[drugs.screen_a]\ndoses = { start = "0 nM", stop = "1 uM", num = 3, scale = "log" }\n',
     ["log grid needs start > 0", "zero = true"]),
    ("grid-missing-num", BASE + '[drugs.screen_a]\nstart = "1 nM"\nstop = "1 uM"\n', ["missing num"]),
    ("unknown-top-key", BASE + '[solvr]\nrtol = 1e-6\n', ["[solvr]", "Did you mean 'solver'"]),
    ("unknown-sweep-key", BASE.replace('time = "24 h"', 'time = "24 h"\nreadout = []'),
     ["[sweep.readout]", "Did you mean 'readouts'"]),
    ("unknown-solver-key", BASE + '[solver]\nrtoll = 1e-6\n', ["[solver.rtoll]", "Did you mean 'rtol'"]),
    ("bad-rtol", BASE + '[solver]\nrtol = 2\n', ["[solver.rtol]", "(0, 1)"]),
    ("bad-method", BASE + '[solver]\nmethod = "rk45"\n', ["[solver.method]", "rodas4"]),
    ("unknown-observable", BASE.replace('"R@12h"', '"RR@12h"'), ["[sweep.readouts]", "unknown observable or species 'RR'",
                                                                 "Did you mean 'R'"]),
    ("readout-after-end", BASE.replace('"R@12h"', '"R@48h"'), ["after the end time 24 h"]),
    ("readout-kind", BASE.replace('"R@12h"', '"aucc:R"'), ["unknown kind 'aucc'", "Did you mean 'auc'"]),
    ("readout-time-unit", BASE.replace('"R@12h"', '"R@12kg"'), ["R@12kg"]),
    ("no-readouts", BASE.replace('readouts = ["R@12h"]', "readouts = []"), ["[sweep.readouts]", "non-empty list"]),
    ("no-sweep-table", '[drugs.screen_a]\ndoses = ["1 nM"]\n', ["[sweep]", "needs a [sweep] table"]),
    ("unknown-parameter", BASE + '[parameters.kUU]\nvalues = [1, 2]\n', ["[parameters.kUU]", "Did you mean 'kU'"]),
    ("parameter-unit", BASE + '[parameters.kU]\nvalues = ["1 1/h"]\n', ["[parameters.kU.values[0]]", "dimension"]),
    ("dose-as-parameter", BASE + '[drugs.screen_a]\ndoses = ["1 nM"]\n[parameters.screen_a]\nvalues = [1]\n',
     ["is a drug dose"]),
    ("relative-with-unit", BASE + '[parameters.kU]\nvalues = ["2 nM/h"]\nrelative = true\n', ["factors"]),
    ("unknown-variant", BASE + '[variants]\nsets = [["pten_los"]]\n', ["[variants.sets[0]]", "unknown variant"]),
    ("sobol-not-power-of-2", BASE + '[samples]\nn = 100\n[samples.parameters.kU]\nstart = 0.5\nstop = 2\n'
                                    'relative = true\n', ["[samples.n]", "power of 2", "n = 128"]),
    ("unknown-sample-method", BASE + '[samples]\nmethod = "sobolev"\nn = 8\n[samples.parameters.kU]\nstart = 0.5\n'
                                     'stop = 2\nrelative = true\n', ["[samples.method]", "Did you mean 'sobol'"]),
    ("empty-sample-range", BASE + '[samples]\nn = 8\n[samples.parameters.kU]\nstart = "2 nM/h"\nstop = "1 nM/h"\n',
     ["start < stop"]),
    ("bad-chunk", BASE.replace('time = "24 h"', 'time = "24 h"\nchunk = 0'), ["[sweep.chunk]", ">= 1"]),
    ("unknown-model", BASE.replace(str(MODEL), str(MODEL.with_name("nope.toml"))), ["[sweep.model]", "not found"]),
    ("malformed-toml", BASE + "[drugs.screen_a\n", ["malformed TOML"]),
]


@pytest.mark.parametrize("text, fragments", [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_gives_its_documented_error(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        load_sweep_spec(path)
    message = str(info.value)
    assert str(path) in message  # the file is named
    for fragment in fragments:
        assert fragment in message


def test_every_problem_is_reported_at_once(tmp_path):
    text = BASE + '[drugs.screen_a]\ndoses = ["-1 nM"]\n[solver]\nrtol = 5\natoll = 1\n'
    with pytest.raises(SweepSpecError) as info:
        load_sweep_spec(write(tmp_path, text))
    assert len(info.value.problems) == 3
    import pickle

    again = pickle.loads(pickle.dumps(info.value))
    assert isinstance(again, SweepSpecError) and again.problems == info.value.problems


@pytest.mark.parametrize("text, kind, target, t0, t1", [
    ("pAKT@24h", "at", "pAKT", 24, 24),
    ("pAKT@1.5 day", "at", "pAKT", 36, 36),
    ("auc:pERK@24h", "auc", "pERK", 0, 24),
    ("auc:pERK@0h..24h", "auc", "pERK", 0, 24),
    ("mean:pS6@30min..2h", "mean", "pS6", 0.5, 2),
    ("steady:pAKT", "steady", "pAKT", None, None),
    ("ss:pAKT", "steady", "pAKT", None, None),
    ("rest:viable_cells", "rest", "viable_cells", None, None),
], ids=["at", "at-days", "auc-to-time", "auc-window", "mean-window", "steady", "ss-alias", "rest"])
def test_readout_grammar(text, kind, target, t0, t1):
    r = parse_readout(text)
    assert (r.kind, r.target, r.t0, r.t1) == (kind, target, t0, t1)


def test_readouts_share_the_screens_grammar():
    from her2sim.screen.screen import parse_readout as screen_readout

    for text in ("pAKT@24h", "mean:pAKT@48h", "auc:pERK", "steady:pAKT", "viable_cells@72h"):
        ours, theirs = parse_readout(text), screen_readout(text)
        assert (ours.kind, ours.target) == (theirs.kind, theirs.name)


@pytest.mark.parametrize("text, fragment", [
    ("pAKT@0h..24h", "needs auc: or mean:"),
    ("steady:pAKT@24h", "take no time"),
    ("mean:pAKT@24h..12h", "T0 < T1"),
    ("gr@72h", "untreated control"),
    ("aucc:pAKT", "Did you mean 'auc'"),
    ("p AKT", "is not [kind:]name[@time]"),
], ids=["window-on-value", "time-on-steady-state", "reversed-window", "gr", "kind-typo", "syntax"])
def test_readout_grammar_errors(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_readout(text)
    assert fragment in str(info.value)


def _samples_spec(tmp_path, method, n, seed=0):
    return load_sweep_spec(write(tmp_path, BASE + f"""
[samples]
method = "{method}"
n = {n}
seed = {seed}
[samples.parameters]
kU = {{ start = 0.5, stop = 2, scale = "log", relative = true }}
dU = {{ start = "0.5 1/h", stop = "2 1/h" }}
kV = {{ start = 0, stop = 3, relative = true }}
""", f"{method}{n}{seed}.toml"))


@pytest.mark.parametrize("method", ["sobol", "lhs", "saltelli"])
def test_sampling_is_deterministic_for_a_seed_and_any_row_order(tmp_path, method):
    s = _samples_spec(tmp_path, method, 16).samples
    rows = np.arange(s.size)
    full = s.unit_points(rows)
    assert np.array_equal(full, _samples_spec(tmp_path, method, 16).samples.unit_points(rows))
    assert not np.array_equal(full, _samples_spec(tmp_path, method, 16, seed=1).samples.unit_points(rows))
    pick = np.array([s.size - 1, 3, 4, 5, 0, 9])  # arbitrary rows, runs and wrap-around
    assert np.array_equal(s.unit_points(pick), full[pick])
    assert np.all((full >= 0) & (full < 1))


def test_latin_hypercube_has_one_point_per_stratum(tmp_path):
    u = _samples_spec(tmp_path, "lhs", 50).samples.unit_points(np.arange(50))
    for j in range(u.shape[1]):
        assert sorted(np.floor(u[:, j] * 50).astype(int)) == list(range(50))


def test_saltelli_rows_differ_from_A_in_one_column_only(tmp_path):
    s = _samples_spec(tmp_path, "saltelli", 8).samples
    d = len(s.parameters)
    u = s.unit_points(np.arange(s.size)).reshape(8, d + 2, d)
    A, B = u[:, 0], u[:, 1]
    for i in range(d):
        expected = A.copy()
        expected[:, i] = B[:, i]
        assert np.array_equal(u[:, 2 + i], expected)


def test_log_and_linear_ranges_scale_the_unit_cube(tmp_path):
    s = _samples_spec(tmp_path, "sobol", 64).samples
    pts = s.points(np.arange(64))
    u = s.unit_points(np.arange(64))
    assert np.allclose(pts[:, 0], 0.5 * 4 ** u[:, 0])      # log, factor 1/2..2
    assert np.allclose(pts[:, 1], 0.5 + 1.5 * u[:, 1])     # linear, 1/h
    assert np.allclose(pts[:, 2], 3 * u[:, 2])


HUGE = BASE + """
[drugs.screen_a]
doses = { start = "1 nM", stop = "1 uM", num = 100, scale = "log" }
[drugs.screen_b]
doses = { start = "1 nM", stop = "1 uM", num = 100, scale = "log" }
[samples]
n = 2048
[samples.parameters.kU]
start = 0.5
stop = 2
relative = true
"""


def test_enumeration_is_lazy_for_twenty_million_conditions(tmp_path):
    spec = load_sweep_spec(write(tmp_path, HUGE), chunk=1000)
    assert spec.n_conditions == 100 * 100 * 2048
    lo, hi = spec.chunk_bounds(spec.n_chunks - 1)
    block = spec.block(lo, hi)  # the last chunk only: O(chunk) work and memory
    assert len(block) == 1000 and block.parameters["kU"].shape == (1000,)
    assert block.doses["screen_a"][-1] == pytest.approx(1000)
    i = 123_456_7
    one = spec.block(i, i + 1)
    k, a, b = np.unravel_index(i, spec.shape)
    assert one.doses["screen_a"][0] == spec.axes[1].values[a] and one.doses["screen_b"][0] == spec.axes[2].values[b]
    assert one.parameters["kU"][0] == spec.samples.points(np.array([k]))[0, 0]


def test_enumeration_is_the_same_in_another_process(tmp_path):
    path = write(tmp_path, HUGE)
    code = textwrap.dedent(f"""
        import hashlib, json, numpy as np
        from her2sim.sweep.load import load_sweep_spec
        spec = load_sweep_spec({str(path)!r}, chunk=1000)
        b = spec.block(5_000_000, 5_001_000)
        h = hashlib.sha256(b.doses["screen_a"].tobytes() + b.doses["screen_b"].tobytes()
                           + b.parameters["kU"].tobytes()).hexdigest()
        print(json.dumps([spec.digest, h]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    digest, h = json.loads(out)
    spec = load_sweep_spec(path, chunk=1000)
    b = spec.block(5_000_000, 5_001_000)
    import hashlib

    assert digest == spec.digest
    assert h == hashlib.sha256(b.doses["screen_a"].tobytes() + b.doses["screen_b"].tobytes()
                               + b.parameters["kU"].tobytes()).hexdigest()


def test_bundled_example_specs_are_valid():
    from her2sim.model.load import models_dir

    paths = sorted((models_dir() / "sweeps").glob("*.toml"))
    assert paths
    for path in paths:
        spec = load_sweep_spec(path)
        assert spec.n_conditions >= 1 and spec.readouts
