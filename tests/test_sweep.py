"""Chunked sweeps: readouts against the scipy path, resume equals an uninterrupted run, failures are
recorded (never dropped), retries, the Dask and process-pool paths equal the in-process one, bounded
memory by structure, the lazy reader, Sobol' indices, and the `her2sim sweep` command."""

import gc
import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

import her2sim
from her2sim.sweep import sweep as sw
from her2sim.sweep import store as sweep_store
from her2sim.sweep.sweep import (STATUS_CODES, ChunkOutput, SweepDirectoryError, open_sweep, run_sweep, sobol_indices)
from her2sim.sweep.load import load_sweep_spec

MODEL = Path(__file__).parent / "models" / "screen_product.toml"

SPEC = f"""
[sweep]
name = "small"
model = "{MODEL}"
time = "24 h"
readouts = ["R@12h", "auc:R", "mean:U@0h..6h", "viable_cells@24h", "rest:R", "ss:R"]
chunk = 7

[drugs.screen_a]
doses = {{ start = "1 nM", stop = "100 nM", num = 3, scale = "log", zero = true }}

[drugs.screen_b]
doses = ["0 nM", "30 nM"]

[samples]
method = "sobol"
n = 8
seed = 1
[samples.parameters]
kU = {{ start = 0.5, stop = 2, scale = "log", relative = true }}
dV = {{ start = "0.25 1/h", stop = "1 1/h" }}
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "small.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def clean(spec_path, tmp_path_factory):
    """An uninterrupted in-process run: the reference for every other path."""
    out = tmp_path_factory.mktemp("clean") / "out"
    result = run_sweep(spec_path, out)
    return result, open_sweep(out).load()


def test_readouts_match_the_scipy_path(clean):
    result, ds = clean
    assert result.complete and result.n_failed == 0 and result.chunks_run == 10
    net = her2sim.compile_network(her2sim.load_model(MODEL, drugs=["screen_a", "screen_b"]))
    grid = np.linspace(0, 24, 4801)
    worst = {}
    for a in (0, 3):
        for b in (0, 1):
            s = 5
            point = ds.isel(screen_a=a, screen_b=b, sample=s)
            ref = her2sim.simulate(net, drugs={"screen_a": float(point.screen_a), "screen_b": float(point.screen_b)},
                                   parameters={"kU": float(point.kU) * 1.0, "dV": float(point.dV)}, time="24 h",
                                   t_eval=grid, method="Radau", rtol=1e-10, atol=1e-12)
            R, U = ref.values("R")[0], ref.values("U")[0]
            expected = {"R@12h": R[2400], "auc:R": np.trapezoid(R, grid), "mean:U@0h..6h": np.trapezoid(U[:1201],
                        grid[:1201]) / 6, "viable_cells@24h": ref.values("viable_cells")[0, -1], "rest:R": R[0]}
            for name, value in expected.items():
                worst[name] = max(worst.get(name, 0), abs(float(point[name]) - value) / abs(value))
            # steady state under the drugs: U and V each relax to their synthesis/loss balance
            kU, dV = float(point.kU), float(point.dV)
            ss = kU / (1 + float(point.screen_a) / 10) * 0.5 / dV / (1 + (float(point.screen_b) / 30) ** 2)
            worst["ss:R"] = max(worst.get("ss:R", 0), abs(float(point["ss:R"]) - ss) / ss)
    assert worst["R@12h"] < 1e-5 and worst["viable_cells@24h"] < 1e-5 and worst["rest:R"] < 1e-7
    assert worst["auc:R"] < 3e-4 and worst["mean:U@0h..6h"] < 3e-4 and worst["ss:R"] < 1e-5


def test_dataset_is_labelled_by_the_axes(clean, spec_path):
    _, ds = clean
    spec = load_sweep_spec(spec_path)
    assert ds["R@12h"].dims == ("sample", "screen_a", "screen_b")
    assert list(ds.screen_a.values) == [0, 1, 10, 100] and ds.screen_a.attrs["units"] == "nM"
    pts = spec.samples.points(np.arange(8))
    assert np.array_equal(ds.kU.values, pts[:, 0]) and np.array_equal(ds.dV.values, pts[:, 1])
    assert ds["auc:R"].attrs["units"] == "nM**2*h" or ds["auc:R"].attrs["kind"] == "auc"
    assert (ds.status == 0).all() and (ds.message == "").all()
    assert ds.attrs["sample_parameters"] == ["kU", "dV"]


def test_the_manifest_and_every_chunk_carry_an_accuracy_certificate(clean):
    result, ds = clean
    manifest = sweep_store.read_manifest(result.out_dir)
    acc = manifest["summary"]["accuracy"]
    assert acc["chunks"] == 10 and acc["members_checked"] == 9 * 2 + 1  # at least 2 per chunk (the last has 1)
    assert 0 < acc["max_rel_error"] < 1e-4 and "Radau" in acc["reference"]
    assert ds.attrs["max_rel_error"] == acc["max_rel_error"]
    worst = 0.0
    for c in range(10):
        meta = json.loads(str(sweep_store.load_chunk(sweep_store.chunk_path(result.out_dir, c), ("meta",))["meta"]))
        lo, hi = meta["lo"], meta["hi"]
        cert = meta["certificate"]
        assert len(cert["members"]) == min(2, hi - lo) and all(lo <= m < hi for m in cert["members"])
        worst = max(worst, cert["max_rel_error"])
    assert worst == acc["max_rel_error"]


def _interrupt_after(k):
    def callback(info):
        if info.chunks_done == k:
            raise KeyboardInterrupt
    return callback


def test_resume_after_an_interruption_equals_a_clean_run(spec_path, clean, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec_path, out, callback=_interrupt_after(3))
    assert len(os.listdir(out / "chunks")) == 3
    assert sw.read_manifest(out)["state"] == "interrupted"
    # a crash while writing leaves only a temporary file, which is ignored
    (out / "chunks" / ".chunk_0000003.npz.999.tmp").write_bytes(b"half a file")
    partial = open_sweep(out)
    assert int((partial.status == sw.NOT_RUN).sum()) == 64 - 21
    with pytest.raises(SweepDirectoryError, match="resume"):
        run_sweep(spec_path, out)
    result = run_sweep(spec_path, out, resume=True)
    assert result.chunks_skipped == 3 and result.chunks_run == 7 and result.complete
    assert open_sweep(out).load().identical(clean[1])


def test_resume_refuses_a_changed_spec(spec_path, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec_path, out, callback=_interrupt_after(1))
    changed = tmp_path / "changed.toml"
    changed.write_text(SPEC.replace("seed = 1", "seed = 2"))
    with pytest.raises(SweepDirectoryError, match="different sweep"):
        run_sweep(changed, out, resume=True)
    with pytest.raises(SweepDirectoryError, match="same --chunk"):
        run_sweep(spec_path, out, resume=True, chunk=5)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(SweepDirectoryError, match="not an empty directory"):
        run_sweep(spec_path, tmp_path / "other")


def test_bad_scheduler_fails_before_anything_is_written(spec_path, tmp_path):
    from her2sim.executors import SchedulerError

    with pytest.raises(SchedulerError, match="got 'threads'"):
        run_sweep(spec_path, tmp_path / "out", scheduler="threads")
    assert not (tmp_path / "out").exists()


def test_a_failing_chunk_is_retried_then_recorded_and_the_rest_completes(spec_path, clean, tmp_path, monkeypatch):
    monkeypatch.setenv(sw.FAULTS_ENV, "2:1,5:2")  # chunk 2 fails once, chunk 5 twice
    out = tmp_path / "out"
    result = run_sweep(spec_path, out)
    assert result.chunks_failed == (5,) and not result.complete
    assert result.failures == {"chunk_failed": 7}
    assert result.chunks_retried == (2, 5)
    assert "chunks retried after an exception: 2 (1 succeeded on retry)" in result.summary()
    assert "chunk 5 raised RuntimeError" in result.summary()
    ds = open_sweep(out).load()
    failed = ds.status.values.ravel()[35:42]
    assert (failed == sw.CHUNK_FAILED).all()
    assert all("injected fault in chunk 5" in m for m in ds.message.values.ravel()[35:42])
    assert np.isnan(ds["R@12h"].values.ravel()[35:42]).all()
    ok = np.ones(64, dtype=bool)
    ok[35:42] = False
    assert np.array_equal(ds["R@12h"].values.ravel()[ok], clean[1]["R@12h"].values.ravel()[ok])  # chunk 2 retried
    monkeypatch.delenv(sw.FAULTS_ENV)
    again = run_sweep(spec_path, out, resume=True)  # failed chunks are run again on resume
    assert again.chunks_run == 1 and again.complete
    assert open_sweep(out).load().identical(clean[1])


FAILING = f"""
[sweep]
model = "{MODEL}"
time = "10 h"
readouts = ["R@10h", "X@10h"]
chunk = 4
[drugs.screen_blowup]
doses = ["0 nM", "0.5 nM"]
[parameters.dU]
values = ["0 1/h", "1 1/h", "2 1/h"]
"""


def test_failed_conditions_keep_a_status_and_a_message(tmp_path):
    path = tmp_path / "failing.toml"
    path.write_text(FAILING)
    result = run_sweep(path, tmp_path / "out")
    ds = open_sweep(tmp_path / "out").load()
    status = ds.status.values
    assert ds.status.dims == ("dU", "screen_blowup")
    # dU = 0: U is made but never lost, so there is no rest state
    assert (status[0] == sw.PREEQUILIBRATION).all()
    assert all("no steady state" in m for m in ds.message.values[0])
    # the blow-up drug (X diverges at t = 2 h) fails those members on the batch path
    assert np.isin(status[1:, 1], [1, 2, 3, 4]).all()
    assert all(m.startswith(STATUS_CODES[int(c)]) for c, m in zip(status[1:, 1], ds.message.values[1:, 1]))
    assert (status[1:, 0] == 0).all() and np.isfinite(ds["R@10h"].values[1:, 0]).all()
    assert np.isnan(ds["R@10h"].values[status != 0]).all()  # no value without its reason
    assert result.failures["preequilibration"] == 2 and result.n_failed == 4
    assert "preequilibration 2" in result.summary()


def test_dask_cluster_gives_the_same_results_as_in_process(spec_path, clean, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed (pip install her2sim[dask])")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        result = run_sweep(spec_path, tmp_path / "client", scheduler=client)
        assert "dask" in result.scheduler and result.complete
    assert open_sweep(tmp_path / "client").load().identical(clean[1])


@pytest.mark.slow
def test_dask_address_and_processes_schedulers(spec_path, clean, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed (pip install her2sim[dask])")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  protocol="tcp") as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        run_sweep(spec_path, tmp_path / "address", scheduler=address)
    assert open_sweep(tmp_path / "address").load().identical(clean[1])
    run_sweep(spec_path, tmp_path / "processes", scheduler="processes")
    assert open_sweep(tmp_path / "processes").load().identical(clean[1])


def test_process_pool_fallback_gives_the_same_results(spec_path, clean, tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("distributed", "dask"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    result = run_sweep(spec_path, tmp_path / "pool", scheduler="processes")
    monkeypatch.undo()
    assert "process pool" in result.scheduler
    assert "dask is not installed" in capsys.readouterr().err
    assert open_sweep(tmp_path / "pool").load().identical(clean[1])


def test_the_runner_holds_at_most_one_chunk_of_results(spec_path, tmp_path):
    alive = []

    def count(info):
        gc.collect()
        alive.append(sum(isinstance(o, ChunkOutput) for o in gc.get_objects()))

    run_sweep(spec_path, tmp_path / "out", callback=count)
    assert len(alive) == 10 and max(alive) <= 1


def test_opening_reads_no_chunk_and_indexing_reads_only_what_it_needs(clean, spec_path, tmp_path, monkeypatch):
    out = tmp_path / "out"
    run_sweep(spec_path, out)
    loads = []
    real = sweep_store.load_chunk
    monkeypatch.setattr(sweep_store, "load_chunk", lambda path: loads.append(Path(path).name) or real(path))
    ds = open_sweep(out)
    assert loads == []
    assert not isinstance(ds["R@12h"].variable._data, np.ndarray)  # lazily indexed, not in memory
    value = float(ds["R@12h"].isel(screen_a=3, screen_b=1, sample=6))
    assert loads == ["chunk_0000007.npz"]  # condition 6*8 + 3*2 + 1 = 55 lives in chunk 55 // 7 = 7
    assert value == float(clean[1]["R@12h"].isel(screen_a=3, screen_b=1, sample=6))


def test_progress_line_and_summary(spec_path, tmp_path, capsys):
    result = run_sweep(spec_path, tmp_path / "quiet")
    assert capsys.readouterr().err == ""  # not a terminal: quiet by default
    run_sweep(spec_path, tmp_path / "loud", progress=True)
    err = capsys.readouterr().err
    assert "64/64 conditions" in err and "conditions/s" in err and "ETA" in err
    text = result.summary()
    assert "64 conditions in 10 chunks" in text and "conditions/s" in text and "failed conditions: 0" in text


def test_sobol_indices_of_the_ishigami_function():
    """Ishigami (1990): analytic first-order indices 0.314, 0.442, 0 and total 0.558, 0.442, 0.244."""
    spec = load_sweep_spec({
        "sweep": {"model": str(MODEL), "time": "1 h", "readouts": ["R@1h"]},
        "samples": {"method": "saltelli", "n": 4096, "seed": 7, "parameters": {
            name: {"start": 0.0, "stop": 1.0, "relative": True} for name in ("kU", "kV", "dU")}}})
    u = spec.samples.unit_points(np.arange(spec.samples.size))
    x = -np.pi + 2 * np.pi * u
    y = np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
    got = sobol_indices(y, 3, n_boot=50)
    assert np.allclose(got["S1"], [0.314, 0.442, 0.0], atol=0.03)
    assert np.allclose(got["ST"], [0.558, 0.442, 0.244], atol=0.03)
    assert np.all(got["ST_conf"] < 0.05)


def test_status_codes_are_documented():
    assert STATUS_CODES[0] == "ok" and STATUS_CODES[sw.NOT_RUN] == "not_run"
    assert len(set(STATUS_CODES.values())) == len(STATUS_CODES)


# ----------------------------------------------------------------------------- the command line
@pytest.fixture
def cli(monkeypatch):
    import her2sim.cli

    monkeypatch.setattr(her2sim.cli, "EXTENSIONS", ("her2sim.sweep.cli",))
    return her2sim.cli.main


def test_cli_runs_resumes_and_reports(cli, spec_path, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(["sweep", str(spec_path), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "64 conditions in 10 chunks" in text and "open_sweep" in text
    assert cli(["sweep", str(spec_path), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli(["sweep", str(spec_path), "--out", str(out), "--resume"]) == 0
    assert "10 chunks already done" in capsys.readouterr().out


def test_cli_dry_run_bad_spec_and_interrupt(cli, spec_path, tmp_path, capsys, monkeypatch):
    assert cli(["sweep", str(spec_path), "--out", str(tmp_path / "x"), "--dry-run", "--chunk", "16"]) == 0
    assert "64 conditions in 4 chunks of 16" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("[drugs.screen_b]", "[drugs.screen_bb]"))
    assert cli(["sweep", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "Did you mean 'screen_b'" in capsys.readouterr().err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sw, "run_sweep", interrupted)
    assert cli(["sweep", str(spec_path), "--out", str(tmp_path / "z")]) == 130
    assert "--resume" in capsys.readouterr().err


def test_cli_module_imports_nothing_heavy():
    code = textwrap.dedent("""
        import sys, argparse
        before = set(sys.modules)
        import importlib.util
        spec = importlib.util.spec_from_file_location("sweep_cli", %r)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        parser = argparse.ArgumentParser()
        module.add_parser(parser.add_subparsers())
        new = set(sys.modules) - before
        print(sorted(m for m in new if m.split('.')[0] in ('numpy', 'scipy', 'xarray', 'dask', 'distributed')))
    """) % str(Path(sw.__file__).with_name("cli.py"))
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
