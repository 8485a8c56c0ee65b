"""What the lab's load balancers promise, as checks (pure): LoadBalancer Services through
their ELB, and every Ingress host and path through the ELB that serves it.

The source a backend must see is derived the way the service decides it, in two steps:

1. what the ELB sends toward the node: a shared ELB sends from its backend-side address
   (100.125.0.0/16), a dedicated one keeps the client's address (a public client's own
   address through the EIP's 1:1 NAT, a VPC host's, a pod's as it leaves its node: the
   model's `source_towards`); a dedicated ELB in front of an eni cluster sends straight to
   the pod (passthrough), so the pod sees exactly that;
2. what kube-proxy does at the node: `externalTrafficPolicy: Local` keeps it,
   `Cluster` masquerades it to a node address.

An in-cluster client never reaches the ELB unless the Service asks for pass-through
(`kubernetes.io/elb.pass-through`, published as `ipMode: Proxy`): kube-proxy short-circuits
the ELB's addresses to the endpoints (Cluster: masqueraded to the node, Local: the pod's
own address). With pass-through and a dedicated ELB the service documents that a client on
the node the ELB picks fails, so no in-cluster check is generated for that case.

Ingress: the expected backend of each host and path is what `netlab.ingress.routes.match`
says (the specification's matching); class cce backends see the ELB's layer 7 as in step
1 (from its backend-side or private address) then step 2, with the client's address at
the end of `X-Forwarded-For`; class nginx backends see the controller pod that proxied,
whose `X-Forwarded-For` is what reached that pod through the controller's ELB (steps 1
and 2 again). Each check's name ends with the mechanism in parentheses.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from netlab import models
from netlab.cloud import elb as elb_mod
from netlab.cloud import ingress as ingress_mod
from netlab.ingress import addon, certs, routes
from netlab.lab.model import ClusterInfo, ElbInfo, IngressInfo, Lab, PodInfo, ServiceInfo
from netlab.lab.services import selected, target_port
from netlab.probe.checks import CheckSpec
from netlab.probe.service_checks import _connections, _spread

NO_HOST = "no-rule-matches.invalid"  # a Host header no Ingress rule names


def _ref(cluster: ClusterInfo, obj) -> str:
    return f"{cluster.name}/{obj.name}"


def _node_addresses(cluster: ClusterInfo) -> tuple[IPv4Address, ...]:
    model = models.get(cluster.model)
    return tuple(dict.fromkeys(a for n in cluster.nodes for a in model.node_addresses(cluster, n)))


def _entries(lab: Lab, elb: ElbInfo) -> list[tuple[str, str, IPv4Address, IPv4Address, IPv4Address, str]]:
    """Where clients reach an ELB from: (client, netns, client address, target address, the
    address the ELB sees, how) — a public client through each EIP, a VPC host through the
    private address."""
    out = []
    client = next(iter(lab.public_hosts()), None)
    if client is not None:
        for eip in lab.eips_of(elb.ref):
            out.append((client.ref, client.netns, client.eth0.ip, eip, client.eth0.ip, f"EIP {eip}"))
    host = next(iter(lab.hosts_in(lab.vpc_named(elb.vpc))), None)
    if host is not None:
        out.append((host.name, host.netns, host.eth0.ip, elb.ip, host.eth0.ip, f"private address {elb.ip}"))
    return out


def at_backend(elb: ElbInfo, cluster: ClusterInfo, svc: ServiceInfo, seen_by_elb: IPv4Address,
               *, layer7: bool = False) -> tuple[tuple[IPv4Address, ...], str]:
    """The sources a backend pod may see for what the ELB saw from `seen_by_elb`, and why."""
    if layer7:
        sent = elb.backend_address or elb.ip
        why = f"the ELB's nginx connects from {sent}"
    elif elb.type == "shared":
        sent, why = elb.backend_address, f"shared ELB: from its backend-side address {elb.backend_address}"
    else:
        sent, why = seen_by_elb, "dedicated ELB: the client's address kept"
    if elb_mod.passthrough(elb, cluster):
        return (sent,), why + ", straight to the pod (passthrough)"
    if svc.spec.externalTrafficPolicy == "Local":
        return (sent,), why + ", to a node's nodePort, externalTrafficPolicy Local keeps it"
    return _node_addresses(cluster), why + ", to a node's nodePort, externalTrafficPolicy Cluster masquerades it"


def _endpoints(cluster: ClusterInfo, svc: ServiceInfo, index: int) -> list[PodInfo]:
    port = svc.spec.ports[index]
    return [p for p in selected(svc, cluster.pods) if target_port(port, p) is not None]


def _reachable(elb: ElbInfo, cluster: ClusterInfo, svc: ServiceInfo, index: int, eps: list[PodInfo]) -> bool:
    """Does every connection through the ELB find an endpoint? (externalTrafficPolicy Local
    without health checks sends some to nodes that have none.)"""
    if elb_mod.passthrough(elb, cluster) or svc.spec.externalTrafficPolicy == "Cluster":
        return True
    pool = elb.pool(elb_mod.pool_name(cluster.name, svc, svc.spec.ports[index].port, svc.spec.ports[index].protocol))
    return pool.health is not None or all(any(e.node == n.name for e in eps) for n in cluster.nodes)


def service_checks(lab: Lab, cluster: ClusterInfo, svc: ServiceInfo) -> list[CheckSpec]:
    elb = lab.elb(svc.elb)
    out: list[CheckSpec] = []
    name = f"{cluster.name}/svc/{svc.spec.name}"
    label = f"LoadBalancer ({elb.type} ELB {elb.name}, externalTrafficPolicy {svc.spec.externalTrafficPolicy})"
    for index, port in enumerate(svc.spec.ports):
        eps = _endpoints(cluster, svc, index)
        if not eps or not _reachable(elb, cluster, svc, index, eps):
            continue
        proto = port.protocol.lower()
        backends = tuple(_ref(cluster, e) for e in eps)
        # One round robin per listener, whatever address a client uses: take turns.
        common = dict(proto=proto, count=_connections(len(eps)), allowed_backends=backends,
                      spread=_spread(svc.spec.sessionAffinity == "ClientIP", len(eps)),
                      turn=f"{elb.ref} {port.protocol}:{port.port}")
        for src, netns, src_ip, dst_ip, seen, how in _entries(lab, elb):
            sources, why = at_backend(elb, cluster, svc, seen)
            out.append(CheckSpec(name=f"{label}: {src} → {name} at {dst_ip}:{port.port} ({how}; {why})",
                                 src=src, src_netns=netns, src_ip=src_ip, dst=str(dst_ip), dst_ip=dst_ip,
                                 port=port.port, allowed_sources=sources, **common))
        client = next((p for p in cluster.pods if p not in eps and not p.ports and p.set != addon.CONTROLLER), None)
        if client is None:
            continue
        node = cluster.node(client.node)
        through = any(i.ip_mode == "Proxy" for i in svc.load_balancer)
        if through and elb.type == "dedicated" and not elb_mod.passthrough(elb, cluster):
            continue  # the service: a client on the node the ELB picks cannot reach it
        if through:
            seen = models.get(cluster.model).source_towards(cluster, node, client, elb.ip)
            sources, why = at_backend(elb, cluster, svc, seen)
            why = f"pass-through: out of the cluster and through the ELB; {why}"
        else:
            local = svc.spec.externalTrafficPolicy == "Local"
            sources = (client.ip,) if local else models.get(cluster.model).node_addresses(cluster, node)
            why = ("kube-proxy short-circuits the ELB's address to the endpoints, "
                   + ("keeping the pod's address" if local else "masquerading to the node"))
        out.append(CheckSpec(name=f"{label}: {_ref(cluster, client)} → {name} at {elb.ip}:{port.port} ({why})",
                             src=_ref(cluster, client), src_netns=client.netns, src_ip=client.ip, dst=str(elb.ip),
                             dst_ip=elb.ip, port=port.port, allowed_sources=sources, **common))
    return out


def _request(host: str | None, path: str, path_type: str) -> tuple[str, str]:
    """A request (Host, path) that the rule is meant to match."""
    request_host = NO_HOST if host is None else ("wild" + host[1:] if host.startswith("*.") else host)
    if path_type == "Prefix":
        path = path.rstrip("/") or "/"
    return request_host, path


def ingress_checks(lab: Lab, cluster: ClusterInfo, info: IngressInfo) -> list[CheckSpec]:
    elb = lab.elb(info.elb)
    ing = info.spec
    ns = ing.metadata.namespace
    served = [i.spec for i in cluster.ingresses if i.ingress_class == info.ingress_class and i.elb == info.elb
              and (i.ingress_class == "nginx" or i.port == info.port)]
    server_list, _ = routes.servers(served, lambda b, n: f"{n}/{b.service.name}/{b.service.port.number or b.service.port.name}")
    tls_hosts = {h for t in ing.spec.tls for h in t.hosts}
    redirect = ing.metadata.annotations.get(routes.SSL_REDIRECT) != "false"
    requests: list[tuple[str, str, str]] = []  # (host, path, what)
    for rule in ing.spec.rules:
        for p in (rule.http.paths if rule.http else []):
            host, path = _request(rule.host, p.path or "/", p.pathType)
            requests.append((host, path, f"{p.pathType} {p.path or '/'}"))
    if ing.spec.defaultBackend is not None:
        requests.append((NO_HOST, "/", "no rule matches"))
    out: list[CheckSpec] = []
    for src, netns, src_ip, dst_ip, seen, how in _entries(lab, elb)[:1]:
        for host, path, what in requests:
            tls = info.tls if info.ingress_class == "cce" else host in tls_hosts and redirect
            scheme = "https" if tls else "http"
            port = info.port if info.ingress_class == "cce" else (443 if tls else 80)
            loc = routes.match(server_list, host, path)
            base = dict(src=src, src_netns=netns, src_ip=src_ip, dst=str(dst_ip), dst_ip=dst_ip, port=port,
                        proto=scheme, host=host, path=path,
                        ca_pem=certs.ca_pem(lab.name) if tls and host in tls_hosts else None)
            title = (f"Ingress {ns}/{ing.metadata.name} (class {info.ingress_class}, {elb.type} ELB {elb.name}): "
                     f"{src} → {scheme}://{host}{path} at {dst_ip}:{port}")
            if loc.backend is None:
                out.append(CheckSpec(name=f"{title} ({what}: no backend, 404; {how})", expect_status=404, **base))
                continue
            namespace, svc_name, _ = loc.backend.split("/", 2)
            backend = next(b for b in _backends(ing) if b.service.name == svc_name)
            svc, index, _ = ingress_mod.backend_service(cluster, backend, namespace)
            eps = _endpoints(cluster, svc, index)
            if not eps:
                continue
            sources, xff, why = _ingress_sources(lab, cluster, info, elb, svc, seen)
            out.append(CheckSpec(
                name=f"{title} ({what} → Service {svc.spec.name}; {how}; {why})",
                allowed_backends=tuple(_ref(cluster, e) for e in eps), allowed_sources=sources,
                expect_forwarded_for=str(xff) if xff else None, **base))
        for host in sorted(tls_hosts) if info.ingress_class == "nginx" and redirect else []:
            out.append(CheckSpec(
                name=f"Ingress {ns}/{ing.metadata.name} (class nginx): {src} → http://{host}/ at {dst_ip}:80 "
                     "(a TLS host over plain HTTP: redirected to https, 308)",
                src=src, src_netns=netns, src_ip=src_ip, dst=str(dst_ip), dst_ip=dst_ip, port=80, proto="http",
                host=host, path="/", expect_status=308))
    return out


def _backends(ing):
    out = [ing.spec.defaultBackend] if ing.spec.defaultBackend else []
    return out + [p.backend for r in ing.spec.rules for p in (r.http.paths if r.http else [])]


def _ingress_sources(lab: Lab, cluster: ClusterInfo, info: IngressInfo, elb: ElbInfo, svc: ServiceInfo,
                     seen: IPv4Address) -> tuple[tuple[IPv4Address, ...], IPv4Address | None, str]:
    """(sources the backend may see, the last X-Forwarded-For address if it is known, why)."""
    if info.ingress_class == "cce":
        sources, why = at_backend(elb, cluster, svc, seen, layer7=True)
        return sources, seen, why + f"; X-Forwarded-For ends with the client {seen}"
    controller = next(s for s in cluster.services if addon.is_controller(s))
    at_nginx, why = at_backend(elb, cluster, controller, seen)
    pods = tuple(p.ip for p in addon.controller_pods(cluster))
    xff = at_nginx[0] if len(at_nginx) == 1 else None
    return pods, xff, (f"the controller pod proxies to the ClusterIP; it saw {', '.join(map(str, at_nginx))} "
                       f"({why})")


def lb_matrix(lab: Lab) -> list[CheckSpec]:
    out: list[CheckSpec] = []
    for cluster in lab.clusters:
        for svc in cluster.services:
            if svc.elb is not None and not addon.is_controller(svc):
                out += service_checks(lab, cluster, svc)
        for info in cluster.ingresses:
            out += ingress_checks(lab, cluster, info)
    return out
