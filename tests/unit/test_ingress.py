"""Ingress on the lab (pure, no root): the specification's matching (the conformance suite's
cases, `ingress_cases`), the nginx configuration rendered from Ingress objects (golden), the
generated TLS material, and what resolve refuses as the API server and the service do."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from cryptography import x509

from netlab.errors import ScenarioError
from netlab.ingress import certs, routes
from netlab.ingress.nginx import Listen, NginxConfig, Upstream, render
from netlab.scenario.types import Ingress
from tests.helpers import load_text
from tests.unit.ingress_cases import CASES, INGRESSES, NO_DEFAULT


def ingresses(with_default: bool = True) -> list[Ingress]:
    docs = yaml.safe_load(INGRESSES.replace("CLASS", "nginx"))
    return [Ingress.model_validate(d) for d in docs if with_default or d["metadata"]["name"] != "default-backend"]


def key(backend, namespace):
    return backend.service.name


@pytest.mark.parametrize("host,path,want", CASES)
def test_matching_follows_the_specification(host, path, want):
    server_list, default = routes.servers(ingresses(), key)
    assert default == "echo-service"
    assert routes.match(server_list, host, path).backend == want


@pytest.mark.parametrize("host,path,want", NO_DEFAULT)
def test_without_a_default_backend_what_misses_is_a_404(host, path, want):
    server_list, _ = routes.servers(ingresses(with_default=False), key)
    assert routes.match(server_list, host, path).backend == want


def test_locations_follow_the_table():
    server_list, _ = routes.servers(ingresses(), key)
    by_host = {s.host: s for s in server_list}
    mixed = [(loc.modifier, loc.path, loc.backend) for loc in by_host["mixed-path-rules"].ordered()]
    assert mixed == [("=", "/foo", "foo-exact"), ("^~", "/", "echo-service"), ("^~", "/foo/", "foo-prefix")]
    trailing = [(loc.modifier, loc.path) for loc in by_host["trailing-slash-path-rules"].ordered()]
    # `= /foo`: the request /foo goes where the rules send it, not to nginx's 301 to /foo/.
    assert trailing == [("=", "/aaa/bbb"), ("=", "/foo"), ("=", "/foo/"), ("^~", "/"), ("^~", "/aaa/bbb/")]
    assert by_host["trailing-slash-path-rules"].locations[("=", "/foo")].backend == "echo-service"
    assert by_host["foo.bar.com"].tls_secret == "default/conformance-tls"
    assert server_list[0].host is None  # the default server first; wildcards after exact names
    assert [s.host for s in server_list][-1] == "*.foo.com"


def test_a_wildcard_is_one_label_for_nginx_too():
    assert routes.server_name("*.foo-bar.com") == r"~^[^.]+\.foo-bar\.com$"
    assert routes.server_name("foo.bar.com") == "foo.bar.com"


@pytest.mark.parametrize("path,kind,message", [
    ("foo", "Prefix", "must be an absolute path"),
    (None, "Exact", "pathType Exact needs a path"),
    ("/a;b", "Prefix", "holds a character a path may not"),
    ("/a b", "Exact", "holds a character"),
])
def test_paths_nginx_could_misread_are_refused(path, kind, message):
    with pytest.raises(routes.RouteError, match=message):
        routes.check_path(path, kind)


GOLDEN = """\
# netlab: test
daemon off;
master_process on;
worker_processes 1;
user www-data;
pid /run/netlab/t/elb/e/nginx.pid;
error_log stderr notice;
events {
    worker_connections 1024;
}
http {
    access_log off;
    server_tokens off;
    client_body_temp_path /run/netlab/t/elb/e/temp-body;
    proxy_temp_path /run/netlab/t/elb/e/temp-proxy;
    fastcgi_temp_path /run/netlab/t/elb/e/temp-fastcgi;
    uwsgi_temp_path /run/netlab/t/elb/e/temp-uwsgi;
    scgi_temp_path /run/netlab/t/elb/e/temp-scgi;
    server_names_hash_bucket_size 128;
    default_type application/octet-stream;
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;
    proxy_set_header Connection "";
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    proxy_connect_timeout 2s;
    proxy_read_timeout 5s;
    proxy_send_timeout 5s;
    proxy_bind 100.125.0.2;

    upstream u-web {  # c1/default/web:80/L7
        server 192.168.0.10:30080;
        server 192.168.0.11:30080 down;
    }

    server {
        listen 192.168.0.254:443 ssl default_server;
        server_name _;
        ssl_certificate /run/netlab/t/elb/e/default_tls.crt;
        ssl_certificate_key /run/netlab/t/elb/e/default_tls.key;
        location ^~ / {  # no rule matches: 404
            return 404;
        }
    }

    server {
        listen 192.168.0.254:443 ssl;
        server_name ~^[^.]+\\.example\\.com$;
        ssl_certificate /run/netlab/t/elb/e/default_tls.crt;
        ssl_certificate_key /run/netlab/t/elb/e/default_tls.key;
        location = /web {  # ingress default/i: Prefix /web/
            proxy_pass http://u-web;
        }
        location ^~ / {  # no rule matches: 404
            return 404;
        }
        location ^~ /web/ {  # ingress default/i: Prefix /web/
            proxy_pass http://u-web;
        }
    }
}
"""


def test_nginx_configuration_is_rendered_whole():
    ing = Ingress.model_validate(yaml.safe_load(textwrap.dedent("""\
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: i}
        spec:
          tls: [{hosts: ["*.example.com"], secretName: tls}]
          rules:
            - host: "*.example.com"
              http: {paths: [{path: /web/, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
        """)))
    server_list, _ = routes.servers([ing], lambda b, n: "u-" + b.service.name)
    cfg = NginxConfig(title="test", run_dir="/run/netlab/t/elb/e", address="192.168.0.254",
                      listens=[Listen(443, True, tuple(server_list))],
                      upstreams=[Upstream("u-web", (("192.168.0.10:30080", True), ("192.168.0.11:30080", False)),
                                          comment="c1/default/web:80/L7")],
                      bind="100.125.0.2", certificates={"default/tls": "/run/netlab/t/elb/e/default_tls"})
    assert render(cfg) == GOLDEN


def test_tls_material_is_the_same_every_time_and_names_the_hosts():
    a = certs.tls_secret("lab", "c1", "default", "tls", ("pay.example.com", "*.docs.example.com"))
    b = certs.tls_secret.__wrapped__("lab", "c1", "default", "tls", ("pay.example.com", "*.docs.example.com"))
    assert (a.crt, a.key) == (b.crt, b.key)
    leaf, ca = x509.load_pem_x509_certificates(a.crt.encode())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["pay.example.com", "*.docs.example.com"]
    assert leaf.issuer == ca.subject and ca.public_bytes(certs.serialization.Encoding.PEM).decode() == certs.ca_pem("lab")
    leaf.verify_directly_issued_by(ca)
    assert certs.ca_pem("other") != certs.ca_pem("lab")
    assert a.manifest()["type"] == "kubernetes.io/tls"
