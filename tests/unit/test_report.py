"""Reports: the table at 100 columns keeps every address whole; JUnit groups by cluster and
kind and times each case; JSON keeps its keys and adds outcome, cause, why."""

from __future__ import annotations

import io
import re
from ipaddress import IPv4Address
from xml.etree import ElementTree as ET

from rich.console import Console

from netlab.lab.resolve import resolve
from netlab.probe import checks, report
from netlab.probe.runner import Result, _judge
from netlab.scenario import loader


def results():
    lab = resolve(*loader.load(loader.builtin_path("default")), None)
    out = []
    for spec in checks.matrix(lab):
        if spec.proto in ("http", "https") or "ELB" in (spec.why or ""):
            continue  # an answer through the ELB carries HTTP and header facts this table test does not fake
        r = Result(spec, seconds=0.012)
        if spec.expect == "reach" and spec.proto != "icmp":
            pairs = [(b, str(spec.expect_source or (spec.allowed_sources or [spec.src_ip])[0]))
                     for b in (spec.allowed_backends or (spec.expect_backend,))]
            r.backends, r.sources = [p[0] for p in pairs], [p[1] for p in pairs]
            if spec.hairpin:
                r.sources = [str(spec.hairpin[1][0]) if b == spec.hairpin[0] else s
                             for b, s in zip(r.backends, r.sources, strict=True)]
        r.outcome = spec.expect if spec.expect != "blocked" else "dropped"
        r.reached = r.outcome == "reach"
        r.encap = spec.expect_encap if spec.expect_encap in ("none", "vxlan") else ("none" if spec.sniff else None)
        _judge(r)
        out.append(r)
    return lab, out


def render(width: int, **kw) -> str:
    lab, rs = results()
    buf = io.StringIO()
    report.print_table(lab.name, rs, Console(file=buf, width=width, no_color=True), 1.0, lab=lab, **kw)
    return buf.getvalue()


def test_table_at_100_columns_keeps_every_address_whole():
    text = render(100)
    assert max(len(line) for line in text.splitlines()) <= 100
    lab, rs = results()
    for r in rs:
        for addr in r.sources:
            assert re.search(rf"(?<![\d.]){re.escape(addr)}(?![\d.])", text), addr
    assert "cluster cce-vpc (vpc model, iptables)" in text and "cluster cce-tunnel (tunnel model, iptables)" in text
    assert "svc/web-nodeport:80" in text  # names within the cluster, whole
    assert f"{len(rs)} passed, 0 failed" in text and len(rs) > 100


def test_why_listing_and_failed_only():
    text = render(100, why=True)
    assert "    VPC route 172.16.1.0/24 via cce-vpc/node-2 (192.168.0.11), no encapsulation" in text
    assert render(100, failed_only=True).count("✓") == 0


def test_columns_is_honoured_when_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert report.console_for().width == 100
    monkeypatch.delenv("COLUMNS")
    assert report.console_for().width == report.PIPED_WIDTH  # pytest captures: not a tty


def test_junit_classname_per_cluster_and_kind_and_a_time_per_case():
    lab, rs = results()
    suite = ET.fromstring(report.to_junit(lab.name, rs, 1.5))
    cases = suite.findall("testcase")
    assert len(cases) == len(rs) and all(c.get("time") == "0.012" for c in cases)
    names = {c.get("classname") for c in cases}
    assert "netlab.overview.cce-tunnel.pod-to-pod_across_nodes" in names
    assert "netlab.overview.cce-vpc.VPC_host-to-ClusterIP" in names
    assert "why: " in cases[0].find("system-out").text


def test_json_keeps_the_old_keys_and_adds_outcomes():
    lab, rs = results()
    checks_ = report.as_dict(lab.name, rs)["checks"]
    old = {"name", "from", "to", "proto", "expect", "reached", "ok", "seen_source", "backend", "encap", "detail"}
    assert all(old <= set(c) for c in checks_)
    outside = next(c for c in checks_ if c["name"].startswith("VPC host→ClusterIP"))
    assert (outside["expect"], outside["expect_outcome"]) == ("blocked", "blocked")  # the default route: NAT gateway
    assert IPv4Address(outside["why"].split()[4].split("/")[0])  # "no VPC route to 10.247.0.0/16 ..."


def test_the_right_outcome_with_the_wrong_source_says_so_in_the_table():
    lab, rs = results()
    r = next(r for r in rs if r.spec.expect == "reach" and r.spec.proto == "tcp")
    r.problems = ["server saw 198.51.100.11, expected 198.51.100.50"]
    assert report._outcome(r).plain == "reach, but wrong source"
    r.problems = ["answered by c1/web-1, expected c1/web-0"]
    assert report._outcome(r).plain == "reach, but wrong backend"
    r.outcome, r.problems = "dropped", ["dropped (no answer), expected reach"]
    assert report._outcome(r).plain == "dropped (want reach)"
