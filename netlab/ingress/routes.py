"""Ingress rules → virtual servers and locations, with the matching the Ingress
specification defines (pure).

What a request matches, per networking.k8s.io/v1 and the ingress-controller conformance
suite (kubernetes-sigs/ingress-controller-conformance, features host_rules, path_rules,
default_backend):

- host: exact names match exactly (case-insensitively, without the port); a wildcard
  `*.foo.com` matches exactly one DNS label before `.foo.com` (`bar.foo.com`, not
  `baz.bar.foo.com`, not `foo.com`); a rule without host matches every request that no
  host rule matches; an exact host beats a wildcard.
- path: `Exact` matches the whole path, case-sensitively (`/foo` does not match `/foo/`);
  `Prefix` matches element by element on `/` (`/foo` matches `/foo`, `/foo/` and
  `/foo/bar`, not `/foobar`), and a trailing slash of the rule is ignored (`/aaa/bbb/`
  matches `/aaa/bbb`); `ImplementationSpecific` is a plain string prefix here, as nginx's
  own prefix locations are (and as the ingress-nginx controller treats it). The longest
  matching path wins; at equal length `Exact` beats `Prefix`.
- what matches nothing, and a host whose paths all miss, goes to the default backend
  (`spec.defaultBackend`, the first one across the Ingresses served together), else 404.

Several Ingresses served together merge per host; where two define the same path of the
same type, the first (in scenario order) wins, as the oldest Ingress does in ingress-nginx.

nginx realises this directly: a server per host (`server_name`; a wildcard as the regex
`~^[^.]+\\.foo\\.com$`, so it covers one label), and per path the locations below; nginx
picks `=` locations first, then the longest `^~` prefix, which is exactly the rule above:

| rule                     | locations                                    |
|--------------------------|----------------------------------------------|
| Exact /foo               | `= /foo`                                     |
| Prefix /foo (or /foo/)   | `= /foo` (unless an Exact /foo takes it), `^~ /foo/` |
| Prefix /                 | `^~ /`                                       |
| ImplementationSpecific /foo | `^~ /foo`                                 |
| (catch-all of a server)  | `^~ /` → the default backend, or 404, unless a rule has it |
| (a location `/foo/` without `= /foo`) | `= /foo` → where `/foo` matches anyway (no 301) |

`match` answers the same question in Python; the unit tests hold both to the same table,
and the integration tests hold the running nginx to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from netlab.scenario.types import Ingress, IngressBackend

RANK = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 2}
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"  # "false": serve a TLS host over plain HTTP too


@dataclass(frozen=True)
class Location:
    modifier: str  # "=" (exact) or "^~" (prefix)
    path: str
    backend: str | None  # an upstream key; None: 404
    rank: int  # which rule type made it (RANK), for conflicts
    source: str  # the rule it comes from, for the configuration's comments


@dataclass
class Server:
    host: str | None  # None: the default server (rules without host, and every unmatched host)
    tls_secret: str | None = None  # "namespace/name" of its certificate's Secret
    ssl_redirect: bool = True  # class nginx: plain HTTP to a TLS host is redirected (ingress-nginx's default)
    locations: dict[tuple[str, str], Location] = field(default_factory=dict)

    def add(self, loc: Location) -> None:
        key = (loc.modifier, loc.path)
        old = self.locations.get(key)
        if old is None or loc.rank < old.rank:
            self.locations[key] = loc

    def ordered(self) -> list[Location]:
        return sorted(self.locations.values(), key=lambda x: (x.modifier != "=", x.path))


class RouteError(ValueError):
    def __init__(self, field: tuple, message: str):
        super().__init__(message)
        self.field = field  # where, inside the Ingress object


def check_path(path: str | None, path_type: str) -> str:
    """The path as the API server accepts it, or RouteError."""
    if path is None:
        if path_type != "ImplementationSpecific":
            raise RouteError(("path",), f"pathType {path_type} needs a path")
        return "/"
    if not path.startswith("/"):
        raise RouteError(("path",), f"{path!r} must be an absolute path (start with /)")
    if any(c.isspace() for c in path) or any(c in path for c in "{};\"'\\#"):
        raise RouteError(("path",), f"{path!r} holds a character a path may not (space, {{ }} ; quote, \\, #)")
    return path


def locations(path: str, path_type: str, backend: str | None, source: str) -> list[Location]:
    rank = RANK[path_type]
    if path_type == "Exact":
        return [Location("=", path, backend, rank, source)]
    if path_type == "Prefix":
        stem = path.rstrip("/")
        if not stem:
            return [Location("^~", "/", backend, rank, source)]
        return [Location("=", stem, backend, rank, source), Location("^~", stem + "/", backend, rank, source)]
    return [Location("^~", path, backend, rank, source)]


def servers(ingresses: list[Ingress], backend_key: Callable[[IngressBackend, str], str],
            secret_of: Callable[[Ingress, str], str | None] | None = None) -> tuple[list[Server], str | None]:
    """The virtual servers of Ingresses served together, and the default backend's key.
    `backend_key(backend, namespace)` names the upstream of a backend; `secret_of(ingress,
    host)` the TLS Secret of a host (None: not TLS)."""
    default = next((backend_key(i.spec.defaultBackend, i.metadata.namespace) for i in ingresses
                    if i.spec.defaultBackend is not None), None)
    by_host: dict[str | None, Server] = {None: Server(None)}
    for ing in ingresses:
        ns = ing.metadata.namespace
        for tls in ing.spec.tls:
            for host in tls.hosts:
                server = by_host.setdefault(host, Server(host))
                if server.tls_secret is None and tls.secretName:
                    server.tls_secret = f"{ns}/{tls.secretName}"
                if ing.metadata.annotations.get(SSL_REDIRECT) == "false":
                    server.ssl_redirect = False
        for rule in ing.spec.rules:
            server = by_host.setdefault(rule.host, Server(rule.host))
            if server.host is not None and server.tls_secret is None and secret_of is not None:
                server.tls_secret = secret_of(ing, server.host)
            for p in (rule.http.paths if rule.http else []):
                path = check_path(p.path, p.pathType)
                source = f"ingress {ns}/{ing.metadata.name}: {p.pathType} {path}"
                for loc in locations(path, p.pathType, backend_key(p.backend, ns), source):
                    server.add(loc)
    for server in by_host.values():
        server.add(Location("^~", "/", default, len(RANK), "no rule matches: the default backend"
                            if default else "no rule matches: 404"))
        _no_auto_redirect(server)
    ordered = [by_host[None]] + sorted((s for h, s in by_host.items() if h is not None),
                                       key=lambda s: (s.host.startswith("*."), s.host))
    return ordered, default


def _no_auto_redirect(server: Server) -> None:
    """nginx answers a request for `/foo` with a 301 to `/foo/` when a proxying location is
    named `/foo/` (its "auto redirect"); the specification wants `/foo` to go where the
    rules send it. An exact location for `/foo` with that destination keeps nginx quiet."""
    for loc in list(server.locations.values()):
        stem = loc.path[:-1]
        if loc.path != "/" and loc.path.endswith("/") and ("=", stem) not in server.locations:
            target = _lookup(server, stem)
            server.add(Location("=", stem, target.backend, len(RANK) + 1,
                                f"{stem} as the rules route it (not nginx's redirect to {loc.path})"))


def _lookup(server: Server, path: str) -> Location:
    for loc in server.ordered():
        if loc.modifier == "=" and loc.path == path:
            return loc
    prefixes = [loc for loc in server.locations.values() if loc.modifier == "^~" and path.startswith(loc.path)]
    return max(prefixes, key=lambda loc: len(loc.path))


def server_name(host: str) -> str:
    """nginx's server_name for an Ingress host: a wildcard covers exactly one label."""
    if host.startswith("*."):
        return "~^[^.]+" + re.escape(host[1:]).replace("\\-", "-") + "$"
    return host


def host_matches(rule: str, host: str) -> bool:
    host = host.lower().split(":")[0]
    if rule.startswith("*."):
        head, _, tail = host.partition(".")
        return bool(head) and tail == rule[2:]
    return host == rule


def match(server_list: list[Server], host: str, path: str) -> Location:
    """The location a request goes to (the reference the nginx configuration must equal)."""
    exact = [s for s in server_list if s.host and not s.host.startswith("*.") and host_matches(s.host, host)]
    wild = [s for s in server_list if s.host and s.host.startswith("*.") and host_matches(s.host, host)]
    return _lookup((exact or wild or [server_list[0]])[0], path)
