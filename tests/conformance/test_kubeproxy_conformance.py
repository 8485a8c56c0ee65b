"""kube-proxy conformance: render each case and compare with kube-proxy's expectations.

Cases come from ``../shared/conformance/kube-proxy`` (the directory ``shared`` next to
the repository checkout; skipped with a reason when absent) and from netlab's own
``tests/conformance/kube-proxy``. Each case is compared after the normalisation
kube-proxy's test helpers apply, and every flow is traced like ``tracePacket``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab.kubeproxy.fixture import case_dirs, ipvs_problems, load_case
from netlab.kubeproxy.iptdump import check_rule_jumps, normalize_for_compare
from netlab.kubeproxy.nftx import sort_nftables_transaction
from netlab.kubeproxy.render import render, trace
from netlab.kubeproxy.trace import trace_iptables

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "conformance" / "kube-proxy"
OWN = Path(__file__).resolve().parent / "kube-proxy"

SHARED_CASES = case_dirs(SHARED)
OWN_CASES = case_dirs(OWN)
ALL_CASES = [pytest.param(p, id=f"shared/{p.name}") for p in SHARED_CASES] + \
            [pytest.param(p, id=p.name) for p in OWN_CASES]
# Cases whose kube-proxy test states the exact output (a dump or IPVS expectations). The
# others come from tests that only check packet flows: they have no expected-output test
# at all (rather than a skipped one); their flows are checked by test_flow below.
EXPECTED_CASES = [p for p in ALL_CASES
                  if load_case(p.values[0]).expected is not None
                  or load_case(p.values[0]).expected_ipvs is not None]


def _flows(paths):
    for path in paths:
        case = load_case(path)
        for flow in case.flows:
            yield pytest.param(path, flow.name, id=f"{path.name}: {flow.name}")


def _rendered(case):
    return render(case.mode, case.inputs.services, case.inputs.endpoint_slices, case.env)


def test_shared_cases_present():
    if not SHARED.is_dir():
        pytest.skip(f"shared conformance data not found at {SHARED.resolve()}")
    assert any(p.name == "iptables_overall" for p in SHARED_CASES)


def test_own_cases_present():
    assert len(OWN_CASES) >= 20


@pytest.mark.parametrize("path", EXPECTED_CASES)
def test_expected_output(path):
    case = load_case(path)
    ruleset = _rendered(case)
    if case.mode == "iptables":
        assert normalize_for_compare(ruleset.restore_input()) == case.expected.lstrip(" \t\n")
        assert check_rule_jumps(case.expected) == []
    elif case.mode == "nftables":
        assert sort_nftables_transaction(ruleset.dump()) == \
            sort_nftables_transaction(case.expected)
    else:
        assert ipvs_problems(ruleset, case.expected_ipvs) == []


@pytest.mark.parametrize("path", [p for p in ALL_CASES if load_case(p.values[0]).mode == "iptables"])
def test_iptables_rule_jumps_consistent(path):
    case = load_case(path)
    assert check_rule_jumps(_rendered(case).restore_input()) == []


@pytest.mark.parametrize("path,flow_name", list(_flows(SHARED_CASES + OWN_CASES)))
def test_flow(path, flow_name):
    case = load_case(path)
    flow = next(f for f in case.flows if f.name == flow_name)
    result = trace(_rendered(case), flow.source_ip, flow.dest_ip, flow.dest_port,
                   flow.protocol, case.local_ips)
    assert (result.output, result.masq) == (flow.output, flow.masq), "\n".join(result.matches)
    assert result.unmatched == []


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared conformance data not found")
def test_shared_tracer_on_expected_dump():
    """The tracer agrees with the flows when run on kube-proxy's own expected dump."""
    case = load_case(SHARED / "iptables_overall")
    for flow in case.flows:
        result = trace_iptables(case.expected, flow.source_ip, flow.protocol, flow.dest_ip,
                                flow.dest_port, case.local_ips)
        assert (result.output, result.masq) == (flow.output, flow.masq), flow.name
