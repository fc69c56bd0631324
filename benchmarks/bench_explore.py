"""Response times of `her2sim explore`: every lesson step through the HTTP API, as the page sends it.

For each of the ten lessons' steps (29 requests): the server's own time (``elapsed_ms``, simulation
of the treated cells plus the untreated control when not cached) and the round trip over HTTP on
localhost. A fresh Explorer first (cold: each new variant set compiles its network, ~1 s), then the
same requests again with every network compiled and controls cached (warm), then after the
background warm-up that `her2sim explore` starts (networks compiled, controls not cached). Accuracy:
each response equals ``her2sim.simulate`` (tests/test_explore.py checks to rtol 1e-4; JSON keeps 6
significant digits).

    python benchmarks/bench_explore.py
"""

from __future__ import annotations

import json
import platform
import statistics
import threading
import time
import urllib.request

import numpy as np
import scipy

from her2sim.explore.app import Explorer, make_server
from her2sim.explore.lessons import LESSONS


def run(url: str, steps) -> list[tuple[str, float, float]]:
    out = []
    for label, controls in steps:
        body = json.dumps(controls).encode()
        t0 = time.perf_counter()
        req = urllib.request.Request(url + "/api/simulate", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            data = json.loads(resp.read())
        out.append((label, data["elapsed_ms"], 1000 * (time.perf_counter() - t0)))
    return out


def report(name: str, rows) -> None:
    server = [r[1] for r in rows]
    trip = [r[2] for r in rows]
    print(f"{name:<34} n={len(rows):<3} server ms median {statistics.median(server):7.1f}  max {max(server):7.1f}"
          f" | round trip median {statistics.median(trip):7.1f}  p90 {np.percentile(trip, 90):7.1f}  max {max(trip):7.1f}")


def main() -> None:
    steps = [(f"{item.demo}: {label}", controls) for item in LESSONS for label, controls in item.steps]
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
          f"{platform.machine()}, {len(steps)} lesson steps")
    for phase in ("cold", "warmed-up"):
        explorer = Explorer()
        srv = make_server(explorer, "127.0.0.1", 0)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        if phase == "warmed-up":  # what `her2sim explore` does at start (in the background)
            t0 = time.perf_counter()
            explorer.warm(sorted({tuple(sorted(c["variants"])) for _, c in steps}))
            print(f"background warm-up: compiled {len(explorer.networks)} networks in {time.perf_counter() - t0:.1f} s")
            report("after warm-up, first requests", run(url, steps))
        else:
            rows = run(url, steps)
            report("cold (compiles on first use)", rows)
            slow = [r for r in rows if r[1] > 500]
            print(f"  {len(slow)} request(s) over 500 ms (first use of a variant set): "
                  + ", ".join(r[0] for r in slow))
            report("warm (networks and controls cached)", run(url, steps))
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    main()
