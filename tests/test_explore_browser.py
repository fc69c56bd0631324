"""The explorer in a real browser: headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it)
loads the page, a control is changed, and the plotted data and diagram node states must change as
``her2sim.simulate`` says. Screenshots (1280x720) are written for a person to look at: to the test's
tmp dir, and also to ``$HER2SIM_SCREENSHOTS`` when that is set."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from her2sim import simulate
from her2sim.explore.app import Explorer, make_server

from cdp import Browser, find_chromium

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); "
                                                         "the browser test of her2sim explore needs it")

SETTLED = ("window.her2simState && window.her2simState.ready && "
           "window.her2simState.completed === window.her2simState.requests")
NODE = "(() => {{ const g = document.querySelector('[data-node=\"{0}\"]'); return g && g.dataset.{1}; }})()"
LAST = "document.querySelector('path[data-series=\"{0}\"][data-role=\"{1}\"]').dataset.last"
IN_VITRO = {"NK_activity": 0, "HRG": 0, "EGF": 0}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    srv = make_server(Explorer(), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    browser = Browser(CHROMIUM, str(tmp_path_factory.mktemp("chromium-profile")))
    browser.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    yield browser
    browser.close()
    srv.shutdown()
    srv.server_close()


def _shot(browser, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"explore_{name}.png"
    browser.screenshot(path)
    assert path.stat().st_size > 20_000  # a rendered page, not a blank one
    if os.environ.get("HER2SIM_SCREENSHOTS"):
        out = Path(os.environ["HER2SIM_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, out / path.name)
    return path


def _final(drugs=None, variants=(), hours=72.0, name="pAKT"):
    r = simulate("default", drugs=drugs, variants=variants, time=f"{hours} h", parameters=IN_VITRO,
                 t_eval=np.linspace(0.0, hours, 145))
    return r.values(name)[0, -1]


def test_ticking_lapatinib_changes_plotted_data_and_node_states_as_simulated(page, tmp_path):
    page.navigate(page.url)
    page.wait_for(SETTLED)
    assert float(page.evaluate(NODE.format("AKT", "ratio"))) == pytest.approx(1.0)  # no drug: as the control
    untreated = float(page.evaluate(LAST.format("pAKT", "treated")))
    assert untreated == pytest.approx(_final(), rel=1e-4)
    _shot(page, tmp_path, "untreated")

    page.evaluate("document.getElementById('drug-lapatinib').click()")
    page.wait_for(SETTLED + " && 'lapatinib' in window.her2simState.result.controls.drugs")
    treated = float(page.evaluate(LAST.format("pAKT", "treated")))
    control = float(page.evaluate(LAST.format("pAKT", "control")))
    expected = _final({"lapatinib": "1 uM"})
    assert treated == pytest.approx(expected, rel=1e-4)
    assert control == pytest.approx(untreated, rel=1e-6)
    assert float(page.evaluate(NODE.format("AKT", "ratio"))) == pytest.approx(expected / _final(), rel=1e-4)
    assert float(page.evaluate(NODE.format("HER2", "ratio"))) < 0.2  # lapatinib blocks the HER2 kinase
    assert page.evaluate("!!document.querySelector('[data-badge=\"lapatinib@HER2\"]')")
    fill = page.evaluate("document.querySelector('[data-node=\"AKT\"] rect').getAttribute('fill')")
    r, g, b = (int(x) for x in fill[4:-1].split(","))
    assert b > r  # below the control: blue
    _shot(page, tmp_path, "lapatinib")


def test_picking_the_er_escape_lesson_sets_the_controls_and_shows_er_rising(page, tmp_path):
    page.navigate(page.url)
    page.wait_for(SETTLED)
    page.evaluate("(() => { const s = document.getElementById('lesson-select'); s.value = 'er_escape';"
                  " s.dispatchEvent(new Event('change')); })()")
    page.wait_for(SETTLED + " && window.her2simState.result.controls.hours === 96")
    assert page.evaluate("document.getElementById('drug-lapatinib').checked")
    assert not page.evaluate("document.getElementById('drug-fulvestrant').checked")
    ratio = float(page.evaluate(NODE.format("ER", "ratio")))
    expected = _final({"lapatinib": "1 uM"}, hours=96.0, name="ER_activity") / _final(hours=96.0, name="ER_activity")
    assert ratio == pytest.approx(expected, rel=1e-4) and ratio > 1.2
    assert "Giuliano 2015" in page.evaluate("document.getElementById('lesson-refs').textContent")
    _shot(page, tmp_path, "er_escape_lapatinib")

    page.evaluate("document.querySelectorAll('#lesson-steps button')[1].click()")  # + fulvestrant
    page.wait_for(SETTLED + " && 'fulvestrant' in window.her2simState.result.controls.drugs")
    cells = float(page.evaluate(LAST.format("viable_cells", "treated")))
    assert cells == pytest.approx(_final({"lapatinib": "1 uM", "fulvestrant": "100 nM"}, hours=96.0,
                                         name="viable_cells"), rel=1e-4)
    assert float(page.evaluate(NODE.format("ER", "ratio"))) < 0.1
    _shot(page, tmp_path, "er_escape_combination")


def test_a_washout_after_the_end_is_not_sent(page):
    page.navigate(page.url)
    page.wait_for(SETTLED)
    page.evaluate("(() => { const h = document.getElementById('washout-h'); document.getElementById('washout-on').checked = true;"
                  " h.value = 30; document.getElementById('drug-everolimus').checked = true;"
                  " document.getElementById('hours').value = '24'; h.dispatchEvent(new Event('change')); })()")
    page.wait_for(SETTLED)
    # washout after the end is not sent (null): the page runs the 24 h simulation without it
    assert page.evaluate("window.her2simState.result.controls.washout_h") is None
    assert page.evaluate("window.her2simState.error") is None
