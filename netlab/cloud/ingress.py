"""Ingress: who serves each Ingress object, and the nginx configurations that do it.

- class `cce` (`spec.ingressClassName: cce`): the ELB's own layer 7. The ELB named by
  `kubernetes.io/elb.id` (with `kubernetes.io/elb.class` matching its type) gets an HTTP
  listener on `kubernetes.io/elb.port` (default 80), or an HTTPS one (default 443) when the
  Ingress has `tls`; Ingresses on the same ELB port share the listener. Backends are
  NodePort Services: a backend server group of every node's nodeIP:nodePort, health-checked
  like a layer-4 one (the Service's `kubernetes.io/elb.health-check-option`); with a
  dedicated ELB in an eni cluster, ClusterIP Services too, straight to the pods. The ELB's
  nginx (in its namespace, on its private address) proxies from the ELB's backend-side
  address (shared) or its private address (dedicated) and appends the client's address to
  `X-Forwarded-For`.
- class `nginx`: the cluster's NGINX Ingress Controller add-on (`nginx_ingress:`,
  `netlab.ingress.addon`): nginx in every controller pod, listening on 80 and 443, proxying
  to the backend Service's ClusterIP (any Service type), with `X-Forwarded-For` set to the
  address it saw; plain HTTP for a TLS host is redirected to HTTPS (308), as ingress-nginx
  does. Clients reach it through the ELB of the controller's LoadBalancer Service.

TLS: every `secretName` an Ingress names is a `kubernetes.io/tls` Secret the lab generates
(`netlab.ingress.certs`) for the hosts its `tls` entries list; nginx picks the certificate by
SNI. The nginx processes are started by the ELB object (`netlab.cloud.elb`), before its
health checker.
"""

from __future__ import annotations

from netlab import paths
from netlab.cloud import elb as elb_mod
from netlab.cloud.base import CloudObject
from netlab.ingress import addon
from netlab.ingress.nginx import Listen, NginxConfig, Upstream, render
from netlab.ingress.routes import RouteError, servers
from netlab.lab.model import ClusterInfo, ElbInfo, IngressInfo, Lab, ListenerInfo, MemberInfo, PodInfo, PoolInfo
from netlab.lab.services import selected, target_port
from netlab.plan.ops import Op, ReloadProcess, StartProcess, WriteFile
from netlab.scenario.types import Ingress, IngressBackend

INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # before ingressClassName (clusters ≤ 1.21)


class IngressObject(CloudObject):
    name = "ingress"

    def resolve(self, scenario, lab: Lab, ctx) -> None:
        for ci, spec in enumerate(scenario.clusters):
            cluster = lab.clusters[ci]
            for ii, ing in enumerate(spec.ingresses):
                path = ("clusters", ci, "ingresses", ii)
                try:
                    cluster.ingresses.append(_resolve_one(lab, cluster, ing, ctx, path))
                except RouteError as e:
                    raise ctx.error(path + e.field, str(e)) from None
                except elb_mod.AnnotationError as e:
                    raise ctx.error(path + ("metadata", "annotations", e.key), str(e)) from None


