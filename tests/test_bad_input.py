"""Bad input, one row per function/option and bad value: each must raise a Her2simError (the CLI:
exit 2 and one line) whose message names the argument, before any work is done (issue 11)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pytest

from her2sim import simulate
from her2sim.cli import main
from her2sim.errors import (ExpressionError, Her2simError, InvalidArgument, ModelFileError, TooLargeError,
                            UnitError)
from her2sim.executors import SchedulerError

MODELS = Path(__file__).parent / "models"
DECAY = MODELS / "decay.toml"
TARGET = MODELS / "target.toml"
PRODUCT = MODELS / "screen_product.toml"
TRIAL_SPEC = Path(__file__).parent.parent / "models" / "trials" / "emilia_like.toml"


# ----------------------------------------------------------------------------- simulate()
SIMULATE_CASES = [
    ("rtol-zero", {"rtol": 0.0}, InvalidArgument, "rtol"),
    ("rtol-two", {"rtol": 2.0}, InvalidArgument, "rtol"),
    ("rtol-nan", {"rtol": float("nan")}, InvalidArgument, "rtol"),
    ("rtol-below-round-off", {"rtol": 1e-15}, InvalidArgument, "rtol"),
    ("rtol-string", {"rtol": "1e-6"}, InvalidArgument, "rtol"),
    ("rtol-bool", {"rtol": True}, InvalidArgument, "rtol"),
    ("atol-negative", {"atol": -1.0}, InvalidArgument, "atol"),
    ("atol-inf", {"atol": math.inf}, InvalidArgument, "atol"),
    ("atol-none", {"atol": None}, InvalidArgument, "atol"),
    ("max-steps-zero", {"max_steps": 0}, InvalidArgument, "max_steps"),
    ("max-steps-fraction", {"max_steps": 1.5}, InvalidArgument, "max_steps"),
    ("method", {"method": "Euler"}, InvalidArgument, "method"),
    ("mode", {"mode": "fast"}, InvalidArgument, "mode"),
    ("drugs-string", {"drugs": "lapatinib"}, InvalidArgument, "drugs"),
    ("drugs-list", {"drugs": ["lapatinib"]}, InvalidArgument, "drugs"),
    ("drugs-key", {"drugs": {1: "1 nM"}}, InvalidArgument, "drugs"),
    ("variants-string", {"variants": "pik3ca_h1047r"}, InvalidArgument, "variants"),
    ("variants-items", {"variants": [1]}, InvalidArgument, "variants"),
    ("parameters-list", {"parameters": [("k", 1.0)]}, InvalidArgument, "parameters"),
    ("conditions-empty", {"conditions": []}, InvalidArgument, "conditions"),
    ("conditions-string", {"conditions": "x"}, InvalidArgument, "conditions"),
    ("conditions-item", {"conditions": ["x"]}, InvalidArgument, "conditions[0]"),
    ("conditions-key", {"conditions": [{"dose": 1}]}, InvalidArgument, "conditions[0]"),
    ("conditions-drugs", {"conditions": [{"drugs": "testinib"}]}, InvalidArgument, "conditions[0]['drugs']"),
    ("time-inf", {"time": "inf h"}, UnitError, "time"),
    ("time-nan", {"time": float("nan")}, UnitError, "time"),
    ("time-negative", {"time": "-1 h"}, UnitError, "time"),
    ("time-zero", {"time": 0}, UnitError, "time"),
    ("time-none", {"time": None}, InvalidArgument, "time"),
    ("time-unit", {"time": "3 nM"}, UnitError, "time"),
    ("t-eval-decreasing", {"t_eval": [2.0, 1.0]}, InvalidArgument, "t_eval"),
    ("t-eval-text", {"t_eval": "abc"}, InvalidArgument, "t_eval"),
    ("t-eval-after-end", {"time": 1, "t_eval": [0, 5]}, InvalidArgument, "t_eval"),
    ("events-string", {"events": "24 h"}, InvalidArgument, "events"),
    ("events-item", {"events": [(1.0,)]}, InvalidArgument, "events[0]"),
    ("events-time", {"events": [("soon", {})]}, UnitError, "events[0]"),
    ("preequilibrate", {"preequilibrate": "yes"}, InvalidArgument, "preequilibrate"),
    ("model-number", {"model": 42}, InvalidArgument, "model"),
    ("model-empty", {"model": ""}, InvalidArgument, "model"),
    ("output-too-large", {"conditions": [{}] * 600, "t_eval": np.linspace(0, 1, 1_000_000), "time": 1},
     TooLargeError, "split"),
]


@pytest.mark.parametrize("kwargs, error, named", [c[1:] for c in SIMULATE_CASES],
                         ids=[c[0] for c in SIMULATE_CASES])
def test_simulate_rejects(kwargs, error, named):
    kwargs = {"model": DECAY, "time": "1 h", **kwargs}
    with pytest.raises(error) as info:
        simulate(kwargs.pop("model"), **kwargs)
    assert isinstance(info.value, Her2simError) and named in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- batch path and screens
def _batch(**kwargs):
    from her2sim.solvers.batch import simulate_batch
    from her2sim.model.load import load_model
    from her2sim.model.network import compile_network

    return simulate_batch(compile_network(load_model(DECAY)), t_eval=[0.0, 1.0], **kwargs)


def _screen(**kwargs):
    from her2sim.screen.screen import dose_response

    return dose_response(PRODUCT, "screen_a", [0, 10], "R@1h", time="1 h", **kwargs)


OTHER_CASES = [
    ("batch-rtol-string", _batch, {"rtol": "1e-6"}, InvalidArgument, "rtol"),
    ("batch-atol-zero", _batch, {"atol": 0.0}, InvalidArgument, "atol"),
    ("batch-workers-zero", _batch, {"workers": 0}, InvalidArgument, "workers"),
    ("batch-max-steps", _batch, {"max_steps": -3}, InvalidArgument, "max_steps"),
    ("batch-fixed-step-inf", _batch, {"fixed_step": math.inf}, InvalidArgument, "fixed_step"),
    ("screen-rtol-zero", _screen, {"rtol": 0.0}, InvalidArgument, "rtol"),
    ("screen-atol-nan", _screen, {"atol": math.nan}, InvalidArgument, "atol"),
    ("screen-parameters-string", _screen, {"parameters": "kU=1"}, InvalidArgument, "parameters"),
]


@pytest.mark.parametrize("fn, kwargs, error, named", [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_other_entry_points_reject(fn, kwargs, error, named):
    with pytest.raises(error, match=named):
        fn(**kwargs)


# ----------------------------------------------------------------------------- sweeps
SWEEP = textwrap.dedent(f"""
    [sweep]
    model = "{PRODUCT}"
    time = "2 h"
    readouts = ["R@2h"]
    [drugs.screen_a]
    doses = {{DOSES}}
