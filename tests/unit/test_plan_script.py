"""`netlab plan --script`: a plan as a bash script a class can type (pure)."""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

from netlab.plan import script
from netlab.plan.ops import AddNetns, IptablesRestore, OvsCreateDb, OvsVsctl, Plan, StartProcess, WriteFile
from netlab.plan.planner import build
from netlab.lab.resolve import resolve
from netlab.scenario import loader
from tests.helpers import SCENARIOS

RUN = PurePosixPath("/run/netlab/t")


def test_summary_ops_become_real_commands():
    assert script.command(AddNetns("nl-t-a"), RUN) == [
        "ip netns add nl-t-a",
        "ip netns exec nl-t-a sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"]
    assert script.command(OvsCreateDb("nl-t-n", "/run/netlab/t/c/n/conf.db"), RUN)[0] == "mkdir -p /run/netlab/t/c/n"
    lines = script.command(WriteFile("nl-t-a", "/run/netlab/t/x/y.conf", "a b\n", 0o600), RUN)
    assert lines == ["mkdir -p /run/netlab/t/x", "cat > /run/netlab/t/x/y.conf <<'EOF'", "a b", "EOF",
                     "chmod 600 /run/netlab/t/x/y.conf"]


def test_heredoc_bodies_are_included():
    lines = script.command(IptablesRestore("nl-t-a", "*nat\nCOMMIT\n", purpose="p"), RUN)
    assert lines[0].startswith("ip netns exec nl-t-a iptables-restore -w --noflush <<'EOF'")
    assert lines[1:] == ["*nat\nCOMMIT", "EOF"]


def test_arguments_are_shell_quoted():
    op = OvsVsctl("nl-t-n", "/r/db.sock", (("set", "Interface", "gw0", 'mac="0a:58:ac:10:00:01"'),))
    assert script.command(op, RUN) == ["ovs-vsctl --db=unix:/r/db.sock --timeout=30 -- set Interface gw0 "
                                       "'mac=\"0a:58:ac:10:00:01\"'"]
    start = script.command(StartProcess("nl-t-n", "d@c.n", ("env", "A=b c"), ready_file="/r/x.ctl"), RUN)
    assert start == ["start d@c.n nl-t-n \"/r/x.ctl\" env 'A=b c'"]
    agent = script.command(StartProcess("nl-t-vpc", "agent", ("netlab-agent", "t"), ready_file="agent.ready"), RUN)
    assert agent == ['start agent nl-t-vpc "$RUN/agent.ready" "$PYTHON" -m netlab.probe.agent t']


def test_whole_script_is_valid_bash_and_registers_the_lab_before_the_agent():
    scenario, source = loader.load(SCENARIOS / "tunnel-basic.yaml")
    lab = resolve(scenario, source, None)
    text = script.render(build(lab), RUN, source="x.yaml", register='{"phase": "up"}', netns=lab.netns_names())
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    assert text.index('cat > "$RUN/lab.json"') < text.index("start agent")
    assert text.index("start ovsdb-server@c1.node-1") < text.index("start ovs-vswitchd@c1.node-1")
    assert "ovs-ofctl --bundle replace-flows" in text and "table=20" in text  # flow bodies included
    assert text.count("<<'EOF'") == text.splitlines().count("EOF") > 10  # every body, closed
    assert f"#   ip netns del {lab.netns_names()[0]}" in text


def test_plan_render_is_unchanged_for_plain_plan():
    p = Plan("t", [AddNetns("nl-t-a")])
    assert p.render(bodies=True) == "ip netns add nl-t-a  # net.ipv6.conf.{all,default}.disable_ipv6=1"
