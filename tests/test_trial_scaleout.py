"""Trials in patient blocks on schedulers give exactly the in-process results."""

import numpy as np
import pandas as pd
import pytest

from her2sim.trial import evaluate, prepare_trial, run_trial
from her2sim.trial.scaleout import run_trial_blocks

SPEC, N, SEED = "emilia_like", 60, 5


@pytest.fixture(scope="module")
def in_process():
    return evaluate(prepare_trial(SPEC, N, SEED))


def assert_same(a, b):
    pd.testing.assert_frame_equal(a.patients, b.patients, check_exact=True)
    assert a.sld.keys() == b.sld.keys()
    for arm in a.sld:
        np.testing.assert_array_equal(a.sld[arm][0], b.sld[arm][0])
        np.testing.assert_array_equal(a.sld[arm][1], b.sld[arm][1])
    for arm, s in a.summary["arms"].items():
        assert s["median_pfs"] == b.summary["arms"][arm]["median_pfs"]
        assert s["ORR"] == b.summary["arms"][arm]["ORR"]


@pytest.mark.parametrize("block", [1, 7, 500])
def test_any_block_size_gives_the_in_process_result(in_process, block):
    assert_same(in_process, run_trial(SPEC, N, SEED, block=block))


def test_calibration_knobs_reach_the_blocks(in_process):
    knobs = {"growth_rate": 0.02 / 24, "signal_scale": 0.05}
    ref = evaluate(prepare_trial(SPEC, N, SEED), **knobs)
    got = run_trial_blocks(SPEC, N, SEED, block=11, **knobs)
    assert_same(ref, got)
    assert not np.array_equal(got.patients.pfs_months, in_process.patients.pfs_months)


def test_bad_block_or_scheduler_is_a_clear_error_before_any_work():
    with pytest.raises(ValueError, match="block must be >= 1"):
        run_trial_blocks(SPEC, N, SEED, block=0)
    from her2sim.executors import SchedulerError

    with pytest.raises(SchedulerError, match="got 'threads'"):
        run_trial(SPEC, N, SEED, scheduler="threads")


@pytest.mark.slow
def test_processes_scheduler_gives_the_in_process_result(in_process):
    assert_same(in_process, run_trial(SPEC, N, SEED, scheduler="processes", block=13))


@pytest.mark.slow
@pytest.mark.optional
def test_dask_client_gives_the_in_process_result(in_process):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        got = run_trial(SPEC, N, SEED, scheduler=client, block=17)
    assert_same(in_process, got)
    assert got.timings["patients_s"] > 0
