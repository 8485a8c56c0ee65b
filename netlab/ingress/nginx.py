"""nginx.conf for a lab's nginx processes, rendered whole from Ingress objects (pure).

One renderer serves both Ingress classes: the ELB's layer 7 (class `cce`: nginx in the
ELB's namespace, listening on its private address, upstreams of nodeIP:nodePort) and the
NGINX Ingress Controller add-on (class `nginx`: nginx in each controller pod, upstreams
of the backend Services' ClusterIP). `netlab.cloud.ingress` decides what goes in; the
matching is `netlab.ingress.routes`.

The process runs in the foreground (`daemon off`) under its StartProcess PID, writes its
PID file (the plan waits for it: the sockets are open by then) and logs to stderr, which
the lab's log collects; workers run as www-data. A reload is a SIGHUP to that PID after
the file is rewritten (the health checker does it when a backend changes state).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.ingress.routes import Server, server_name


@dataclass(frozen=True)
class Upstream:
    key: str
    servers: tuple[tuple[str, bool], ...]  # ("addr:port", in rotation)
    comment: str = ""


@dataclass(frozen=True)
class Listen:
    port: int
    tls: bool
    servers: tuple[Server, ...]
    redirect_tls_hosts: bool = False  # plain HTTP for a TLS host: 308 to https (ingress-nginx)


@dataclass
class NginxConfig:
    title: str
    run_dir: str  # the pid file, temp files, certificates
    address: str | None  # where to listen (None: every address of the namespace)
    listens: list[Listen]
    upstreams: list[Upstream]
    forwarded_for: str = "append"  # "append": $proxy_add_x_forwarded_for; "replace": the client only
    bind: str | None = None  # the source address toward backends
    certificates: dict[str, str] = field(default_factory=dict)  # secret "ns/name" → file stem

    @property
    def pid_file(self) -> str:
        return f"{self.run_dir}/nginx.pid"


def render(cfg: NginxConfig) -> str:
    xff = "$proxy_add_x_forwarded_for" if cfg.forwarded_for == "append" else "$remote_addr"
    out = [f"# netlab: {cfg.title}",
           "daemon off;", "master_process on;", "worker_processes 1;", "user www-data;",
           f"pid {cfg.pid_file};", "error_log stderr notice;",
           "events {", "    worker_connections 1024;", "}",
           "http {", "    access_log off;", "    server_tokens off;",
           f"    client_body_temp_path {cfg.run_dir}/temp-body;", f"    proxy_temp_path {cfg.run_dir}/temp-proxy;",
           f"    fastcgi_temp_path {cfg.run_dir}/temp-fastcgi;", f"    uwsgi_temp_path {cfg.run_dir}/temp-uwsgi;",
           f"    scgi_temp_path {cfg.run_dir}/temp-scgi;",
           "    server_names_hash_bucket_size 128;",
           "    default_type application/octet-stream;",
           "    proxy_http_version 1.1;",
           "    proxy_set_header Host $http_host;",
           "    proxy_set_header Connection \"\";",
           f"    proxy_set_header X-Forwarded-For {xff};",
           "    proxy_set_header X-Real-IP $remote_addr;",
           "    proxy_set_header X-Forwarded-Proto $scheme;",
           "    proxy_set_header X-Forwarded-Host $host;",
           "    proxy_connect_timeout 2s;", "    proxy_read_timeout 5s;", "    proxy_send_timeout 5s;"]
    if cfg.bind:
        out.append(f"    proxy_bind {cfg.bind};")
    for up in cfg.upstreams:
        out += ["", f"    upstream {up.key} {{" + (f"  # {up.comment}" if up.comment else "")]
        if not up.servers:
            out.append("        server 127.0.0.1:9 down;  # no backend: 502")
        out += [f"        server {addr}{'' if live else ' down'};" for addr, live in up.servers]
        out.append("    }")
    for listen in cfg.listens:
        for server in listen.servers:
            out += [""] + _server(cfg, listen, server)
    out.append("}")
    return "\n".join(out) + "\n"


def _server(cfg: NginxConfig, listen: Listen, server: Server) -> list[str]:
    where = f"{cfg.address}:{listen.port}" if cfg.address else str(listen.port)
    flags = (" ssl" if listen.tls else "") + (" default_server" if server.host is None else "")
    name = "_" if server.host is None else server_name(server.host)
    out = ["    server {", f"        listen {where}{flags};", f"        server_name {name};"]
    if listen.tls:
        secret = server.tls_secret or _default_secret(cfg, listen)
        if secret is not None:
            stem = cfg.certificates[secret]
            out += [f"        ssl_certificate {stem}.crt;", f"        ssl_certificate_key {stem}.key;"]
    if (listen.redirect_tls_hosts and not listen.tls and server.host is not None and server.tls_secret
            and server.ssl_redirect):
        return out + ["        return 308 https://$host$request_uri;  # TLS host: ssl-redirect", "    }"]
    for loc in server.ordered():
        out.append(f"        location {loc.modifier} {loc.path} {{  # {loc.source}")
        out.append(f"            proxy_pass http://{loc.backend};" if loc.backend else "            return 404;")
        out.append("        }")
    out.append("    }")
    return out


def _default_secret(cfg: NginxConfig, listen: Listen) -> str | None:
    """The certificate a TLS listener shows a name without its own (the first one)."""
    return next((s.tls_secret for s in listen.servers if s.tls_secret), next(iter(cfg.certificates), None))
