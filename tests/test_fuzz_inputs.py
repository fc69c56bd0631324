"""Generated inputs (hypothesis): model files, API arguments and command lines end in a valid
result or a clean Her2simError (the CLI: exit 0, 1 or 2 and one stderr line), never anything
else (issue 11). The default runs are small; the ``slow`` runs try a few thousand examples."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2sim.errors import Her2simError

MODELS = Path(__file__).parent / "models"
DECAY = MODELS / "decay.toml"
FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
MANY = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))

# ----------------------------------------------------------------------------- model files
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**400, 10**400),
                    st.sampled_from([0, -1, 1e-320, 1e308, 1e309]))
UNITS = st.sampled_from(["nM", "uM", "1/h", "1/nM/h", "pL", "L", "molecule", "g/mol", "h", "", "kg", "nM/h",
                         "1/s", "m", "bogus", "nM**2", "1/(nM*h)"])
QUANTITIES = st.one_of(
    st.builds(lambda x, u: f"{x} {u}".strip(), NUMBERS, UNITS),
    st.builds(lambda x, u: f"{x!r} {u}", st.sampled_from(["nan", "inf", "-inf", "1e999", "0x10", "1_0"]), UNITS),
    NUMBERS, st.text(max_size=20), st.booleans(), st.lists(st.integers(), max_size=2))
TOKENS = st.sampled_from(["k", "A", "B", "kx", "1", "0", "2.5", "1e309", "+", "-", "*", "/", "**", "(", ")",
                          "exp(", "log(", "min(", ",", "hill(", "__class__", "lambda", "[", "]", "'a'", "A.real",
                          "1e5", "-", "--", "sqrt(", "abs(", "max(", " "])
EXPRESSIONS = st.one_of(st.lists(TOKENS, max_size=30).map(" ".join), st.text(max_size=40),
                        st.sampled_from(["k * A", "-" * 5000 + "A", "+".join(["A"] * 300), "(" * 300 + "A" + ")" * 300,
                                         "k * A / (A - A)", "exp(1e5 * k)"]),
                        st.integers(-5, 5), st.floats())
STOICH = st.one_of(st.lists(st.one_of(st.sampled_from(["A", "B", "2 A", "inf B", "nan A", "-1 B", "0 A", "1e400 B",
                                                        "x y z", "", " A"]), st.text(max_size=6)), max_size=3),
                   st.text(max_size=5), st.integers())


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if abs(v) < 2**63 else json.dumps(str(v))
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


@st.composite
def model_files(draw) -> str:
    size, a0, b0, k = draw(QUANTITIES), draw(QUANTITIES), draw(QUANTITIES), draw(QUANTITIES)
    rate, obs = draw(EXPRESSIONS), draw(st.one_of(st.just("B"), EXPRESSIONS))
    reactants, products = draw(st.one_of(st.just(["A"]), STOICH)), draw(st.one_of(st.just(["B"]), STOICH))
    lines = ['[model]', 'name = "fuzz"']
    if draw(st.booleans()):
        lines += ['[compartments.cell]', f'size = {_toml_value(size)}', 'source = "assumed: test"']
    lines += ['[species.A]', f'initial = {_toml_value(a0)}', 'source = "assumed: test"',
              '[species.B]', f'initial = {_toml_value(b0)}', 'source = "assumed: test"',
              '[parameters.k]', f'value = {_toml_value(k)}', 'source = "assumed: test"',
              '[reactions.conv]', f'reactants = {_toml_value(reactants)}', f'products = {_toml_value(products)}',
              f'rate = {_toml_value(rate)}', 'source = "assumed: test"',
              '[observables.Bobs]', f'expr = {_toml_value(obs)}']
    return "\n".join(lines) + "\n"


def _load_and_run(text: str) -> None:
    from her2sim import simulate
    from her2sim.model.load import check_file, load_model

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        problems = check_file(path)
        assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
        try:
            spec = load_model(path)
        except Her2simError:
            assert problems, "load_model refused a file that check passed"
            return
        assert not problems, f"check reported problems for a file that loads: {problems}"
        try:
            result = simulate(spec, time="1 h", preequilibrate=False, max_steps=5000)
        except Her2simError:
            return
        finite = np.isfinite(result.species)
        assert finite.all() or not result.status[0].is_successful


@FAST
@given(model_files())
def test_generated_model_files_load_or_fail_cleanly(text):
    _load_and_run(text)


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_arbitrary_text_as_a_model_file_fails_cleanly(text):
    _load_and_run(text)


@pytest.mark.slow
@MANY
@given(model_files())
def test_many_generated_model_files(text):
    _load_and_run(text)


# ----------------------------------------------------------------------------- API arguments
ODD = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12), st.lists(st.text(max_size=4), max_size=2),
                st.dictionaries(st.text(max_size=4), st.one_of(NUMBERS, st.text(max_size=6)), max_size=2),
                st.just(np.array([1.0, 2.0])), st.just(object()))
API_ARGUMENTS = st.fixed_dictionaries({}, optional={
    "rtol": ODD, "atol": ODD, "time": st.one_of(ODD, QUANTITIES), "t_eval": ODD, "drugs": ODD, "variants": ODD,
    "parameters": st.one_of(ODD, st.dictionaries(st.just("k"), QUANTITIES, max_size=1)), "events": ODD,
    "conditions": st.one_of(ODD, st.lists(ODD, max_size=2)), "max_steps": ODD, "method": ODD, "mode": ODD,
    "preequilibrate": ODD})


def _simulate_cleanly(kwargs: dict) -> None:
    from her2sim import simulate

    kwargs = {"time": 1, **kwargs}
    try:
        result = simulate(DECAY, max_steps=kwargs.pop("max_steps", 5000), **kwargs)
    except Her2simError as exc:
        assert str(exc).strip()
        return
    assert result.species.shape[0] == result.n_conditions


@FAST
@given(API_ARGUMENTS)
def test_generated_simulate_arguments_fail_cleanly(kwargs):
    _simulate_cleanly(kwargs)


@pytest.mark.slow
@MANY
@given(API_ARGUMENTS)
def test_many_generated_simulate_arguments(kwargs):
    _simulate_cleanly(kwargs)


# ----------------------------------------------------------------------------- command lines
OPTION_TEXT = st.one_of(st.sampled_from(["0", "2", "-1", "nan", "inf", "1e-6", "1e-300", "1e309", "abc", "", "1h",
                                         "-1h", "0h", "inf h", "3 nM", "1e9 h", "72h"]),
                        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                max_size=8))
OUTPUTS = st.sampled_from(["x.csv", "x.nc", "x.txt", "nope/x.csv", ".", "x.csv/", "file/x.csv", ""])


@st.composite
def command_lines(draw) -> list[str]:
    argv = ["simulate", "--model", str(DECAY)]
    for flag in ("--rtol", "--atol", "--time", "--washout"):
        if draw(st.booleans()):
            argv += [f"{flag}={draw(OPTION_TEXT)}"]
    if draw(st.booleans()):
        argv += ["--set", f"k={draw(OPTION_TEXT)}"]
    if draw(st.booleans()):
        argv += ["--drug", f"{draw(st.sampled_from(['testinib', 'nodrug', '', '=']))}={draw(OPTION_TEXT)}"]
    if draw(st.booleans()):
        argv += ["--observe", draw(st.sampled_from(["X_obs", "X", "nope", "-"]))]
    if draw(st.booleans()):
        argv += ["--out", draw(OUTPUTS)]
    if draw(st.booleans()):
        argv += ["--plot", draw(st.sampled_from(["p.png", "p.gif", "nope/p.png", "."]))]
    if "--time" not in " ".join(argv):
        argv += ["--time", "1h"]
    return argv


def _run_cli_cleanly(argv: list[str], capsys) -> None:
    from her2sim.cli import main

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "file").write_text("x")
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own usage errors: exit 2 with its usage message
            code = exc.code
        finally:
            os.chdir(cwd)
        err = capsys.readouterr().err
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        if code != 0 and not err.startswith("usage:"):
            assert len(err.strip().splitlines()) == 1, (argv, err)
        written = sorted(p.name for p in Path(folder).rglob("*") if p.name != "file")
        if code != 0:
            assert written == [], (argv, written)  # nothing half-written


@FAST
@given(argv=command_lines())
def test_generated_command_lines_end_cleanly(argv, capsys):
    _run_cli_cleanly(argv, capsys)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=command_lines())
def test_many_generated_command_lines(argv, capsys):
    _run_cli_cleanly(argv, capsys)


# ----------------------------------------------------------------------------- trial and sweep options
INTS = st.one_of(st.integers(-5, 5), st.integers(-10**20, 10**20), st.sampled_from(["1e9", "x", "", "2.5", "-0"]))


@st.composite
def trial_and_sweep_command_lines(draw) -> list[str]:
    if draw(st.booleans()):
        argv = ["trial", draw(st.sampled_from(["emilia_like", "nosuch", "", "/dev/null"]))]
        for flag in ("--patients", "--seed", "--workers", "--block"):
            if draw(st.booleans()):
                argv.append(f"{flag}={draw(INTS)}")
    else:
        argv = ["sweep", draw(st.sampled_from(["spec.toml", "nosuch.toml", "file"])), "--out",
                draw(st.sampled_from(["out", "file", "nope/deeper/out", ".", ""]))]
        if draw(st.booleans()):
            argv.append(f"--chunk={draw(INTS)}")
    if draw(st.booleans()):
        argv += ["--scheduler", draw(st.sampled_from(["local", "threads", "processes", "dask:/x", ""]))]
    if argv[0] == "trial" and draw(st.booleans()):
        argv += ["--out", draw(st.sampled_from(["out", "file", "nope/deeper", "."]))]
    return argv


def _run_options_cleanly(argv: list[str], monkeypatch, capsys) -> None:
    """The options layer only: the (minutes-long) work is replaced by a stub that checks what it got."""
    from her2sim import cli
    from her2sim.sweep import sweep
    from her2sim.trial import scaleout

    calls = []

    def fake_trial(spec, patients, seed, *, block, scheduler, progress, cache):
        # --workers is a deprecated alias of --scheduler (issue 10): a checked --workers arrives as a scheduler
        assert 2 <= patients <= 10**6 and seed >= 0 and scheduler in (None, "local", "processes") \
            and (block is None or block >= 1)
        assert cache is not None  # the CLI shares one TableCache between the trial and --independent-action
        calls.append("trial")
        raise KeyboardInterrupt  # stop here: the work itself is not under test

    def fake_executor(scheduler, fn, ctx, who):  # the sweep's own checks run; its work does not
        assert ctx.spec.chunk >= 1
        calls.append("sweep")
        raise KeyboardInterrupt

    monkeypatch.setattr(scaleout, "run_trial", fake_trial)
    monkeypatch.setattr(sweep, "open_executor", fake_executor)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "file").write_text("x")
        (Path(folder) / "spec.toml").write_text(f'[sweep]\nmodel = "{MODELS / "screen_product.toml"}"\n'
                                                'time = "1 h"\nreadouts = ["R@1h"]\n[drugs.screen_a]\n'
                                                'doses = ["0 nM", "1 nM"]\n')
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = exc.code
        finally:
            os.chdir(cwd)
        err = capsys.readouterr().err
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        if argv[:2] == ["trial", ""]:
            assert code in (0, 2)  # no spec: lists the bundled trials (after argparse's own checks)
        elif calls:
            assert code == 130, (argv, code, err)
            assert sorted(p.name for p in Path(folder).iterdir()) == ["file", "spec.toml"], argv
        else:
            assert code == 2, (argv, code, err)
            assert err.startswith("usage:") or len(err.strip().splitlines()) == 1, (argv, err)
            assert sorted(p.name for p in Path(folder).iterdir()) == ["file", "spec.toml"], argv


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=trial_and_sweep_command_lines())
def test_generated_trial_and_sweep_options_end_cleanly(argv, monkeypatch, capsys):
    _run_options_cleanly(argv, monkeypatch, capsys)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))  # each loads a spec
@given(argv=trial_and_sweep_command_lines())
def test_many_generated_trial_and_sweep_options(argv, monkeypatch, capsys):
    _run_options_cleanly(argv, monkeypatch, capsys)
