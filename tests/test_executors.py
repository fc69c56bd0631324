"""Schedulers shared by sweeps and trials: results in task order, errors named, shared data shipped once."""

import io
import os

import pytest

from her2sim.executors import (PoolExecutor, Progress, SchedulerError, TaskError, check_scheduler, duration,
                               map_tasks, open_executor)


def scaled(shared, k, extra=0):
    """Module level, so it pickles: shared["scale"] * k + extra, and which process ran it."""
    if k < 0:
        raise ValueError(f"negative k {k}")
    return shared["scale"] * k + extra, os.getpid()


def test_local_map_keeps_task_order_and_passes_shared_once():
    out = map_tasks(scaled, {"scale": 3}, [(k, 1) for k in range(7)])
    assert [v for v, _ in out] == [3 * k + 1 for k in range(7)]
    assert {pid for _, pid in out} == {os.getpid()}


def test_process_pool_gives_the_same_results_in_other_processes():
    ex = PoolExecutor(scaled, {"scale": 2.5}, workers=2)
    try:
        futures = [ex.submit(k) for k in range(6)]
        got = [f.result() for f in futures]
    finally:
        ex.close()
    assert [v for v, _ in got] == [2.5 * k for k in range(6)]
    assert os.getpid() not in {pid for _, pid in got}


def test_failing_task_is_named_with_its_arguments():
    with pytest.raises(TaskError, match=r"task 2 \(scaled\(-1\)\) failed on local: ValueError: negative k -1"):
        map_tasks(scaled, {"scale": 1}, [(0,), (1,), (-1,), (3,)])


def test_unknown_scheduler_is_a_clear_error():
    with pytest.raises(SchedulerError, match="scheduler must be None or 'local'.*got 'threads'"):
        open_executor("threads", scaled, {})
    with pytest.raises(ValueError):  # SchedulerError is also a ValueError
        check_scheduler(4)
    for ok in (None, "local", "processes", "dask://host:8786", "tcp://10.0.0.1:8786"):
        check_scheduler(ok)


def test_progress_line_counts_weights_and_reports_rate():
    stream = io.StringIO()
    bar = Progress(10, enabled=True, stream=stream, what="trial", unit="patients")
    map_tasks(scaled, {"scale": 1}, [(k,) for k in range(4)], progress=bar, weights=[1, 2, 3, 4])
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("trial 100.0% 10/10 patients") and "patients/s" in last


def test_duration_text():
    assert duration(5) == "5s" and duration(187) == "3m07s" and duration(7260) == "2h01m"
    assert duration(float("inf")) == "?"


@pytest.mark.optional
@pytest.mark.slow
def test_dask_local_cluster_matches_local():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        got = map_tasks(scaled, {"scale": 7}, [(k,) for k in range(9)], scheduler=client)
    assert [v for v, _ in got] == [7 * k for k in range(9)]
