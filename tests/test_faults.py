"""Faults around the work: full disk, read-only folders, signals (SIGINT, SIGTERM, kill -9) then
resume, damaged sweep files, broken pipes, stale temporaries (issue 11). Nothing half-written,
nothing lost, one line on stderr."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from her2sim.io.atomic import TMP_MARK, atomic_path, atomic_write_text, clean_stale
from her2sim.cli import main
from her2sim.errors import OutputError

MODELS = Path(__file__).parent / "models"
DECAY = MODELS / "decay.toml"
PRODUCT = MODELS / "screen_product.toml"
SRC = str(Path(__file__).parent.parent / "src")


def her2sim(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "her2sim.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kwargs)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process in s (Linux /proc; inf where it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("inf")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TMP_MARK in p.name or p.name.endswith(".tmp"))


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str, read_only: bool = False):
    """A small tmpfs at ``where`` (needs root and mount); skips the test otherwise."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full or read-only file system needs a tmpfs mount, which needs root")
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# ----------------------------------------------------------------------------- atomic writes
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_temporaries_of_dead_processes_are_cleaned_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".x.csv.{dead.pid}{TMP_MARK}.csv"
    old_style = tmp_path / f".chunk_0000001.npz.{dead.pid}.tmp"
    live = tmp_path / f".x.csv.{os.getppid()}{TMP_MARK}.csv"
    for p in (stale, old_style, live):
        p.write_text("partial")
    atomic_write_text(tmp_path / "x.csv", "new")  # cleans stale temporaries of its own name
    assert not stale.exists() and old_style.exists() and live.exists()
    assert clean_stale(tmp_path) == [old_style]
    assert live.exists() and (tmp_path / "x.csv").read_text() == "new"


# ----------------------------------------------------------------------------- full disk
def test_full_disk_is_one_line_and_no_partial_file(tmp_path):
    from her2sim import simulate

    with mounted_tmpfs(tmp_path / "fs", "8k") as fs:
        result = simulate(DECAY, time="200 h", t_eval=np.linspace(0, 200, 2001), preequilibrate=False)
        with pytest.raises(OutputError, match=r"^no space left on device while writing .*x\.csv; nothing was kept$"):
            result.to_csv(fs / "x.csv")
        assert sorted(os.listdir(fs)) == []
        with pytest.raises(OutputError, match="no space left"):
            result.to_netcdf(fs / "x.nc")
        assert sorted(os.listdir(fs)) == []


def test_full_disk_on_the_command_line_exits_1_with_one_line(tmp_path, capsys):
    with mounted_tmpfs(tmp_path / "fs", "4k") as fs:
        code = main(["simulate", "--model", str(DECAY), "--time", "300h", "--out", str(fs / "x.csv")])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.splitlines() == [f"her2sim: error: no space left on device while writing "
                                                  f"{fs / 'x.csv'}; nothing was kept"]
        assert os.listdir(fs) == []


def test_full_disk_during_a_sweep_is_a_clean_error_not_sigbus(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(f"""
        [sweep]
        model = "{PRODUCT}"
        time = "1 h"
        readouts = ["R@1h"]
        chunk = 4096
        [drugs.screen_a]
        doses = ["10 nM"]
        [samples]
        method = "sobol"
        n = 16384
        [samples.parameters]
        kU = {{ start = 0.5, stop = 2, scale = "log", relative = true }}
        dV = {{ start = 0.5, stop = 2, scale = "log", relative = true }}
    """))
    with mounted_tmpfs(tmp_path / "fs", "64k") as fs:  # samples.npy needs 256 kB
        proc = her2sim("sweep", spec, "--out", fs / "out", "--quiet")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert err.strip().splitlines() == [f"her2sim: error: no space left on device while writing "
                                            f"{fs / 'out' / 'samples.npy'}; nothing was kept"]
        assert not (fs / "out" / "samples.npy").exists() and leftovers(fs / "out") == []


# ----------------------------------------------------------------------------- read-only folders
def test_read_only_folder_is_refused_before_any_work(tmp_path, capsys):
    if os.geteuid() == 0:
        ctx = mounted_tmpfs(tmp_path / "ro", "64k", read_only=True)
    else:
        (tmp_path / "ro").mkdir()
        (tmp_path / "ro").chmod(0o555)
        ctx = contextlib.nullcontext(tmp_path / "ro")
    with ctx as ro:
        for argv in (["simulate", "--model", str(DECAY), "--time", "1h", "--out", str(ro / "x.csv")],
                     ["trial", "emilia_like", "--patients", "20", "--out", str(ro / "trial")]):
            assert main(argv) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and "cannot write in" in err and "--out" in err, err


# ----------------------------------------------------------------------------- signals and resume
SWEEP = textwrap.dedent(f"""
    [sweep]
    model = "{PRODUCT}"
    time = "24 h"
    readouts = ["R@12h", "auc:R"]
    chunk = 2
    [drugs.screen_a]
    doses = {{ start = "1 nM", stop = "1 uM", num = 12, scale = "log", zero = true }}
""")


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory):
    from her2sim.sweep.sweep import open_sweep, run_sweep

    folder = tmp_path_factory.mktemp("reference")
    (folder / "spec.toml").write_text(SWEEP)
    run_sweep(folder / "spec.toml", folder / "out")
    return folder / "spec.toml", open_sweep(folder / "out").load()