def _resolve_one(lab: Lab, cluster: ClusterInfo, ing: Ingress, ctx, path) -> IngressInfo:
    notes = ing.metadata.annotations
    cls = ing.spec.ingressClassName or notes.get(INGRESS_CLASS_ANNOTATION)
    if cls not in ("cce", "nginx"):
        raise ctx.error(path + ("spec", "ingressClassName"),
                        f"{'no class' if cls is None else repr(cls)}: write cce (the ELB's layer 7) or nginx "
                        "(the NGINX Ingress Controller add-on)")
    if any(i.spec.metadata.namespace == ing.metadata.namespace and i.name == ing.metadata.name
           for i in cluster.ingresses):
        raise ctx.error(path + ("metadata", "name"), f"duplicate Ingress {ing.metadata.namespace}/{ing.metadata.name}")
    for ti, tls in enumerate(ing.spec.tls):
        if tls.secretName is None:
            raise ctx.error(path + ("spec", "tls", ti), "secretName: the lab needs a Secret name to generate")
    tls = bool(ing.spec.tls)
    if cls == "nginx":
        svc = next((s for s in cluster.services if addon.is_controller(s)), None)
        if svc is None:
            raise ctx.error(path + ("spec", "ingressClassName"),
                            f"class nginx needs the NGINX Ingress Controller add-on: add `nginx_ingress:` to "
                            f"cluster '{cluster.name}'")
        if svc.elb is None:
            raise ctx.error(("clusters", lab.clusters.index(cluster), "nginx_ingress", "annotations"),
                            "the controller's Service names no ELB: give kubernetes.io/elb.id (or "
                            "kubernetes.io/elb.autocreate) and kubernetes.io/elb.class")
        _backends(cluster, ing, path, ctx, node_port=False)
        return IngressInfo(spec=ing, ingress_class="nginx", elb=svc.elb, port=443 if tls else 80, tls=tls)

    if elb_mod.ELB_ID not in notes:
        raise elb_mod.AnnotationError(elb_mod.ELB_ID, "a cce Ingress needs the ELB it is served by")
    elb = next((e for e in lab.elbs if e.name == notes[elb_mod.ELB_ID]), None)
    if elb is None:
        raise elb_mod.AnnotationError(elb_mod.ELB_ID, f"no ELB '{notes[elb_mod.ELB_ID]}'; ELBs: "
                                                      + (", ".join(e.name for e in lab.elbs) or "none"))
    cls_name = notes.get(elb_mod.ELB_CLASS, "union")
    if elb_mod.CLASSES.get(cls_name) != elb.type:
        raise elb_mod.AnnotationError(elb_mod.ELB_CLASS, f"ELB '{elb.name}' is {elb.type}; write "
                                      + next(k for k, v in elb_mod.CLASSES.items() if v == elb.type))
    raw = notes.get(elb_mod.ELB_PORT, "443" if tls else "80")
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise elb_mod.AnnotationError(elb_mod.ELB_PORT, f"{raw!r} is not a port number (1-65535)")
    port, protocol = int(raw), "HTTPS" if tls else "HTTP"
    other = next((i for c in lab.clusters if c is not cluster for i in c.ingresses
                  if i.ingress_class == "cce" and i.elb == elb.name and i.port == port), None)
    if other is not None:
        raise elb_mod.AnnotationError(elb_mod.ELB_PORT, f"ELB '{elb.name}' port {port} serves Ingress "
                                      f"{other.name} of another cluster; give this one its own port")
    clash = next((ln for ln in elb.listeners if ln.port == port and ln.protocol in ("TCP", "HTTP", "HTTPS")), None)
    if clash is not None and clash.protocol != protocol:
        raise elb_mod.AnnotationError(elb_mod.ELB_PORT, f"ELB '{elb.name}' already has a {clash.protocol} listener "
                                      f"on {port}" + (f" (for {clash.service})" if clash.service else ""))
    if clash is None:
        elb.listeners.append(ListenerInfo(protocol=protocol, port=port))
    for svc, index in _backends(cluster, ing, path, ctx, node_port=not elb_mod.passthrough(elb, cluster)):
        name = l7_pool_name(cluster, svc, index)
        if not any(p.name == name for p in elb.pools):
            elb.pools.append(PoolInfo(name=name, protocol="TCP", members=elb_mod.members(lab, elb, cluster, svc, index),
                                      health=elb_mod.health_check(svc.spec.annotations, "TCP")))
    return IngressInfo(spec=ing, ingress_class="cce", elb=elb.name, port=port, tls=tls)


def all_backends(ing: Ingress) -> list[tuple[tuple, IngressBackend]]:
    out = []
    if ing.spec.defaultBackend is not None:
        out.append((("spec", "defaultBackend"), ing.spec.defaultBackend))
    for ri, rule in enumerate(ing.spec.rules):
        for pi, p in enumerate(rule.http.paths if rule.http else []):
            out.append((("spec", "rules", ri, "http", "paths", pi, "backend"), p.backend))
    return out


def _backends(cluster: ClusterInfo, ing: Ingress, path, ctx, *, node_port: bool) -> list:
    """(Service, port index) of every backend, as the API server and the controller check them."""
    out = []
    for where, backend in all_backends(ing):
        svc, index, problem = backend_service(cluster, backend, ing.metadata.namespace)
        if problem:
            raise ctx.error(path + where + ("service",), problem)
        if node_port and svc.spec.type == "ClusterIP":
            raise ctx.error(path + where + ("service", "name"),
                            f"Service {svc.spec.name} is ClusterIP: an ELB Ingress forwards to NodePort (or "
                            "LoadBalancer) Services; ClusterIP only with a dedicated ELB in an eni cluster")
        if (svc, index) not in out:
            out.append((svc, index))
    return out


