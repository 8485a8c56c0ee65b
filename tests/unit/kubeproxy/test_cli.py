"""``netlab kube-proxy render|trace`` through netlab's own entry point, in process (no root
needed): exit codes and error lines are the ones users see."""

import json

import pytest
from dataclasses import dataclass

from click.testing import CliRunner

from netlab.cli import run as netlab_run

MANIFEST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {namespace: ns1, name: svc1}
  spec:
    type: NodePort
    clusterIP: 172.30.0.41
    ports: [{name: p80, port: 80, targetPort: 8080, nodePort: 30080}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata:
    namespace: ns1
    name: svc1-abc
    labels: {kubernetes.io/service-name: svc1}
  addressType: IPv4
  endpoints:
  - addresses: [10.180.0.1]
    conditions: {ready: true}
    nodeName: node-a
  ports: [{name: p80, port: 8080, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {namespace: ns1, name: web}
"""

COMMON = ["--node-ip", "192.168.0.2", "--hostname", "node-a", "--cluster-cidr", "10.0.0.0/8"]


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "svc.yaml"
    path.write_text(MANIFEST)
    return str(path)


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args):
    with CliRunner().isolation() as (out, err, _):
        code = netlab_run(["kube-proxy", *args])
        return Result(code, out.getvalue().decode(), err.getvalue().decode())


def test_render_iptables(manifest):
    result = run("render", "--mode", "iptables", *COMMON, manifest)
    assert result.exit_code == 0, result.output
    assert "-A KUBE-SEP-SXIVWICOYRO3J4NJ" not in result.stdout  # port 8080, not 80
    assert "-j DNAT --to-destination 10.180.0.1:8080" in result.stdout
    assert "#   iptables -t nat -I PREROUTING" in result.stdout
    assert "note: ignored apps/v1 Deployment ns1/web (" in result.stderr


def test_render_iptables_sorted_without_jumps(manifest):
    result = run("render", *COMMON, "--sorted", "--no-jump-rules", manifest)
    assert result.exit_code == 0
    assert result.stdout.startswith("*filter\n")


def test_render_nftables(manifest):
    result = run("render", "--mode", "nftables", *COMMON, "--service-cidr", "172.30.0.0/16", manifest)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('add table ip kube-proxy { comment "rules for kube-proxy" ; }')
    assert "add element ip kube-proxy nodeport-ips { 192.168.0.2 }" in result.stdout


def test_render_ipvs(manifest):
    result = run("render", "--mode", "ipvs", *COMMON, manifest)
    assert result.exit_code == 0, result.output
    assert "TCP  192.168.0.2:30080 rr" in result.stdout
    assert "-> 10.180.0.1:8080" in result.stdout
    assert "create KUBE-CLUSTER-IP hash:ip,port" in result.stdout


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_trace_json_exact_format(manifest, mode):
    result = run("trace", "--mode", mode, *COMMON, manifest, "--src", "203.0.113.2",
                 "--dst", "192.168.0.2", "--dport", "30080", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"output": "10.180.0.1:8080", "masq": True}
    assert result.stdout.strip() == '{"output": "10.180.0.1:8080", "masq": true}'


def test_trace_text_and_no_match(manifest):
    result = run("trace", *COMMON, manifest, "--src", "10.0.0.2", "--dst", "8.8.8.8", "--dport", "53",
                 "--proto", "udp")
    assert result.exit_code == 0
    assert "output: (no kube-proxy rule matched)" in result.stdout
    result = run("trace", *COMMON, manifest, "--src", "10.0.0.2", "--dst", "8.8.8.8",
                 "--dport", "53", "--json")
    assert json.loads(result.stdout) == {"output": "", "masq": False}


def test_config_file_sets_mode_and_hostname(manifest, tmp_path):
    config = tmp_path / "kp.yaml"
    config.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                      "mode: nftables\nhostnameOverride: node-a\nclusterCIDR: 10.0.0.0/8\n")
    result = run("render", "--config", str(config), "--node-ip", "192.168.0.2", manifest)
    assert result.exit_code == 0, result.output
    assert "add table ip kube-proxy" in result.stdout


@pytest.mark.parametrize("args,message", [
    (["--node-ip", "300.1.1.1"], "--node-ip '300.1.1.1' is not a valid IP address"),
    (["--service-cidr", "nope"], "--service-cidr 'nope' is not a valid CIDR"),
    (["--cluster-cidr", "10.0.0.0/8,bogus"],
     "--cluster-cidr 'bogus' is not a valid CIDR (comma-separated list allowed, one per IP family)"),
])
def test_bad_options_exit_2_with_one_line(manifest, args, message):
    result = run("render", *args, manifest)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"netlab: error: {message}"]
    assert "Traceback" not in result.output


def test_bad_manifest_names_file_line_object_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(MANIFEST.replace("port: 80, targetPort", "port: 0, targetPort"))
    result = run("render", *COMMON, str(path))
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"netlab: error: {path}:10: Service ns1/svc1: spec.ports[0].port")


def test_missing_file_and_bad_trace_address(manifest):
    result = run("render", "/nonexistent/x.yaml")
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = run("trace", *COMMON, manifest, "--src", "x", "--dst", "1.2.3.4", "--dport", "80")
    assert result.exit_code == 2
    assert "--src 'x' is not a valid IP address" in result.stderr


def test_trace_refuses_ipvs(manifest):
    result = run("trace", "--mode", "ipvs", *COMMON, manifest, "--src", "10.0.0.2",
                 "--dst", "172.30.0.41", "--dport", "80")
    assert result.exit_code == 2
    assert "trace supports the iptables and nftables modes" in result.stderr
