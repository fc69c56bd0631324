"""The teaching explorer's service (her2sim.explore): controls validation, simulations that equal
``her2sim.simulate``, the diagram/lesson metadata, and the HTTP API (no browser; see
test_explore_browser.py for the page itself)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from her2sim import simulate
from her2sim.demos import DEMOS
from her2sim.explore.app import DRUG_NAMES, NODES, Explorer, ExploreInputError, make_server, parse_controls
from her2sim.explore.lessons import LESSONS, lesson


@pytest.fixture(scope="module")
def explorer():
    return Explorer()


@pytest.mark.parametrize("payload, field", [
    ({"drugs": {"lapatinibb": 100}}, "unknown drug 'lapatinibb'"),
    ({"drugs": {"lapatinib": -1}}, "drugs.*outside|lapatinib: -1"),
    ({"drugs": {"lapatinib": "a lot"}}, "lapatinib: expected a number"),
    ({"variants": ["pik3ca"]}, "variants: expected a list of"),
    ({"variants": ["cd16a_158f", "cd16a_158v"]}, "exclude each other"),
    ({"hours": 1000}, "hours: 1000 is outside"),
    ({"hours": 48, "washout_h": 48}, "washout_h: 48 must lie inside"),
    ({"nk": "yes"}, "nk: expected true or false"),
    ({"dose": 1}, "unknown field"),
    ([1, 2], "expected a JSON object"),
], ids=lambda x: str(x)[:30])
def test_bad_controls_are_rejected_naming_the_field(payload, field):
    with pytest.raises(ExploreInputError, match=field):
        parse_controls(payload)


def test_zero_doses_are_dropped_and_variants_sorted():
    c = parse_controls({"drugs": {"lapatinib": 0, "alpelisib": 10}, "variants": ["pten_loss", "her3_high"]})
    assert c.drugs == (("alpelisib", 10.0),) and c.variants == ("her3_high", "pten_loss")


def test_treated_and_control_equal_the_scipy_path(explorer):
    out = explorer.simulate(parse_controls({"drugs": {"lapatinib": 1000}, "variants": ["pik3ca_h1047r"], "hours": 24}))
    kw = dict(variants=["pik3ca_h1047r"], time="24 h", parameters={"NK_activity": 0, "HRG": 0, "EGF": 0},
              t_eval=np.array(out["time"]))
    ref = simulate("default", drugs={"lapatinib": "1000 nM"}, **kw)
    ctl = simulate("default", **kw)
    for name in ("pAKT", "pERK", "ER_activity", "viable_cells"):
        np.testing.assert_allclose(out["series"][name]["treated"], ref.values(name)[0], rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(out["series"][name]["control"], ctl.values(name)[0], rtol=1e-4, atol=1e-9)
    assert out["series"]["viable_cells"]["unit"] == "dimensionless"
    assert out["series"]["pAKT"]["treated"][-1] < out["series"]["pAKT"]["control"][-1]  # partial: PIK3CA-mutant


def test_washout_lets_lapatinib_inhibition_fade(explorer):
    on = explorer.simulate(parse_controls({"drugs": {"lapatinib": 1000}, "hours": 48}))
    off = explorer.simulate(parse_controls({"drugs": {"lapatinib": 1000}, "hours": 48, "washout_h": 24}))
    t = np.array(on["time"])
    i = int(np.searchsorted(t, 36.0))
    assert off["series"]["pHER2"]["treated"][i] > 3 * on["series"]["pHER2"]["treated"][i]
    assert off["controls"]["washout_h"] == 24


def test_networks_and_controls_are_cached_per_key(explorer):
    a = explorer.network(("pten_loss",))
    assert explorer.network(("pten_loss",)) is a and explorer.network(()) is not a
    c = parse_controls({"drugs": {"everolimus": 10}, "hours": 24})
    assert explorer.control(c) is explorer.control(parse_controls({"drugs": {"lapatinib": 5}, "hours": 24}))
    small = Explorer(max_networks=1)
    small.network(())
    small.network(("pten_loss",))
    assert list(small.networks) == [("default", ("pten_loss",))]


def test_every_node_and_lesson_panel_is_a_served_series(explorer):
    out = explorer.simulate(parse_controls({}))
    meta = explorer.meta()
    for _, _, observable, *_ in NODES:
        assert observable in out["series"], observable
    for item in LESSONS:
        for panel in item.panels:
            assert panel in out["series"], (item.demo, panel)
    assert {d["name"] for d in meta["drugs"]} == set(DRUG_NAMES)
    assert all(e["source"] in {n["id"] for n in meta["nodes"]} for e in meta["edges"])


def test_one_lesson_per_demo_with_valid_steps_and_references():
    assert [x.demo for x in LESSONS] == list(DEMOS)
    for item in LESSONS:
        assert len(item.explanation) == 2 and all(len(p) > 200 for p in item.explanation), item.demo
        assert item.references and item.do and item.watch and item.question.endswith("?")
        for _, controls in item.steps:
            parse_controls(controls)
    assert lesson("er_escape").title.startswith("Estrogen")
    with pytest.raises(KeyError):
        lesson("er_escpe")


def test_er_escape_lesson_shows_er_rising_and_the_combination_winning(explorer):
    steps = dict(lesson("er_escape").steps)
    lap = explorer.simulate(parse_controls(steps["lapatinib 1 uM, 96 h"]))["series"]
    both = explorer.simulate(parse_controls(steps["lapatinib + fulvestrant"]))["series"]
    assert lap["ER_activity"]["treated"][-1] > 1.2 * lap["ER_activity"]["control"][-1]
    assert both["proliferation_rate"]["treated"][-1] < 0.7 * lap["proliferation_rate"]["treated"][-1]


def test_mtor_lesson_claim_trastuzumab_removes_the_pakt_rise(explorer):
    ev, ev_t = (explorer.simulate(parse_controls(c))["series"]["pAKT"] for _, c in lesson("mtor_feedback").steps)
    assert ev["treated"][-1] > 1.2 * ev["control"][-1]
    assert ev_t["treated"][-1] < ev_t["control"][-1]


@pytest.fixture(scope="module")
def server(explorer):
    srv = make_server(explorer, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _post(url, body: bytes):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def test_http_api_serves_page_meta_and_simulations(server):
    with urllib.request.urlopen(server + "/", timeout=10) as resp:
        page = resp.read().decode()
    assert "<svg id=\"diagram\"" in page and "/static/app.js" in page and "http" not in page.split("<body>")[1]
    with urllib.request.urlopen(server + "/static/app.js", timeout=10) as resp:
        assert "api/simulate" in resp.read().decode()
    with urllib.request.urlopen(server + "/api/meta", timeout=30) as resp:
        meta = json.loads(resp.read())
    assert len(meta["lessons"]) == 10 and meta["units"]["viable_cells"] == "dimensionless"
    status, out = _post(server + "/api/simulate", json.dumps({"drugs": {"everolimus": 10}, "hours": 24}).encode())
    assert status == 200 and out["series"]["pS6"]["treated"][-1] < out["series"]["pS6"]["control"][-1]


@pytest.mark.parametrize("body, code", [(b"{not json", 400), (b'{"drugs": {"aspirin": 1}}', 400)])
def test_http_api_rejects_bad_requests_with_a_message(server, body, code):
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(server + "/api/simulate", body)
    assert err.value.code == code and json.loads(err.value.read())["error"]


def test_http_api_does_not_serve_other_files(server):
    for path in ("/static/../app.py", "/static/lessons.py", "/etc/passwd"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server + path, timeout=10)
        assert err.value.code == 404


def test_concurrent_requests_from_a_class_get_the_same_answers(server, explorer):
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"drugs": {"lapatinib": d}, "hours": 24} for d in (10, 100, 1000, 10, 100, 1000)]
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda b: _post(server + "/api/simulate", json.dumps(b).encode())[1], bodies))
    for body, reply in zip(bodies, replies):
        alone = explorer.simulate(parse_controls(body))
        assert reply["series"]["pAKT"]["treated"] == alone["series"]["pAKT"]["treated"]


def test_a_port_in_use_is_one_clear_error_before_any_work():
    from her2sim.explore.app import serve

    busy = make_server(Explorer(), "127.0.0.1", 0)
    try:
        with pytest.raises(ExploreInputError, match=r"--port \d+: cannot listen .* --port 0 for any free port"):
            serve(port=busy.server_address[1], open_browser=False)
    finally:
        busy.server_close()