def backend_service(cluster: ClusterInfo, backend: IngressBackend, namespace: str):
    """(ServiceInfo, port index, problem) of an Ingress backend."""
    ref = backend.service
    svc = next((s for s in cluster.services if s.spec.namespace == namespace and s.spec.name == ref.name), None)
    if svc is None:
        return None, None, (f"no Service {namespace}/{ref.name} in cluster '{cluster.name}'; Services: "
                            + (", ".join(s.spec.name for s in cluster.services if s.spec.namespace == namespace)
                               or "none"))
    if (ref.port.number is None) == (ref.port.name is None):
        return None, None, "port: give exactly one of number and name"
    for index, p in enumerate(svc.spec.ports):
        if p.protocol == "TCP" and (p.port == ref.port.number or (p.name and p.name == ref.port.name)):
            return svc, index, None
    want = ref.port.number if ref.port.number is not None else repr(ref.port.name)
    return None, None, f"Service {svc.spec.name} has no TCP port {want}"


def l7_pool_name(cluster: ClusterInfo, svc, index: int) -> str:
    return f"{cluster.name}/{svc.spec.namespace}/{svc.spec.name}:{svc.spec.ports[index].port}/L7"


def _upstream_key(text: str) -> str:
    return "u-" + "".join(c if c.isalnum() else "-" for c in text)


# -- nginx configurations ---------------------------------------------------------------------

def secrets_of(lab: Lab, cluster: ClusterInfo, ingresses: list[IngressInfo]) -> dict:
    """Every TLS Secret these Ingresses name ("ns/name" → `certs.TlsSecret`), for all the
    hosts listed with it."""
    from netlab.ingress import certs  # cryptography: only where a Secret is made


    hosts: dict[str, list[str]] = {}
    for info in ingresses:
        for tls in info.spec.spec.tls:
            key = f"{info.spec.metadata.namespace}/{tls.secretName}"
            hosts.setdefault(key, [])
            hosts[key] += [h for h in tls.hosts if h not in hosts[key]]
    return {key: certs.tls_secret(lab.name, cluster.name, key.split("/")[0], key.split("/")[1], tuple(hs))
            for key, hs in hosts.items()}


def elb_config(lab: Lab, elb: ElbInfo, down: frozenset[str] = frozenset()) -> tuple[NginxConfig, dict] | None:
    """The ELB's layer 7 (None if it has no HTTP/HTTPS listener), and its Secrets."""
    l7 = [ln for ln in elb.listeners if ln.protocol in ("HTTP", "HTTPS")]
    if not l7:
        return None
    run_dir = str(paths.object_dir(lab.name, "elb", elb.name))
    listens, secrets, used = [], {}, set()
    for ln in l7:
        served = [(c, i) for c in lab.clusters for i in c.ingresses
                  if i.ingress_class == "cce" and i.elb == elb.name and i.port == ln.port]
        cluster = served[0][0] if served else None  # one cluster per listener (resolve sees to it)
        if cluster is not None:
            secrets.update(secrets_of(lab, cluster, [i for _, i in served]))

        def key(backend: IngressBackend, namespace: str, cluster=cluster) -> str:
            svc, index, _ = backend_service(cluster, backend, namespace)
            name = l7_pool_name(cluster, svc, index)
            used.add(name)
            return _upstream_key(name)

        server_list, _ = servers([i.spec for _, i in served], key)
        listens.append(Listen(port=ln.port, tls=ln.protocol == "HTTPS", servers=tuple(server_list)))
    upstreams = [Upstream(_upstream_key(p.name), tuple((m.key, f"{p.name} {m.key}" not in down) for m in p.members),
                          comment=p.name) for p in elb.pools if p.name in used]
    cfg = NginxConfig(title=f"lab {lab.name}: ELB {elb.name} layer 7 ({elb.type})", run_dir=run_dir,
                      address=str(elb.ip), listens=listens, upstreams=upstreams, forwarded_for="append",
                      bind=str(elb.backend_address or elb.ip),
                      certificates={k: f"{run_dir}/{k.replace('/', '_')}" for k in secrets})
    return cfg, secrets


