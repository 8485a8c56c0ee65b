"""200 pods on 10 nodes: up, every generated check passes, down leaves nothing."""

import json

from tests.helpers import netlab


def test_scale_200(lab):
    lab("scenarios/scale-200.yaml", "t-scale")
    done = netlab("check", "t-scale", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0, [(c["name"], c["detail"]) for c in report["checks"] if not c["ok"]][:3]
    assert report["summary"]["passed"] >= 400
    backends = {c["backend"] for c in report["checks"] if c["backend"]}
    assert len([b for b in backends if b.startswith("c1/p")]) == 200  # every pod answered once at least
