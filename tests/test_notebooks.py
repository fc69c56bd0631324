"""Every notebook in notebooks/ runs top to bottom (executed, not just parsed)."""

import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: notebooks that need an optional extra: skipped (not failed) where it is not installed, like the
#: optional peer tests; CI installs every extra, so they run there
OPTIONAL_MODULES = {"06_erbb_model_comparison": ("libsbml",)}  # Chen 2009 via the SBML import ([sbml] extra)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    for module in OPTIONAL_MODULES.get(path.stem, ()):
        pytest.importorskip(module, reason=f"{path.name} needs the optional {module}")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.stem.startswith("01_"):
        assert elapsed < 120, f"{path.name} took {elapsed:.0f} s; the quality bar is under two minutes"
