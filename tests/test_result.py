"""Labelled results: DataFrame, xarray, CSV (wide), netCDF and plots."""

import numpy as np
import pandas as pd
import pytest

from her2sim import simulate
from her2sim.errors import UnknownNameError


@pytest.fixture(scope="module")
def single(request):
    from pathlib import Path

    return simulate(Path(__file__).parent / "models" / "binding.toml", time="4 h", preequilibrate=False)


@pytest.fixture(scope="module")
def batch():
    from pathlib import Path

    return simulate(Path(__file__).parent / "models" / "binding.toml", time="4 h", preequilibrate=False,
                    conditions=[{"parameters": {"kon": k}} for k in (1.0, 2.0, 3.0)])


def test_shapes_and_access(single, batch):
    assert single.species.shape == (1, 5, 4)
    assert single["C"].shape == (5,)
    assert batch["C"].shape == (3, 5)
    assert batch.final("C").shape == (3,)
    assert single.at("D", 0.0) == pytest.approx(5.0)
    with pytest.raises(UnknownNameError, match="Did you mean 'fraction_bound'"):
        single.values("fraction_bund")


def test_csv_is_wide_with_time_column(single, tmp_path):
    path = single.to_csv(tmp_path / "out.csv", ["fraction_bound", "total_A"])
    df = pd.read_csv(path)
    assert list(df.columns) == ["time_h", "fraction_bound", "total_A"]
    np.testing.assert_allclose(df["fraction_bound"], single["fraction_bound"])


def test_batch_csv_has_condition_column(batch, tmp_path):
    df = pd.read_csv(batch.to_csv(tmp_path / "b.csv", ["C"]))
    assert list(df.columns) == ["condition", "time_h", "C"]
    assert df["condition"].nunique() == 3


def test_long_dataframe(batch):
    df = batch.to_dataframe(["C", "fraction_bound"])
    assert set(df.columns) == {"condition", "time_h", "name", "value", "unit"}
    assert len(df) == 3 * 5 * 2


def test_xarray_and_netcdf_round_trip(batch, tmp_path):
    xr = pytest.importorskip("xarray")
    ds = batch.to_xarray()
    assert ds["species"].dims == ("condition", "time", "species_name")
    assert ds["time"].attrs["unit"] == "h"
    path = batch.to_netcdf(tmp_path / "b.nc")
    back = xr.open_dataset(path, engine="scipy")
    np.testing.assert_allclose(back["observables"].values, batch.observables)
    assert list(back["status"].values) == ["ok", "ok", "ok"]


def test_plot_returns_figure(batch, tmp_path):
    fig = batch.plot(["C", "fraction_bound"])
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert len([a for a in fig.axes if a.get_visible()]) == 2


def test_summary_mentions_every_observable(single):
    text = single.summary()
    assert "fraction_bound" in text and "total_A" in text


def test_relative_counts_are_dimensionless_in_tables_files_and_batches(tmp_path):
    """viable_cells (a relative count, 1 = at dosing) is integrated as nM but never labelled nM."""
    xr = pytest.importorskip("xarray")
    r = simulate("default", time="6 h", parameters={"NK_activity": 0})
    assert r.unit_of("viable_cells") == "dimensionless" and r.unit_of("viable_cells_her2low") == "dimensionless"
    assert r.unit_of("pHER2") == "nM" and r.unit_of("HER3") == "nM"  # signalling species stay nM
    assert r.unit_of("viable_cells_low") == "dimensionless"  # the observable of the HER2-low count
    assert "viable_cells" in r.summary(["viable_cells"]) and "nM" not in r.summary(["viable_cells"])
    ds = xr.open_dataset(r.to_netcdf(tmp_path / "r.nc"), engine="scipy")
    assert ds["species_unit"].sel(species_name="viable_cells").item() == "dimensionless"
    assert ds["species_unit"].sel(species_name="HER2").item() == "nM"
    from her2sim import compile_network, load_model, simulate_batch

    net = compile_network(load_model("default"))
    b = simulate_batch(net, t_eval=np.linspace(0.0, 1.0, 3)).to_result(net)
    assert b.unit_of("viable_cells") == "dimensionless" and b.unit_of("pHER2") == "nM"


def test_relative_must_be_a_boolean(tmp_path):
    from her2sim import load_model
    from her2sim.errors import ModelFileError

    path = tmp_path / "m.toml"
    path.write_text('[model]\nname = "m"\n[species.cells]\ninitial = "1 nM"\nrelative = "yes"\nsource = "assumed"\n'
                    '[parameters.k]\nvalue = "0.1 1/h"\nsource = "assumed"\n'
                    '[reactions.grow]\nproducts = ["cells"]\nrate = "k * cells"\nsource = "assumed"\n')
    with pytest.raises(ModelFileError, match="relative must be true or false"):
        load_model(path)
