"""Tests for her2sim.experiments: conditions, the readout grammar and quadrature, the status
vocabulary, the rest-state service and its digest-keyed cache, and run_conditions on both engines.

Closed forms come from tests/models/screen_product.toml: U is made at kU / (1 + a/Ka) and lost at
dU U (kU = 1 nM/h, dU = 1/h, Ka = 10 nM), so after dosing from rest U(t) = u + (1 - u) exp(-t)
with u = 1 / (1 + a/Ka); V likewise with kV = 0.5 nM/h, dV = 0.5/h and 1 / (1 + (b/Kb)^2).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import her2sim
from her2sim.solvers.batch import STATUS_CODES
from her2sim.experiments import (
    READOUT_KINDS,
    Condition,
    ConditionBatch,
    Readout,
    ReadoutError,
    RestCache,
    RestStates,
    network_digest,
    parse_readout,
    run_conditions,
    screen_label,
)
from her2sim.solvers.status import Status
from her2sim.experiments.readouts import window_grid, window_value
from her2sim.solvers.solve import make_condition

MODELS = Path(__file__).parent / "models"
PRODUCT = MODELS / "screen_product.toml"
KA, KB = 10.0, 30.0


@pytest.fixture(scope="module")
def net():
    return her2sim.compile_network(her2sim.load_model(PRODUCT, drugs=["screen_a", "screen_b", "screen_blowup"]))


def _batch(net, doses, **kwargs):
    return ConditionBatch(tuple(make_condition(net, d) for d in doses), **kwargs)


# ----------------------------------------------------------------------------- readout grammar
NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n.lower() != "gr")
TIMES = st.integers(1, 40_000).map(lambda k: k / 8)  # exactly representable in %g


@st.composite
def readouts(draw):
    kind = draw(st.sampled_from(READOUT_KINDS))
    name = draw(NAMES)
    if kind == "rest":
        return Readout(name, kind)
    time_h = draw(st.one_of(st.none(), TIMES))
    start = 0.0
    if kind in ("mean", "auc") and time_h is not None and draw(st.booleans()):
        start = draw(st.integers(1, 40_000).map(lambda k: k / 8).filter(lambda s: s < time_h))
    return Readout(name, kind, time_h, start)


@given(readouts())
@settings(max_examples=300, deadline=None)
def test_the_canonical_text_of_every_readout_parses_back_to_it(r):
    again = parse_readout(str(r))
    assert again == r
    assert again.label == str(r)
    assert (again.t0, again.t1) == (r.t0, r.t1)


@given(readouts(), TIMES)
@settings(max_examples=200, deadline=None)
def test_resolving_fills_only_a_missing_time_of_a_timed_readout(r, end):
    resolved = parse_readout(str(r), end_time_h=end)
    if r.kind in ("at", "mean", "auc", "gr") and r.time_h is None:
        assert resolved.time_h == end and resolved.t1 == end
    else:
        assert resolved == r


@given(st.from_regex(r"[a-z]{1,6}", fullmatch=True), NAMES)
@settings(max_examples=200, deadline=None)
def test_unknown_kinds_are_refused_with_one_clear_error(kind, name):
    text = f"{kind}:{name}@2h"
    if kind in READOUT_KINDS or kind == "ss":
        assert parse_readout(text).name == name
    else:
        with pytest.raises(ReadoutError, match="unknown kind"):
            parse_readout(text)


@pytest.mark.parametrize("text, fragment", [
    ("rest:pAKT@2h", "take no time"),
    ("pAKT@1h..2h", "needs auc: or mean:"),
    ("mean:pAKT@3h..2h", "T0 < T1"),
    ("mean:pAKT@0h", "must be > 0"),
    ("p AKT", "is not [kind:]name[@time]"),
])
def test_malformed_readouts_name_the_fix(text, fragment):
    with pytest.raises(ReadoutError) as info:
        parse_readout(text)
    assert fragment in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- quadrature
@given(st.floats(0.0, 50.0), st.floats(0.1, 50.0), st.floats(0.05, 2.0),
       st.tuples(*[st.floats(-3.0, 3.0)] * 3))
@settings(max_examples=200, deadline=None)
def test_window_quadrature_is_exact_on_quadratics_and_mean_divides_by_the_window(t0, width, step, coef):
    t1 = t0 + width
    grid = window_grid(t0, t1, step)
    assert grid[0] == t0 and grid[-1] == pytest.approx(t1) and np.all(np.diff(grid) > 0)
    a, b, c = coef
    f = a + b * grid + c * grid ** 2
    exact = a * width + b * (t1 ** 2 - t0 ** 2) / 2 + c * (t1 ** 3 - t0 ** 3) / 3
    scale = abs(a) * width + abs(b) * t1 ** 2 + abs(c) * t1 ** 3 + 1e-12
    auc = window_value("auc", f, grid, t0, t1)
    assert abs(auc - exact) <= 1e-9 * scale
    assert window_value("mean", f, grid, t0, t1) == pytest.approx(auc / (t1 - t0), rel=1e-12, abs=1e-12)


def test_windowed_mean_and_auc_match_the_closed_form(net):
    """A window that does not start at 0: mean = area / (T1 - T0), not / T1."""
    t0, t1 = 2.0, 5.0
    d = np.array([0.0, 10.0, 90.0])
    u = 1 / (1 + d / KA)
    area = u * (t1 - t0) + (1 - u) * (math.exp(-t0) - math.exp(-t1))
    for engine in ("batch", "scipy"):
        ds = run_conditions(net, _batch(net, [{"screen_a": x} for x in d]), ["mean:U@2h..5h", "auc:U@2h..5h"],
                            engine=engine)
        np.testing.assert_allclose(ds.value.sel(readout="auc:U@2h..5h").values, area, rtol=1e-4)
        np.testing.assert_allclose(ds.value.sel(readout="mean:U@2h..5h").values, area / (t1 - t0), rtol=1e-4)


# ----------------------------------------------------------------------------- status vocabulary
def test_one_status_vocabulary_agrees_with_the_batch_integrator():
    for code, name in STATUS_CODES.items():
        assert Status(code).label == name
    assert Status.OK.is_successful and not Status.DIVERGED.is_successful
    assert [screen_label(c) for c in (0, 1, 5, 6, 10)] == ["ok", "failed", "failed", "not_steady", "failed"]
    from her2sim.sweep.store import STATUS_CODES as SWEEP_CODES

    assert SWEEP_CODES == {int(o): o.label for o in Status if int(o) <= 9}  # sweep files keep their integers


def test_the_old_status_names_are_one_type_with_a_deprecation_warning():
    """result.Status (was a dataclass 'ok'/'failed') and experiments.Outcome (an IntEnum) are one type."""
    import her2sim.experiments as ex
    from her2sim.solvers.result import Status as ResultStatus

    assert ResultStatus is Status and her2sim.Status is Status
    with pytest.warns(DeprecationWarning, match="use her2sim.solvers.status.Status"):
        assert ex.Outcome is Status
    with pytest.warns(DeprecationWarning, match="STATUS_NAMES"):
        assert ex.OUTCOME_NAMES == {int(s): s.label for s in Status}
    assert Status.from_label("not_run") is Status.NOT_RUN
    with pytest.raises(her2sim.errors.InvalidArgument, match="unknown status label 'okay'"):
        Status.from_label("okay")


def test_a_result_carries_one_status_and_a_message_per_member():
    from her2sim.solvers.result import Result
    from her2sim.solvers.status import StatusMessage, status_message

    shape = np.zeros((2, 1, 1))
    r = Result(np.zeros(1), shape, shape, ("X",), ("X",), ("nM",), (), (Status.OK, 3))
    assert r.status == (Status.OK, Status.NOT_FINITE) and r.messages == ("", "")
    # the batch integrator's (code, message) pairs are split; its reason names its Status
    pairs = (status_message(), status_message("failed", "max_steps: 100000 steps at t = 3 h"))
    r = Result(np.zeros(1), shape, shape, ("X",), ("X",), ("nM",), (), pairs)
    assert r.status == (Status.OK, Status.MAX_STEPS) and r.messages[1].startswith("max_steps")
    assert status_message("failed", "solver gave up") == StatusMessage(Status.FAILED, "solver gave up")
    with pytest.raises(her2sim.errors.InvalidArgument, match=r"status\[0\]"):
        Result(np.zeros(1), shape[:1], shape[:1], ("X",), ("X",), ("nM",), (), ("ok",))


# ----------------------------------------------------------------------------- rest states and their cache
def test_editing_a_network_changes_the_rest_state_cache_key():
    spec = her2sim.load_model(PRODUCT)
    base = her2sim.compile_network(spec)
    same = her2sim.compile_network(her2sim.load_model(PRODUCT))
    assert network_digest(base) == network_digest(same)  # content, not object identity
    edited_value = dataclasses.replace(spec, parameters=tuple(
        dataclasses.replace(p, value=2.0) if p.name == "kU" else p for p in spec.parameters))
    law = spec.reactions[[r.name for r in spec.reactions].index("make_U")]
    edited_law = dataclasses.replace(spec, reactions=tuple(
        dataclasses.replace(r, rate=her2sim.model.expr.parse("2 * kU")) if r is law else r for r in spec.reactions))
    digests = {network_digest(her2sim.compile_network(s)) for s in (spec, edited_value, edited_law)}
    assert len(digests) == 3
    # the cache never hands the edited network the old network's rest state
    cache = RestCache()
    service = RestStates(cache)
    x_old = service.solve(base, base.x0, base.p0).states[0]
    edited = her2sim.compile_network(edited_value)
    x_new = service.solve(edited, edited.x0, edited.p0).states[0]
    u = edited.species_names.index("U")
    assert x_old[u] == pytest.approx(1.0, rel=1e-6) and x_new[u] == pytest.approx(2.0, rel=1e-6)
    assert len(cache) == 2
    assert not hasattr(base, "_steady_state_cache") and "_steady_state_cache" not in vars(base)


def test_rest_states_agree_between_engines_and_hold_cell_counts(net):
    P = np.tile(net.p0, (3, 1))
    P[:, net.parameter_index("kU")] = [0.5, 1.0, 2.0]
    X0 = np.tile(net.x0, (3, 1))
    X0[:, net.species_index("viable_cells")] = 3.0
    a = RestStates().solve(net, X0, P, engine="scipy")
    b = RestStates().solve(net, X0, P, engine="batch")
    assert a.ok.all() and b.ok.all()
    np.testing.assert_allclose(a.states, b.states, rtol=1e-7, atol=1e-9)
    assert (a.states[:, net.species_index("viable_cells")] == 3.0).all()  # held, though it grows otherwise
    np.testing.assert_allclose(a.states[:, net.species_index("U")], [0.5, 1.0, 2.0], rtol=1e-6)
    assert (a.drift < 1e-7).all() and (b.drift < 1e-7).all()


# ----------------------------------------------------------------------------- run_conditions
def test_both_engines_give_the_closed_form_and_a_labelled_dataset(net):
    doses = [{"screen_a": a, "screen_b": b} for a in (0, 10) for b in (0, 30)]
    rds = ["U@3h", "steady:V", "rest:U", "gr:viable_cells@24h"]
    results = {e: run_conditions(net, _batch(net, doses), rds, engine=e) for e in ("batch", "scipy")}
    for ds in results.values():
        assert ds.value.dims == ("condition", "readout") and list(ds.readout.values) == rds
        assert (ds.status == "ok").all() and (ds.message == "").all() and (ds.rest_code == 0).all()
        a = np.array([d["screen_a"] for d in doses])
        b = np.array([d["screen_b"] for d in doses])
        u = 1 / (1 + a / KA)
        np.testing.assert_allclose(ds.value.sel(readout="U@3h"), u + (1 - u) * math.exp(-3), rtol=1e-5)
        np.testing.assert_allclose(ds.value.sel(readout="steady:V"), 1 / (1 + (b / KB) ** 2), rtol=1e-6)
        np.testing.assert_allclose(ds.value.sel(readout="rest:U"), 1.0, rtol=1e-7)
        np.testing.assert_allclose(ds.initial.sel(readout="gr:viable_cells@24h"), 1.0)
    np.testing.assert_allclose(results["batch"].value, results["scipy"].value, rtol=1e-5)


def test_a_failed_member_is_reported_never_dropped(net):
    batch = _batch(net, [{"screen_a": 10}, {"screen_blowup": 10}, {"screen_a": 1}])
    for engine in ("batch", "scipy"):
        ds = run_conditions(net, batch, ["R@24h"], engine=engine)
        assert ds.sizes["condition"] == 3
        assert list(ds.status.values[[0, 2]]) == ["ok", "ok"] and ds.status.values[1] != "ok"
        assert np.isnan(ds.value.values[1, 0]) and np.isfinite(ds.value.values[[0, 2], 0]).all()
        assert ds.message.values[1] and ds.rest_code.values[1] == 0  # it failed after dosing, not at rest


def test_the_pre_equilibration_part_has_its_own_status(net):
    """A member without a drug-free rest state (dU = 0: U grows without bound) fails in the
    pre-equilibration part, with its own status; the others run."""
    conds = (make_condition(net, {"screen_a": 10}), Condition({}, {"dU": 0.0}))
    for engine in ("batch", "scipy"):
        ds = run_conditions(net, ConditionBatch(conds), ["U@2h"], engine=engine, rest_engine=engine)
        assert ds.rest_code.values.tolist() == [0, int(Status.PREEQUILIBRATION)]
        assert ds.status.values.tolist() == ["ok", "preequilibration"]
        assert ds.rest_message.values[1].startswith("pre-equilibration:") and np.isnan(ds.value.values[1, 0])
        without = run_conditions(net, ConditionBatch(conds, preequilibrate=False), ["U@2h"], engine=engine)
        assert (without.status == "ok").all()  # the same members run from their initial state
        assert without.value.values[1, 0] == pytest.approx(1.0 + 2.0, rel=1e-6)  # dU = 0: U = 1 + kU t


def test_washout_events_are_honoured_by_every_engine_and_mode(net):
    """A washout at 2 h: U recovers towards 1 afterwards. Block mode must not ignore the event."""
    a = 90.0
    u = 1 / (1 + a / KA)
    u2 = u + (1 - u) * math.exp(-2)
    expected = 1 + (u2 - 1) * math.exp(-3)  # 3 h after the washout
    conds = [{"drugs": {"screen_a": a}, "events": [("2 h", {"screen_a": 0})]}] * 2
    for mode in ("loop", "block"):
        res = her2sim.simulate(net, conditions=conds, time="5 h", t_eval=[0, 2, 5], mode=mode)
        np.testing.assert_allclose(res.values("U")[:, -1], expected, rtol=1e-5)
    batch = ConditionBatch((make_condition(net, {"screen_a": a}, events=[("2 h", {"screen_a": 0})]),) * 2)
    for engine in ("batch", "scipy"):
        ds = run_conditions(net, batch, ["U@5h"], engine=engine)
        np.testing.assert_allclose(ds.value.values[:, 0], expected, rtol=1e-5)


def test_a_scheduler_gives_the_same_dataset(net):
    batch = _batch(net, [{"screen_a": a} for a in (0, 1, 10, 100)])
    local = run_conditions(net, batch, ["R@4h", "auc:R@4h"])
    split = run_conditions(net, batch, ["R@4h", "auc:R@4h"], scheduler="processes", chunk=2)
    np.testing.assert_array_equal(local.value.values, split.value.values)
    assert (split.status == "ok").all()


def test_bad_arguments_are_refused_before_any_work(net):
    batch = _batch(net, [{"screen_a": 1}])
    with pytest.raises(her2sim.UnknownNameError, match="nothere"):
        run_conditions(net, batch, ["nothere@2h"])
    with pytest.raises(ReadoutError, match="needs a time"):
        run_conditions(net, batch, ["U"])
    with pytest.raises(ReadoutError, match="beyond the run"):
        run_conditions(net, batch, ["U@5h"], time=2.0)
    with pytest.raises(her2sim.errors.InvalidArgument, match="engine"):
        run_conditions(net, batch, ["U@2h"], engine="euler")
    with pytest.raises(her2sim.errors.InvalidArgument, match="batch must be"):
        run_conditions(net, [{"screen_a": 1}], ["U@2h"])


# ----------------------------------------------------------------------------- screens and sweeps on the layer
def test_each_background_is_normalised_by_its_own_untreated_control(tmp_path):
    """A background that halves V's synthesis: R's control differs, but the fraction unaffected of
    R by drug B (which divides V's synthesis) is the same in both backgrounds."""
    from her2sim.screen.screen import dose_response

    shutil.copytree(MODELS, tmp_path / "models")
    (tmp_path / "models" / "variants").mkdir()
    (tmp_path / "models" / "variants" / "half_kv.toml").write_text(
        '[variant]\nname = "half_kv"\ndescription = "half the synthesis of V"\n\n'
        '[set.parameters.kV]\nvalue = "0.25 nM/h"\nsource = "assumed: test variant"\n')
    ds = dose_response(str(tmp_path / "models" / "screen_product.toml"), "screen_b", [0, 30, 300], "steady:R",
                       backgrounds=[[], ["half_kv"]])
    control = ds.readout.isel(dose_A=0).values
    assert control[1] == pytest.approx(0.5 * control[0], rel=1e-6)
    np.testing.assert_allclose(ds.fraction_unaffected.isel(dose_A=0).values, 1.0)
    b = ds.dose_A.values
    for bg in range(2):
        np.testing.assert_allclose(ds.fraction_unaffected.values[bg], 1 / (1 + (b / KB) ** 2), rtol=1e-5)


def test_relative_sweep_parameters_scale_the_nominal_value(tmp_path):
    """dV is 0.5 1/h: relative factors f give dV = 0.5 f, so the rest state V = kV / dV = 1 / f
    (absolute values f would give 0.5 / f)."""
    from her2sim.sweep.sweep import open_sweep, run_sweep

    spec = tmp_path / "rel.toml"
    spec.write_text(f'[sweep]\nname = "rel"\nmodel = "{PRODUCT}"\ntime = "2 h"\nreadouts = ["rest:V", "V@2h"]\n\n'
                    '[parameters.dV]\nvalues = [0.5, 1, 4]\nrelative = true\n')
    run_sweep(spec, tmp_path / "out")
    ds = open_sweep(tmp_path / "out").load()
    f = ds.dV.values
    np.testing.assert_allclose(ds["rest:V"].values, 1 / f, rtol=1e-6)
    assert (ds.status == 0).all()
