import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

TEST_MODELS = Path(__file__).parent / "models"

#: set by pytest-xdist in its worker processes ("gw0", "gw1", ...); None in a plain run
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
#: this worker's own temporary folder (xdist only), removed when the worker exits
WORKER_TMP = None
if XDIST_WORKER:
    # Two workers share the machine's cores: one BLAS thread each (the package pins its own worker
    # processes the same way, executors.py), set before any test module imports numpy.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    # Tests that look at the system temporary folder (e.g. "the C kernel build leaves no files
    # behind" globs $TMPDIR) must not see another worker's files: each worker gets its own folder,
    # for this process (tempfile) and the processes it starts ($TMPDIR).
    WORKER_TMP = tempfile.mkdtemp(prefix=f"her2sim-tests-{XDIST_WORKER}-")
    os.environ["TMPDIR"] = WORKER_TMP
    tempfile.tempdir = WORKER_TMP
    atexit.register(shutil.rmtree, WORKER_TMP, True)


def pytest_addoption(parser, pluginmanager):
    """Without pytest-xdist (not installed, or ``-p no:xdist``) the ``--numprocesses``/``--dist`` of
    pyproject's addopts are accepted and ignored: the suite then runs in this one process."""
    if not pluginmanager.has_plugin("xdist"):
        group = parser.getgroup("xdist", "pytest-xdist is not loaded: its options are accepted and ignored")
        group.addoption("--numprocesses", dest="numprocesses", default=None, help="ignored without pytest-xdist")
        group.addoption("--dist", dest="dist", default="no", help="ignored without pytest-xdist")


@pytest.fixture
def test_models() -> Path:
    return TEST_MODELS