def controller_config(lab: Lab, cluster: ClusterInfo, pod: PodInfo) -> tuple[NginxConfig, dict]:
    """A controller pod's nginx: every class-nginx Ingress of its cluster."""
    from netlab.ingress import certs

    served = [i for i in cluster.ingresses if i.ingress_class == "nginx"]
    secrets = secrets_of(lab, cluster, served)
    default_key = f"{addon.NAMESPACE}/{addon.CONTROLLER}-default-cert"
    secrets.setdefault(default_key, certs.tls_secret(lab.name, cluster.name, addon.NAMESPACE,
                                                     f"{addon.CONTROLLER}-default-cert", ("ingress.local",)))
    upstreams: dict[str, Upstream] = {}

    def key(backend: IngressBackend, namespace: str) -> str:
        svc, index, _ = backend_service(cluster, backend, namespace)
        port = svc.spec.ports[index].port
        name = _upstream_key(f"{svc.spec.namespace}/{svc.spec.name}:{port}")
        upstreams[name] = Upstream(name, ((f"{svc.cluster_ip}:{port}", True),),
                                   comment=f"Service {svc.spec.namespace}/{svc.spec.name}: its ClusterIP")
        return name

    server_list, _ = servers([i.spec for i in served], key)
    run_dir = str(paths.object_dir(lab.name, cluster.name, pod.name))
    listens = [Listen(80, False, tuple(server_list), redirect_tls_hosts=True), Listen(443, True, tuple(server_list))]
    cfg = NginxConfig(title=f"lab {lab.name}: NGINX Ingress Controller {cluster.name}/{pod.name}", run_dir=run_dir,
                      address=None, listens=listens, upstreams=list(upstreams.values()), forwarded_for="replace",
                      certificates={k: f"{run_dir}/{k.replace('/', '_')}" for k in secrets})
    return cfg, secrets


def _nginx_ops(netns: str, name: str, cfg: NginxConfig, secrets: dict, lab: Lab) -> list[Op]:
    ops: list[Op] = [WriteFile(netns, f"{cfg.run_dir}/nginx.conf", render(cfg))]
    for key, secret in secrets.items():
        stem = cfg.certificates[key]
        ops += [WriteFile(netns, f"{stem}.crt", secret.crt), WriteFile(netns, f"{stem}.key", secret.key, mode=0o600)]
    rel = cfg.pid_file.removeprefix(str(paths.lab_dir(lab.name)) + "/")
    ops.append(StartProcess(netns, name=name, argv=("nginx", "-c", f"{cfg.run_dir}/nginx.conf", "-p", cfg.run_dir),
                            ready_file=rel))
    return ops


def reload_ops(lab: Lab, cluster: ClusterInfo, info: IngressInfo) -> list[Op]:
    """What serves one Ingress, told about its new rules (`netlab patch`): the nginx
    configuration rewritten whole, nginx reloaded (its old workers gone before this
    returns), and the health checker (which re-renders layer 7 when a member changes
    state) re-reading the lab."""
    ops: list[Op] = []
    if info.ingress_class == "cce":
        elb = lab.elb(info.elb)
        cfg, _ = elb_config(lab, elb)
        ops += [WriteFile(elb.netns, f"{cfg.run_dir}/nginx.conf", render(cfg)),
                ReloadProcess(elb.netns, nginx_name(elb.ref), wait="workers")]
    else:
        for pod in addon.controller_pods(cluster):
            cfg, _ = controller_config(lab, cluster, pod)
            ops += [WriteFile(pod.netns, f"{cfg.run_dir}/nginx.conf", render(cfg)),
                    ReloadProcess(pod.netns, nginx_name(f"{cluster.name}/{pod.name}"), wait="workers")]
    if any(p.health for e in lab.elbs for p in e.pools):
        ops.append(ReloadProcess(lab.elbs[0].netns, elb_mod.HEALTHCHECK))
    return ops


def nginx_name(what: str) -> str:
    return "nginx-" + what.replace("/", "-")


def nginx_ops(lab: Lab) -> list[Op]:
    """Every nginx of the lab: each ELB's layer 7, each controller pod."""
    ops: list[Op] = []
    for elb in lab.elbs:
        found = elb_config(lab, elb)
        if found:
            ops += _nginx_ops(elb.netns, nginx_name(elb.ref), *found, lab)
    for cluster in lab.clusters:
        if not any(i.ingress_class == "nginx" for i in cluster.ingresses) and not addon.controller_pods(cluster):
            continue
        for pod in addon.controller_pods(cluster):
            ops += _nginx_ops(pod.netns, nginx_name(f"{cluster.name}/{pod.name}"),
                              *controller_config(lab, cluster, pod), lab)
    return ops


def members_of(lab: Lab, cluster: ClusterInfo, svc, index: int) -> list[MemberInfo]:
    """The pods behind a Service port (what answers an Ingress path)."""
    port = svc.spec.ports[index]
    return [MemberInfo(address=p.ip, port=target_port(port, p), target=f"{cluster.name}/{p.name}")
            for p in selected(svc, cluster.pods) if target_port(port, p) is not None]


OBJECT = IngressObject()
