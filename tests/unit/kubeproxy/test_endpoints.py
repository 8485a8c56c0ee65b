"""Endpoint maps and CategorizeEndpoints (pkg/proxy/topology.go without hints)."""

from dataclasses import replace

from netlab.kubeproxy.endpoints import (
    categorize_endpoints, endpoints_map, service_port_map,
)
from netlab.kubeproxy.model import EndpointPort, LoadBalancerIngress

from tests.unit.kubeproxy.helpers import NODE, ep, env, port, slice_, svc


def _info(service):
    (info,) = service_port_map([service], env()).values()
    return info


def _eps(*endpoints):
    (eps,) = endpoints_map([slice_(endpoints=endpoints)], env()).values()
    return eps


def _ips(eps):
    return None if eps is None else [e.ip for e in eps]


def test_cluster_uses_ready_endpoints_only():
    eps = _eps(ep("10.0.1.1"), ep("10.0.1.2", ready=False, serving=True, terminating=True))
    cat = categorize_endpoints(eps, _info(svc()))
    assert _ips(cat.cluster) == ["10.0.1.1"]
    assert cat.local is None
    assert cat.has_any


def test_cluster_falls_back_to_serving_terminating():
    eps = _eps(ep("10.0.1.1", ready=False, serving=True, terminating=True),
               ep("10.0.1.2", ready=False, serving=False, terminating=True))
    cat = categorize_endpoints(eps, _info(svc()))
    assert _ips(cat.cluster) == ["10.0.1.1"]
    assert cat.has_any


def test_cluster_with_nothing_usable_has_no_endpoints():
    eps = _eps(ep("10.0.1.1", ready=False, serving=False, terminating=True))
    cat = categorize_endpoints(eps, _info(svc()))
    assert cat.cluster == []
    assert not cat.has_any


def test_internal_local_picks_endpoints_on_this_node():
    eps = _eps(ep("10.0.1.1", node=NODE), ep("10.0.1.2", node="other"))
    cat = categorize_endpoints(eps, _info(svc(internal_traffic_policy="Local")))
    assert cat.cluster is None
    assert _ips(cat.local) == ["10.0.1.1"]
    assert _ips(cat.all_reachable) == ["10.0.1.1"]


def test_internal_local_with_only_remote_endpoints_still_has_any():
    eps = _eps(ep("10.0.1.2", node="other"))
    cat = categorize_endpoints(eps, _info(svc(internal_traffic_policy="Local")))
    assert cat.local is None
    assert cat.all_reachable == []
    assert cat.has_any  # so kube-proxy DROPs ("has no local endpoints") instead of REJECT


def test_external_local_uses_both_sets_and_local_terminating_fallback():
    service = svc(type="LoadBalancer", ports=[port(node_port=30001)], lb_ips=["1.2.3.4"],
                  external_traffic_policy="Local", health_check_node_port=30000)
    eps = _eps(ep("10.0.1.1", node="other"),
               ep("10.0.1.2", node=NODE, ready=False, serving=True, terminating=True))
    cat = categorize_endpoints(eps, _info(service))
    assert _ips(cat.cluster) == ["10.0.1.1"]
    assert _ips(cat.local) == ["10.0.1.2"]
    assert _ips(cat.all_reachable) == ["10.0.1.1", "10.0.1.2"]


def test_no_endpoints():
    cat = categorize_endpoints([], _info(svc()))
    assert (cat.cluster, cat.local, cat.all_reachable, cat.has_any) == (None, None, [], False)


def test_endpoints_sorted_deduplicated_and_normalised():
    eps = endpoints_map([
        slice_(name="a", endpoints=[ep("10.0.1.10"), ep("10.0.1.2")]),
        slice_(name="b", endpoints=[ep("10.0.1.2", ready=False, terminating=True),
                                    ep("010.000.001.003")]),
    ], env())
    (lst,) = eps.values()
    assert [e.endpoint for e in lst] == ["10.0.1.10:80", "10.0.1.2:80", "10.0.1.3:80"]
    assert all(e.ready for e in lst)  # the non-terminating duplicate wins


def test_slices_of_the_other_family_are_ignored():
    assert endpoints_map([slice_(address_type="IPv6", endpoints=[ep("fd00::1")])], env()) == {}


def test_headless_and_external_name_services_are_skipped():
    services = [svc(cluster_ip="None"), svc(name="x", type="ExternalName", cluster_ip="")]
    assert service_port_map(services, env()) == {}


def test_load_balancer_proxy_ip_mode_is_not_a_vip():
    service = replace(svc(type="LoadBalancer", ports=[port(node_port=30001)]),
                      load_balancer_ingress=(LoadBalancerIngress(ip="1.2.3.4"),
                                             LoadBalancerIngress(ip="5.6.7.8", ip_mode="Proxy")))
    assert _info(service).load_balancer_vips == ["1.2.3.4"]


def test_health_check_node_port_only_for_local_load_balancers():
    nodeport = svc(type="NodePort", ports=[port(node_port=30001)],
                   external_traffic_policy="Local", health_check_node_port=30000)
    lb = svc(type="LoadBalancer", ports=[port(node_port=30001)],
             external_traffic_policy="Local", health_check_node_port=30000)
    assert _info(nodeport).health_check_node_port == 0
    assert _info(lb).health_check_node_port == 30000


def test_affinity_timeout_only_with_client_ip():
    assert _info(svc(session_affinity="ClientIP", session_affinity_timeout=60)).sticky_max_age_seconds == 60
    assert _info(svc(session_affinity_timeout=60)).sticky_max_age_seconds == 0


def test_nil_port_name_and_zero_port_in_slice_are_ignored():
    es = slice_(endpoints=[ep("10.0.1.1")],
                ports=[EndpointPort(None, 80, "TCP"), EndpointPort("p80", 0, "TCP")])
    assert endpoints_map([es], env()) == {}
