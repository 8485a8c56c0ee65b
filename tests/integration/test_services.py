"""Services on real nodes, in iptables and nftables modes: kube-proxy's rules loaded in each
node namespace, packets sent, and what the backends saw."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import netlab


def checks_of(lab_name: str) -> dict[str, dict]:
    done = netlab("check", lab_name, "--json")
    report = json.loads(done.stdout)
    bad = [c for c in report["checks"] if not c["ok"]]
    assert done.returncode == 0 and not bad, bad
    return {c["name"]: c for c in report["checks"]}


def test_services_in_iptables_and_nftables_modes(lab):
    lab("scenarios/services.yaml", "t-svc")
    checks = checks_of("t-svc")
    for cluster in ("ipt", "nft"):
        spread = checks[f"pod→ClusterIP: {cluster}/solo → {cluster}/svc/web"]
        assert set(spread["backend"].split(", ")) == {f"{cluster}/web-0", f"{cluster}/web-1", f"{cluster}/web-2"}
        assert spread["seen_source"] == ("172.16.0.4" if cluster == "ipt" else "172.17.0.4")  # no SNAT pod→ClusterIP

        sticky = checks[f"pod→ClusterIP: {cluster}/solo → {cluster}/svc/web-sticky"]
        assert "," not in sticky["backend"] and "connections answered by" in sticky["detail"]

        local = checks[f"NodePort (Local): ecs-1 → {cluster}/svc/solo-local via node-1"]
        assert local["seen_source"] == "192.168.0.14" and local["backend"] == f"{cluster}/solo"
        dropped = checks[f"NodePort (Local): ecs-1 → {cluster}/svc/solo-local via node-2"]
        assert not dropped["reached"] and "SYN dropped" in dropped["detail"]

        masq = checks[f"NodePort (Cluster): ecs-1 → {cluster}/svc/web-nodeport via node-1"]
        assert "192.168.0.14" not in masq["seen_source"]  # masqueraded to the node

        rejected = checks[f"Service without endpoints: {cluster}/web-0 → {cluster}/svc/empty"]
        assert not rejected["reached"] and "ICMP port unreachable" in rejected["detail"]
        assert rejected["outcome"] == "rejected" and f"from {cluster}/node-1 (" in rejected["cause"]

        # A client that is an endpoint: masqueraded to its node's pod gateway exactly when it
        # answers itself (the runner pairs each answer's backend with the source it saw).
        hairpin = checks[f"pod→own Service (hairpin): {cluster}/web-0 → {cluster}/svc/web"]
        gateway = "172.16.0.1" if cluster == "ipt" else "172.17.0.1"
        assert gateway in hairpin["seen_source"] and f"{cluster}/web-0" in hairpin["backend"]
        assert "masquerades the hairpin" in hairpin["why"]

        outside = checks[f"VPC host→ClusterIP (outside the cluster): ecs-1 → {cluster}/svc/web"]
        assert outside["expect"] == "blocked" and not outside["reached"]
        assert outside["outcome"] == "unreachable" and "from vpc (192.168.0.1)" in outside["cause"]

        udp = checks[f"pod→ClusterIP: {cluster}/web-0 → {cluster}/svc/dns"]
        assert udp["proto"] == "udp" and set(udp["backend"].split(", ")) == {f"{cluster}/dns-0", f"{cluster}/dns-1"}

    # The rules are kube-proxy's, in each node's own namespace.
    save = subprocess.run(["ip", "netns", "exec", "nl-t-svc.ipt.node-1", "iptables-save", "-t", "nat"],
                          capture_output=True, text=True).stdout
    assert '-A KUBE-SERVICES -m comment --comment "default/web:' not in save  # unnamed port: no colon
    assert '--comment "default/web cluster IP"' in save and "KUBE-MARK-MASQ" in save
    assert "-m statistic --mode random --probability 0.33333333349" in save
    nft = subprocess.run(["ip", "netns", "exec", "nl-t-svc.nft.node-1", "nft", "list", "table", "ip", "kube-proxy"],
                         capture_output=True, text=True).stdout
    assert "numgen random mod 3 vmap" in nft and "service-ips" in nft

    shown = netlab("show", "t-svc", "ipt/node-1")
    assert shown.returncode == 0 and "chain KUBE-SERVICES" in shown.stdout
    assert '--comment "default/web cluster IP"' in shown.stdout and "172.16.0.2 dev veth-web-0" in shown.stdout
    assert "10.247.0.10 . tcp . 80 : goto service-" in netlab("show", "t-svc", "nft/node-2").stdout


def test_scale_resyncs_endpoints_without_a_rebuild(lab, tmp_path):
    scenario = tmp_path / "scale.yaml"
    scenario.write_text("""\
name: t-scale-svc
hosts: [{name: ecs-1}]
clusters:
  - name: c1
    model: vpc
    nodes: [{name: n1}, {name: n2}]
    pods:
      - {name: web, replicas: 2, node: [n1, n2], labels: {app: web}, ports: [{port: 8080}]}
      - {name: client, node: n1}
    services:
      - {name: web, type: NodePort, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
""")
    lab(str(scenario), "t-scsvc")
    node_ns = "nl-t-scsvc.c1.n1"
    inode_before = subprocess.run(["stat", "-L", "-c", "%i", f"/run/netns/{node_ns}"], capture_output=True, text=True).stdout

    up = netlab("scale", "t-scsvc", "c1/web", "--replicas", "4")
    assert up.returncode == 0 and "added web-2 (n1, 172.16.0.4), web-3 (n2, 172.16.1.3)" in up.stdout
    checks = checks_of("t-scsvc")
    assert len(checks["pod→ClusterIP: c1/client → c1/svc/web"]["backend"].split(", ")) == 4

    down = netlab("scale", "t-scsvc", "c1/web", "--replicas", "1")
    assert down.returncode == 0 and "removed web-1, web-2, web-3" in down.stdout
    checks = checks_of("t-scsvc")
    assert checks["NodePort (Cluster): ecs-1 → c1/svc/web via n2"]["backend"] == "c1/web-0"
    save = subprocess.run(["ip", "netns", "exec", node_ns, "iptables-save", "-t", "nat"],
                          capture_output=True, text=True).stdout
    assert save.count(":KUBE-SEP-") == 1  # stale endpoint chains were deleted
    # The node was never rebuilt.
    assert subprocess.run(["stat", "-L", "-c", "%i", f"/run/netns/{node_ns}"], capture_output=True, text=True).stdout == inode_before
    bad = netlab("scale", "t-scsvc", "c1/nope", "--replicas", "1")
    assert bad.returncode == 2 and "no pod set 'nope'; pod sets: web" in bad.stderr
