"""Manifests and KubeProxyConfiguration: what is read, defaults, and one-line errors."""

from textwrap import dedent

import pytest

from netlab.errors import ManifestError, UserError
from netlab.kubeproxy.config import load_config, node_env, parse_config
from netlab.kubeproxy.manifests import load_manifest_text, load_manifests
from netlab.yamlsrc import document

SERVICE = dedent("""\
    apiVersion: v1
    kind: Service
    metadata: {namespace: ns1, name: svc1}
    spec:
      type: LoadBalancer
      clusterIP: 172.30.0.41
      ports: [{name: p80, port: 80, nodePort: 30080}]
      externalIPs: [192.168.99.11]
      loadBalancerSourceRanges: [" 203.0.113.0/25 "]
      sessionAffinity: ClientIP
    status:
      loadBalancer:
        ingress: [{ip: 1.2.3.4}, {hostname: lb.example.com}]
    """)

SLICE = dedent("""\
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      namespace: ns1
      name: svc1-x
      labels: {kubernetes.io/service-name: svc1}
    addressType: IPv4
    endpoints:
    - addresses: [10.180.0.1]
      conditions: {ready: false, serving: true, terminating: true}
      nodeName: node-a
      zone: z1
    - addresses: [10.180.0.2]
    ports: [{name: p80, port: 8080}]
    """)


def error(text, file="m.yaml"):
    with pytest.raises(ManifestError) as exc:
        load_manifest_text(text, file)
    return str(exc.value)


def test_service_fields_and_api_defaults():
    (svc,) = load_manifest_text(SERVICE).services
    assert (svc.namespace, svc.name, svc.type, svc.cluster_ip) == ("ns1", "svc1", "LoadBalancer", "172.30.0.41")
    (port,) = svc.ports
    assert (port.protocol, port.target_port, port.node_port) == ("TCP", 80, 30080)
    assert svc.external_traffic_policy == "Cluster"
    assert svc.session_affinity_timeout == 10800
    assert [i.ip for i in svc.load_balancer_ingress if i.ip] == ["1.2.3.4"]
    assert svc.source.line == 1


def test_endpoint_slice_fields():
    (es,) = load_manifest_text(SLICE).endpoint_slices
    assert es.service_name == "svc1"
    first, second = es.endpoints
    assert (first.conditions.ready, first.conditions.serving, first.conditions.terminating) == (False, True, True)
    assert (first.node_name, first.zone) == ("node-a", "z1")
    assert second.conditions.ready is None  # unset means ready to kube-proxy
    assert es.ports[0].protocol == "TCP"


def _indent_item(doc: str) -> str:
    return "- " + doc.rstrip().replace("\n", "\n  ")


def test_list_is_expanded_and_other_kinds_are_ignored():
    text = ("apiVersion: v1\nkind: List\nitems:\n" + _indent_item(SERVICE) + "\n"
            + _indent_item(SLICE) + "\n---\napiVersion: v1\nkind: Pod\n"
            "metadata: {name: p, namespace: ns1}\n")
    inputs = load_manifest_text(text, "l.yaml")
    assert len(inputs.services) == 1 and len(inputs.endpoint_slices) == 1
    assert inputs.services[0].source.line == 4
    (note,) = inputs.ignored
    assert note.startswith("v1 Pod ns1/p (l.yaml:")


def test_slice_without_service_name_label_is_ignored():
    text = SLICE.replace("  labels: {kubernetes.io/service-name: svc1}\n", "")
    assert load_manifest_text(text).endpoint_slices == []


@pytest.mark.parametrize("change,expected", [
    (("type: LoadBalancer", "type: Foo"),
     "m.yaml:5: Service ns1/svc1: spec.type: 'Foo' is not valid; valid values: ClusterIP, NodePort, LoadBalancer, ExternalName"),
    (("  clusterIP: 172.30.0.41\n", ""),
     "m.yaml:5: Service ns1/svc1: spec.clusterIP: missing; kube-proxy only programs Services"),
    (("port: 80,", "port: 0,"), "m.yaml:7: Service ns1/svc1: spec.ports[0].port: 0 is out of range"),
    (("[192.168.99.11]", "[192.168.99.300]"),
     "m.yaml:8: Service ns1/svc1: spec.externalIPs[0]: '192.168.99.300' is not a valid IP address"),
    ((" 203.0.113.0/25 ", "nope"),
     "m.yaml:9: Service ns1/svc1: spec.loadBalancerSourceRanges[0]: 'nope' is not a valid CIDR"),
    (("sessionAffinity: ClientIP", "sessionAffinity: Cookie"),
     "m.yaml:10: Service ns1/svc1: spec.sessionAffinity: 'Cookie' is not valid; valid values: None, ClientIP"),
])
def test_service_errors_name_file_line_object_and_field(change, expected):
    assert error(SERVICE.replace(*change)).startswith(expected)