""")


def _sweep_spec(tmp_path, doses: str) -> Path:
    p = tmp_path / "spec.toml"
    p.write_text(SWEEP.replace("{DOSES}", doses))
    return p


def test_sweep_axis_over_the_limit_is_named_before_allocation(tmp_path):
    from her2sim.sweep.load import load_sweep_spec

    with pytest.raises(ModelFileError, match=r"num = 1,000,000,000 values.*limit"):
        load_sweep_spec(_sweep_spec(tmp_path, '{ start = "1 nM", stop = "1 uM", num = 1000000000, scale = "log" }'))


def test_sweep_conditions_over_the_limit_say_how_big_and_how_to_split(tmp_path):
    from her2sim.sweep.load import load_sweep_spec

    spec = SWEEP.replace("{DOSES}", '{ start = "1 nM", stop = "1 uM", num = 100000, scale = "log" }')
    spec += '[drugs.screen_b]\ndoses = { start = "1 nM", stop = "1 uM", num = 100000, scale = "log" }\n'
    p = tmp_path / "spec.toml"
    p.write_text(spec)
    with pytest.raises(ModelFileError, match=r"10,000,000,000 conditions.*split the sweep"):
        load_sweep_spec(p)


@pytest.mark.parametrize("kwargs, error, named", [
    ({"chunk": 0}, InvalidArgument, "chunk"),
    ({"chunk": 10**7}, InvalidArgument, "chunk"),
    ({"scheduler": "threads"}, SchedulerError, "scheduler"),
], ids=["chunk-zero", "chunk-huge", "scheduler"])
def test_run_sweep_rejects_arguments_before_writing(tmp_path, kwargs, error, named):
    from her2sim.sweep.sweep import run_sweep

    out = tmp_path / "out"
    with pytest.raises(error, match=named):
        run_sweep(_sweep_spec(tmp_path, '["0 nM", "10 nM"]'), out, **kwargs)
    assert not out.exists()


def test_run_sweep_output_that_is_a_file(tmp_path):
    from her2sim.sweep.sweep import SweepDirectoryError, run_sweep

    f = tmp_path / "taken"
    f.write_text("x")
    with pytest.raises(SweepDirectoryError, match="not a directory"):
        run_sweep(_sweep_spec(tmp_path, '["0 nM", "10 nM"]'), f)
    assert f.read_text() == "x"


# ----------------------------------------------------------------------------- trials
TRIAL_CASES = [
    ("patients-one", {"patients": 1}, InvalidArgument, "patients"),
    ("patients-huge", {"patients": 10**9}, TooLargeError, "patients"),
    ("patients-float", {"patients": 2.5}, InvalidArgument, "patients"),
    ("seed-negative", {"seed": -1}, InvalidArgument, "seed"),
    ("seed-text", {"seed": "1"}, InvalidArgument, "seed"),
    ("workers-zero", {"workers": 0}, InvalidArgument, "workers"),
    ("block-zero", {"block": 0}, InvalidArgument, "block"),
    ("block-too-large", {"patients": 200_000, "block": 200_000}, TooLargeError, "smaller block"),
]


@pytest.mark.parametrize("kwargs, error, named", [c[1:] for c in TRIAL_CASES], ids=[c[0] for c in TRIAL_CASES])
def test_run_trial_rejects(kwargs, error, named):
    from her2sim.trial import run_trial

    args = {"patients": 20, "seed": 0, **kwargs}
    with pytest.raises(error, match=named):
        run_trial("emilia_like", args.pop("patients"), args.pop("seed"), **args)


ARMS = '''[[trial.arm]]
name = "T-DM1"
regimens = ["tdm1_3.6mgkg_q3w"]
'''
TRIAL_FILE_CASES = [
    ("follow-up-inf", ('follow_up = "24 month"', 'follow_up = "inf month"'), "trial.follow_up"),
    ("follow-up-century", ('follow_up = "24 month"', 'follow_up = "100 year"'), "trial.follow_up"),
    ("assessment-1s", ('assessment_interval = "6 week"', 'assessment_interval = "1 s"'),
     "trial.assessment_interval"),
    ("ratio-inf", (ARMS, ARMS + "ratio = inf\n"), "trial.arm[0]"),
    ("ratio-bool", (ARMS, ARMS + "ratio = true\n"), "trial.arm[0]"),
]


@pytest.mark.parametrize("change, entry", [c[1:] for c in TRIAL_FILE_CASES], ids=[c[0] for c in TRIAL_FILE_CASES])
def test_trial_spec_values_are_checked_at_load(tmp_path, change, entry):
    from her2sim.trial import load_trial

    text = TRIAL_SPEC.read_text()
    assert change[0] in text
    p = tmp_path / "t.toml"
    p.write_text(text.replace(change[0], change[1], 1))
    with pytest.raises(ModelFileError, match=f"t.toml \\[{entry.replace('[', '.').replace(']', '.')}"):
        load_trial(p)


def test_trial_arm_that_is_not_a_table(tmp_path):
    from her2sim.trial import load_trial

    text = TRIAL_SPEC.read_text()
    start = text.index("[[trial.arm]]")
    end = text.index("[[trial.observed]]")
    p = tmp_path / "t.toml"
    # the arm key goes after the role line (the population line changed with issue 15's lines of therapy)
    assert 'role = "calibration"' in text[:start]
    p.write_text(text[:start].replace('role = "calibration"', 'role = "calibration"\narm = ["T-DM1", "lapatinib"]'))
    with pytest.raises(ModelFileError, match=r"trial.arm\[0\].*must be a table"):
        load_trial(p)
    assert end > start


# ----------------------------------------------------------------------------- model files
BASE = textwrap.dedent('''
    [model]
    name = "tiny"
    [compartments.cell]
    size = "1 pL"
    source = "assumed: test"
    [species.A]
    initial = "10 nM"
    source = "assumed: test"
    [species.B]
    initial = "0 nM"
    source = "assumed: test"
    [parameters.k]
    value = "0.1 1/h"
    source = "assumed: test"
    [reactions.conv]
    reactants = ["A"]
    products = ["B"]
    rate = "k * A"
    source = "assumed: test"
    [observables.Bobs]
    expr = "B"
''')
MODEL_CASES = [
    ("value-overflow", ('initial = "10 nM"', 'initial = "1e309 nM"'), "species.A", "not a finite number"),
    ("value-nan", ('initial = "10 nM"', 'initial = "nan nM"'), "species.A", "not a finite number"),
    ("parameter-inf", ('value = "0.1 1/h"', 'value = "inf 1/h"'), "parameters.k", "not a finite number"),
    ("stoichiometry-inf", ('products = ["B"]', 'products = ["inf B"]'), "reactions.conv", "stoichiometry"),
    ("stoichiometry-nan", ('products = ["B"]', 'products = ["nan B"]'), "reactions.conv", "stoichiometry"),
    ("size-zero", ('size = "1 pL"', 'size = "0 pL"'), "compartments.cell", "must be > 0"),
    ("size-negative", ('size = "1 pL"', 'size = "-1 pL"'), "compartments.cell", "must be > 0"),
    ("size-zero-amounts", ('size = "1 pL"\n', 'size = "0 pL"\n'), "compartments.cell", "must be > 0"),
    ("literal-overflow", ('rate = "k * A"', 'rate = "1e309 * k * A"'), "reactions.conv", "too large"),
    ("deep-unary", ('rate = "k * A"', 'rate = "' + "-" * 100_000 + 'k * A"'), "reactions.conv", "limit"),
    ("many-terms", ('rate = "k * A"', 'rate = "' + " + ".join(["k * A"] * 100_000) + '"'), "reactions.conv",
     "limit"),
    ("deep-within-length", ('rate = "k * A"', 'rate = "' + "-" * 3000 + 'k * A"'), "reactions.conv", "nested"),
    ("sum-within-length", ('rate = "k * A"', 'rate = "' + "+".join(["A"] * 1000) + '"'), "reactions.conv",
     "nested"),
    ("include-device", ('name = "tiny"', 'name = "tiny"\nincludes = ["/dev/zero"]'), "model.includes",
     "not a regular file"),
]


@pytest.mark.parametrize("change, entry, reason", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_model_files_are_rejected_by_check_and_at_load(tmp_path, change, entry, reason):
    from her2sim.model.load import check_file, load_model

    assert change[0] in BASE
    p = tmp_path / "m.toml"
    p.write_text(BASE.replace(change[0], change[1], 1))
    problems = check_file(p)
    assert problems and any(str(p) in q and f"[{entry}]" in q and reason in q for q in problems), problems
    with pytest.raises(ModelFileError, match=reason):
        load_model(p)


def test_oversize_model_file_is_rejected_without_reading_it_all(tmp_path):
    from her2sim.model.load import MAX_FILE_BYTES, load_model

    p = tmp_path / "big.toml"
    p.write_text(BASE + "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(ModelFileError, match="larger than the limit"):
        load_model(p)


def test_negative_molecular_weight_is_rejected(tmp_path):
    from her2sim.model.load import check_file

    drug = tmp_path / "drugs" / "neg.toml"
    drug.parent.mkdir()
    drug.write_text(textwrap.dedent('''
        [drug]
        name = "neg"
        class = "test"
        targets = ["A"]
        mechanism = "test"
        dose_parameter = "neg_dose"
        molecular_weight = "-500 g/mol"
        source = "assumed: test"
        [parameters.neg_dose]
        value = "0 nM"
        input = true
        source = "assumed: test"
    '''))
    problems = check_file(drug)
    assert any("[drug.molecular_weight]" in q and "> 0" in q for q in problems), problems


def test_expression_limits_are_generous_for_real_models():
    from her2sim.model import expr

    expr.parse(" + ".join(f"k{i} * A{i}" for i in range(200)))  # 200 terms: fine (Chen 2009's PEtab observable has 182)
    with pytest.raises(ExpressionError, match="nested"):
        expr.parse(" + ".join(f"x{i}" for i in range(600)))  # under the length limit, over the depth limit


# ----------------------------------------------------------------------------- the command line
def _cli_cases(tmp: Path):
    folder = tmp / "folder"
    folder.mkdir(exist_ok=True)
    (tmp / "file").write_text("x")
    sim = ["simulate", "--model", str(DECAY), "--time", "1h"]
    scr = ["screen", "--model", str(PRODUCT), "--drugs", "screen_a", "--doses", "screen_a=0,10", "--time", "1h",
           "--readout", "R@1h"]
    trial = ["trial", "emilia_like", "--patients", "20"]
    return [
        ("sim-rtol-zero", sim + ["--rtol", "0"], "--rtol"),
        ("sim-rtol-two", sim + ["--rtol", "2"], "--rtol"),
        ("sim-rtol-nan", sim + ["--rtol", "nan"], "--rtol"),
        ("sim-atol-negative", sim + ["--atol", "-1"], "--atol"),
        ("sim-time-inf", ["simulate", "--model", str(DECAY), "--time", "inf h"], "--time"),
        ("sim-time-zero", ["simulate", "--model", str(DECAY), "--time", "0h"], "--time"),
        ("sim-washout-negative", sim + ["--washout=-1h"], "--washout"),
        ("sim-out-missing-folder", sim + ["--out", str(tmp / "nope" / "x.csv")], "--out"),
        ("sim-out-directory", sim + ["--out", str(folder)], "--out"),
        ("sim-out-suffix", sim + ["--out", str(tmp / "x.txt")], "--out"),
        ("sim-out-under-a-file", sim + ["--out", str(tmp / "file" / "x.csv")], "--out"),
        ("sim-plot-suffix", sim + ["--plot", str(tmp / "x.gif")], "--plot"),
        ("sim-plot-missing-folder", sim + ["--plot", str(tmp / "nope" / "x.png")], "--plot"),
        ("screen-rtol-zero", scr + ["--rtol", "0"], "--rtol"),
        ("screen-out-missing-folder", scr + ["--out", str(tmp / "nope" / "s.nc")], "--out"),
        ("screen-plot-directory", scr + ["--plot", str(folder)], "--plot"),
        ("demo-plot-missing-folder", ["demo", "her2_blockade", "--plot", str(tmp / "nope" / "d.png")], "--plot"),
        ("demo-unknown", ["demo", "no_such_demo"], "no_such_demo"),
        ("trial-patients-one", trial[:2] + ["--patients", "1"], "--patients"),
        ("trial-patients-huge", trial[:2] + ["--patients", str(10**9)], "--patients"),
        ("trial-seed-negative", trial + ["--seed", "-1"], "--seed"),
        ("trial-workers-zero", trial + ["--workers", "0"], "--workers"),
        ("trial-block-zero", trial + ["--block", "0"], "--block"),
        ("trial-out-file", trial + ["--out", str(tmp / "file")], "--out"),
        ("trial-out-missing-parent", trial + ["--out", str(tmp / "nope" / "deeper")], "--out"),
        ("trial-scheduler", trial + ["--scheduler", "threads"], "scheduler"),
        ("sweep-scheduler", ["sweep", str(_sweep_spec(tmp, '["0 nM", "10 nM"]')), "--out", str(tmp / "sw"),
                             "--scheduler", "threads"], "scheduler"),
        ("sweep-out-file", ["sweep", str(_sweep_spec(tmp, '["0 nM", "10 nM"]')), "--out", str(tmp / "file")],
         "not a directory"),
        ("export-sbml-missing-folder", ["export-sbml", str(DECAY), "-o", str(tmp / "nope" / "m.xml")], "--output"),
        ("export-sbml-suffix", ["export-sbml", str(DECAY), "-o", str(tmp / "m.txt")], "--output"),
        ("check-not-a-file", ["simulate", "--model", "/dev/zero", "--time", "1h"], "not a regular file"),
    ]


@pytest.fixture
def cli_cases(tmp_path):
    return {c[0]: c[1:] for c in _cli_cases(tmp_path)}


CLI_CASE_IDS = ["sim-rtol-zero", "sim-rtol-two", "sim-rtol-nan", "sim-atol-negative", "sim-time-inf", "sim-time-zero",
                "sim-washout-negative", "sim-out-missing-folder", "sim-out-directory", "sim-out-suffix",
                "sim-out-under-a-file", "sim-plot-suffix", "sim-plot-missing-folder", "screen-rtol-zero",
                "screen-out-missing-folder", "screen-plot-directory", "demo-plot-missing-folder", "demo-unknown",
                "trial-patients-one", "trial-patients-huge", "trial-seed-negative", "trial-workers-zero",
                "trial-block-zero", "trial-out-file", "trial-out-missing-parent", "trial-scheduler", "sweep-scheduler",
                "sweep-out-file", "export-sbml-missing-folder", "export-sbml-suffix", "check-not-a-file"]


@pytest.mark.parametrize("case", CLI_CASE_IDS)
def test_cli_bad_option_is_one_line_and_exit_2_before_any_work(case, cli_cases, tmp_path, capsys):
    argv, named = cli_cases[case]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert named in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_every_cli_case_is_listed(tmp_path):
    assert [c[0] for c in _cli_cases(tmp_path)] == CLI_CASE_IDS