def _wait_for_chunks(out: Path, n: int, proc, timeout: float = 120) -> None:
    clock = time.monotonic()
    while time.monotonic() - clock < timeout:
        if (out / "chunks").is_dir() and len([p for p in os.listdir(out / "chunks") if p.endswith(".npz")]) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before it could be interrupted: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("no chunk was written in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["sigint", "sigterm", "kill-9"])
def test_a_signalled_sweep_resumes_to_the_same_result(sig, sweep_reference, tmp_path):
    from her2sim.sweep.sweep import open_sweep, read_manifest

    spec, reference = sweep_reference
    out = tmp_path / "out"
    proc = her2sim("sweep", spec, "--out", out, "--quiet")
    _wait_for_chunks(out, 1, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig]
    if proc.returncode == 0:
        pytest.skip("the sweep finished before the signal arrived")
    assert proc.returncode == expected, err
    assert "Traceback" not in err
    if sig != signal.SIGKILL:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ("--resume" in lines[0] or "terminated" in lines[0]), err
        assert read_manifest(out)["state"] == "interrupted"
        assert leftovers(out / "chunks") == []
    resumed = her2sim("sweep", spec, "--out", out, "--resume", "--quiet")
    stdout, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert open_sweep(out).load().identical(reference)
    assert leftovers(out) == [] and leftovers(out / "chunks") == []


def test_damaged_chunk_and_manifest_are_named_and_rerun_on_resume(sweep_reference, tmp_path, capsys):
    from her2sim.sweep.sweep import open_sweep, run_sweep
    from her2sim.sweep.store import DamagedManifestError, read_manifest

    spec, reference = sweep_reference
    out = tmp_path / "out"
    run_sweep(spec, out)
    chunk = out / "chunks" / "chunk_0000002.npz"
    chunk.write_bytes(chunk.read_bytes()[:100])  # truncated, as by a crash of the file system
    (out / "manifest.json").write_text('{"format": "her2sim-sweep", "spec_dig')
    with pytest.raises(DamagedManifestError, match="manifest.json is damaged"):
        read_manifest(out)
    result = run_sweep(spec, out, resume=True)
    err = capsys.readouterr().err
    assert "chunks/chunk_0000002.npz is damaged" in err and "manifest.json was damaged" in err
    assert result.chunks_run == 1 and result.complete
    assert (out / "chunks" / "chunk_0000002.npz.damaged").exists()
    assert open_sweep(out).load().identical(reference)


def test_damaged_samples_file_is_written_again_on_resume(tmp_path, capsys):
    from her2sim.sweep.sweep import open_sweep, run_sweep

    spec = tmp_path / "spec.toml"
    spec.write_text(SWEEP + textwrap.dedent("""
        [samples]
        method = "sobol"
        n = 4
        [samples.parameters]
        kU = { start = 0.5, stop = 2, scale = "log", relative = true }
    """))
    out = tmp_path / "out"
    run_sweep(spec, out)
    reference = open_sweep(out).load().copy(deep=True)  # its coordinates map samples.npy
    samples = out / "samples.npy"
    samples.write_bytes(samples.read_bytes()[:90])
    run_sweep(spec, out, resume=True)
    assert "samples.npy is damaged" in capsys.readouterr().err
    assert open_sweep(out).load().identical(reference)


def test_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path, capsys):
    from her2sim.executors import CONNECT_TIMEOUT_S

    pytest.importorskip("distributed")
    (tmp_path / "spec.toml").write_text(SWEEP)
    clock = time.monotonic()
    code = main(["sweep", str(tmp_path / "spec.toml"), "--out", str(tmp_path / "out"), "--scheduler",
                 "dask://127.0.0.1:9"])
    assert code == 2 and time.monotonic() - clock < CONNECT_TIMEOUT_S + 20
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot reach the dask scheduler" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_ctrl_c_during_a_trial_is_one_line_and_exit_130(tmp_path):
    proc = her2sim("trial", "emilia_like", "--patients", "400", "--out", tmp_path / "t")
    clock = time.monotonic()
    while time.monotonic() - clock < 60:
        time.sleep(0.5)
        # interrupt the work, not the interpreter's start-up: wait for 4 s of the child's own CPU time
        # (imports take ~1.5 s), so that a loaded machine does not send the signal during `import numpy`
        if proc.poll() is not None or _cpu_seconds(proc.pid) > 4:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the trial finished before the signal arrived")
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("her2sim: interrupted")
    assert not (tmp_path / "t").exists() or leftovers(tmp_path / "t") == []


def test_broken_pipe_exits_quietly():
    """``her2sim models --parameters | head -1``: a 4 kB pipe fills, the reader goes away."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    producer = subprocess.Popen([sys.executable, "-m", "her2sim.cli", "models", "--parameters"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, env=env)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.readline().startswith(b"models:")
    _, err = producer.communicate(timeout=60)
    assert producer.returncode == 141 and err == "", err
