"""The command line: every subcommand, exit codes, and `check` rejecting bad files."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from her2sim.cli import main

MODELS = Path(__file__).parent / "models"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "her2sim", *args], capture_output=True, text=True, timeout=600)


def test_help_documents_every_subcommand():
    out = run("--help").stdout
    for command in ("simulate", "models", "check", "drugs"):
        assert command in out


def test_simulate_writes_wide_csv_and_plot(tmp_path, capsys):
    csv, png = tmp_path / "r.csv", tmp_path / "r.png"
    code = main(["simulate", "--model", str(MODELS / "target.toml"), "--drug", "testinib=10nM", "--time", "12h",
                 "--observe", "p_fraction", "Kp", "--out", str(csv), "--plot", str(png)])
    assert code == 0
    df = pd.read_csv(csv)
    assert list(df.columns) == ["time_h", "p_fraction", "Kp"]
    assert df["time_h"].iloc[-1] == 12
    assert png.stat().st_size > 1000
    assert "p_fraction" in capsys.readouterr().out


def test_simulate_netcdf(tmp_path):
    pytest.importorskip("xarray")
    assert main(["simulate", "--model", str(MODELS / "decay.toml"), "--out", str(tmp_path / "r.nc"),
                 "--no-preequilibrate", "--time", "5h"]) == 0
    assert (tmp_path / "r.nc").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--drug", "nodrug=1nM"], "unknown drug"),
    (["--drug", "testinib=-5nM"], "negative"),
    (["--drug", "testinib=5kg"], "expected nM"),
    (["--observe", "p_fractoin"], "Did you mean 'p_fraction'"),
    (["--time", "soon"], "cannot read"),
    (["--set", "kact=1nM"], "dimension"),
], ids=["unknown-drug", "negative-dose", "dose-unit", "unknown-observable", "bad-time", "param-unit"])
def test_simulate_bad_input_gives_a_clear_error(args, fragment, capsys):
    code = main(["simulate", "--model", str(MODELS / "target.toml"), *args])
    assert code == 2
    assert fragment in capsys.readouterr().err


def test_check_accepts_good_and_rejects_bad_files(tmp_path, capsys):
    assert main(["check", str(MODELS / "binding.toml")]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text((MODELS / "binding.toml").read_text().replace('rate = "kdeg * D"', 'rate = "__import__(\'os\').system(\'ls\')"'))
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "bad.toml" in out and "dunder names are not allowed" in out


def test_check_exit_status_via_subprocess(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model]\nname = 'x'\n[species.A]\ninitial = '-1 nM'\nsource = 'assumed'\n")
    proc = run("check", str(bad))
    assert proc.returncode == 1
    assert "negative initial amount" in proc.stdout


def test_models_lists_bundled_files(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for heading in ("models:", "modules:", "variants:", "drugs:"):
        assert heading in out


def test_version_flag_prints_the_version(capsys):
    import her2sim

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"her2sim {her2sim.__version__}"


def test_demo_list_gives_one_described_line_per_demo(capsys):
    from her2sim.demos import DEMOS

    assert main(["demo", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(DEMOS)
    assert all(len(line.split(None, 1)[1]) > 30 for line in lines)


def test_models_observables_lists_relative_counts_as_dimensionless(capsys):
    assert main(["models", "--observables"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "viable_cells" in line and "[" in line]
    assert lines and all("[dimensionless]" in line for line in lines)


def test_simulate_plot_has_a_title_and_the_untreated_control(tmp_path, monkeypatch):
    from her2sim import plot

    figures = []
    real = plot.plot_simulation
    monkeypatch.setattr(plot, "plot_simulation", lambda *a, **k: figures.append(real(*a, **k)) or figures[-1])
    png = tmp_path / "p.png"
    assert main(["simulate", "--model", str(MODELS / "target.toml"), "--drug", "testinib=10nM", "--time", "12h",
                 "--observe", "p_fraction", "--plot", str(png)]) == 0
    fig = figures[0]
    assert "testinib 10nM vs untreated control" in fig._suptitle.get_text()
    ax = fig.axes[0]
    assert ax.get_xlabel() == "time after dosing (h)" and ax.get_ylabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["untreated control", "treated"]
    control, treated = (line.get_ydata() for line in ax.get_lines()[:2])
    assert not np.allclose(control, treated)


def test_main_job_without_drugs_says_what_to_try_next(capsys):
    assert main(["simulate", "--time", "2h", "--observe", "pAKT"]) == 0
    out = capsys.readouterr().out
    assert "drug-free steady state" in out and "her2sim explore" in out and "--drug lapatinib=1uM" in out
    assert main(["simulate", "--time", "2h", "--observe", "pAKT", "--drug", "lapatinib=1uM"]) == 0
    assert "Next:" not in capsys.readouterr().out