def test_slice_address_of_wrong_family():
    message = error(SLICE.replace("[10.180.0.2]", "[fd00::2]"))
    assert message == ("m.yaml:13: EndpointSlice ns1/svc1-x: endpoints[1].addresses[0]: 'fd00::2' is "
                       "not a valid IPv4 address (addressType is IPv4)")


def test_kube_proxy_configuration_in_manifests_is_an_error():
    message = error("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n")
    assert message == "m.yaml:2: kind: a KubeProxyConfiguration is not a manifest; pass it with --config"


def test_bad_yaml_and_duplicates(tmp_path):
    assert error("kind: [\n").startswith("m.yaml:2: not valid YAML")
    path = tmp_path / "a.yaml"
    path.write_text(SERVICE + "---\n" + SERVICE)
    with pytest.raises(ManifestError, match=r"defined twice \(first at .*a.yaml:1\)"):
        load_manifests([path])


# --- KubeProxyConfiguration ---------------------------------------------------------------

HEAD = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"


def config(body: str):
    return parse_config(document(HEAD + body, "c.yaml", error=ManifestError), "c.yaml")


def config_error(body: str) -> str:
    with pytest.raises(ManifestError) as exc:
        config(body)
    return str(exc.value)


def test_config_defaults_to_kube_proxy_defaults():
    env = node_env("iptables", config(""), hostname="Node-A", node_ips=("192.168.0.2",))
    assert (env.hostname, env.mark, env.localhost_node_ports, env.masquerade_all) == (
        "node-a", "0x004000", True, False)
    assert env.node_port_addresses is None
    assert not env.local_detector.implemented


def test_config_fields_that_change_rules():
    cfg = config(dedent("""\
        mode: ipvs
        hostnameOverride: node-b
        clusterCIDR: 10.0.0.0/8,fd00::/48
        iptables: {masqueradeBit: 15, masqueradeAll: true, localhostNodePorts: false}
        ipvs: {scheduler: lc}
        nodePortAddresses: [primary]
        conntrack: {tcpBeLiberal: true}
        """))
    env = node_env(cfg.mode, cfg, hostname="ignored", node_ips=("192.168.0.2", "192.168.1.2"))
    assert env.hostname == "node-b"
    assert env.mark == "0x008000" and env.masquerade_all and not env.localhost_node_ports
    assert env.local_detector.if_not_local() == ["!", "-s", "10.0.0.0/8"]
    assert env.ipvs_scheduler == "lc" and env.conntrack_tcp_liberal
    assert env.node_port_addresses == ("192.168.0.2/32",)


def test_nftables_uses_its_own_masquerade_settings():
    env = node_env("nftables", config("nftables: {masqueradeBit: 3}\n"))
    assert env.mark == "0x000008"


@pytest.mark.parametrize("body,expected", [
    ("foo: 1\n", "c.yaml:3: KubeProxyConfiguration: foo: unknown field (kube-proxy decodes strictly)"),
    ("iptables: {masqueradeBits: 3}\n", "c.yaml:3: KubeProxyConfiguration: iptables.masqueradeBits: unknown field"),
    ("iptables: {masqueradeBit: 40}\n", "c.yaml:3: KubeProxyConfiguration: iptables.masqueradeBit: 40 is out of range; valid: 0-31"),
    ("nodePortAddresses: [all, bad]\n", "c.yaml:3: KubeProxyConfiguration: nodePortAddresses[1]: 'bad' is not a CIDR or one of"),
    ("mode: userspace\n", "c.yaml:3: KubeProxyConfiguration: mode: 'userspace' is not valid; valid values: iptables, ipvs, nftables"),
    ("clusterCIDR: 10.0.0.0/33\n", "c.yaml:3: KubeProxyConfiguration: clusterCIDR: '10.0.0.0/33' is not a valid CIDR"),
    ("iptables: {snatNodeInternalIP: true}\n", "c.yaml:3: KubeProxyConfiguration: iptables.snatNodeInternalIP: not supported"),
])
def test_config_errors(body, expected):
    assert config_error(body).startswith(expected)


def test_node_cidr_mode_needs_pod_cidr():
    with pytest.raises(UserError, match="--pod-cidr"):
        node_env("iptables", config("detectLocalMode: NodeCIDR\n"))
    env = node_env("iptables", config("detectLocalMode: NodeCIDR\n"), pod_cidrs=("10.0.1.0/24",))
    assert env.local_detector.if_local() == ["-s", "10.0.1.0/24"]


def test_load_config_file(tmp_path):
    path = tmp_path / "kp.yaml"
    path.write_text(HEAD + "mode: nftables\n")
    assert load_config(path).mode == "nftables"
    path.write_text(HEAD + "---\n" + HEAD)
    with pytest.raises(ManifestError, match="expected one KubeProxyConfiguration document, found 2"):
        load_config(path)
