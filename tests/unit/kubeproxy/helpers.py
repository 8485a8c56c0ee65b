"""Builders for kube-proxy unit tests, modelled on kube-proxy's makeTestService helpers."""

from __future__ import annotations

from netlab.kubeproxy.model import (
    Endpoint, EndpointConditions, EndpointPort, EndpointSlice, LoadBalancerIngress,
    LocalDetector, NodeEnv, Service, ServicePort,
)

NODE = "test-node"
NODE_IP = "192.168.0.2"
NODE_IPS = (NODE_IP, "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2")
LOCAL_IPS = ("127.0.0.1", "::1") + NODE_IPS
POD = "10.0.0.2"
EXTERNAL = "203.0.113.2"
EXTERNAL_BLOCKED = "203.0.113.130"


def env(**kw) -> NodeEnv:
    """kube-proxy's iptables ``NewFakeProxier``, overridable."""
    base = dict(hostname=NODE, node_ips=NODE_IPS,
                local_detector=LocalDetector("ClusterCIDR", "10.0.0.0/8"),
                masquerade_mark="0x4000", nfacct=True, has_random_fully=False)
    base.update(kw)
    return NodeEnv(**base)


def nft_env(**kw) -> NodeEnv:
    base = dict(node_port_addresses=("192.168.0.2/32", "2001:db8::1/128"),
                service_cidrs=("172.30.0.0/16",), nfacct=False)
    base.update(kw)
    return env(**base)


def port(name="p80", port_=80, protocol="TCP", node_port=0, target_port=None):
    return ServicePort(name=name, protocol=protocol, port=port_, node_port=node_port,
                       target_port=target_port if target_port is not None else port_)


def svc(ns="ns1", name="svc1", cluster_ip="172.30.0.41", ports=None, type="ClusterIP",
        lb_ips=(), **kw) -> Service:
    if "external_traffic_policy" not in kw and type in ("NodePort", "LoadBalancer"):
        kw["external_traffic_policy"] = "Cluster"
    return Service(namespace=ns, name=name, type=type, cluster_ip=cluster_ip,
                   ports=tuple(ports or [port()]),
                   load_balancer_ingress=tuple(LoadBalancerIngress(ip=ip) for ip in lb_ips),
                   **kw)


def ep(ip, node=None, ready=None, serving=None, terminating=None) -> Endpoint:
    return Endpoint(addresses=(ip,), conditions=EndpointConditions(ready, serving, terminating),
                    node_name=node)


def slice_(ns="ns1", svc_name="svc1", endpoints=(), ports=None, name=None,
           address_type="IPv4") -> EndpointSlice:
    return EndpointSlice(namespace=ns, name=name or f"{svc_name}-1", service_name=svc_name,
                         address_type=address_type, endpoints=tuple(endpoints),
                         ports=tuple(ports or [EndpointPort("p80", 80, "TCP")]))
