"""Link impairment on a real lab (kernel tier: needs sch_netem): the delay set is the delay
measured, from the scenario and from `netlab impair`."""

from __future__ import annotations

import json

import pytest

from tests.helpers import SCENARIOS, netlab


@pytest.mark.kernel("netem")
def test_netem_delay_is_measured(lab, tmp_path):
    scenario = tmp_path / "impaired.yaml"
    scenario.write_text((SCENARIOS / "vpc-basic.yaml").read_text().replace(
        "checks:\n", "impair:\n  - {link: 'c1/node-1:eth0', delay: 30ms}\nchecks:\n"))
    lab(str(scenario), "t-netem")

    done = netlab("check", "t-netem", "--json", "--timeout", "5")
    report = json.loads(done.stdout)
    assert done.returncode == 0, [c for c in report["checks"] if not c["ok"]]
    [delay] = [c for c in report["checks"] if c["name"].startswith("netem delay 30ms")]
    assert delay["reached"] and "round trips: min" in delay["detail"]
    fastest = float(delay["detail"].split("min ")[1].split(" ms")[0])
    assert 30 <= fastest < 300

    # Cross-node traffic from node-1 now pays the delay too: the impairment is on its eth0.
    add = netlab("impair", "t-netem", "c1/web-2:eth0", "--delay", "50ms", "--loss", "0%")
    assert add.returncode == 0, add.stderr
    assert "tc qdisc replace dev eth0 root netem delay 50ms loss 0%" in add.stdout
    qdisc = netlab("exec", "t-netem", "c1/web-2", "--", "tc", "qdisc", "show", "dev", "eth0").stdout
    assert "netem" in qdisc and "delay 50ms" in qdisc
    report = json.loads(netlab("check", "t-netem", "--json", "--timeout", "5").stdout)
    assert report["summary"]["failed"] == 0
    assert any(c["name"].startswith("netem delay 50ms: c1/web-2:eth0") and c["ok"] for c in report["checks"])

    cleared = netlab("impair", "t-netem", "c1/web-2:eth0", "--clear")
    assert cleared.returncode == 0
    assert "netem" not in netlab("exec", "t-netem", "c1/web-2", "--", "tc", "qdisc", "show", "dev", "eth0").stdout
