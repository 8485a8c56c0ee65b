"""The Ingress matching cases, shared by the pure tests (`netlab.ingress.routes.match`) and
the integration tests (the running nginx): the ingress-controller conformance suite's
features (kubernetes-sigs/ingress-controller-conformance: path_rules, host_rules,
default_backend), plus ImplementationSpecific, a host rule beating the default backend, and
longest match across rule types.

Each case is (host, path, the Service that must answer, or None for a 404).
"""

from __future__ import annotations

# The conformance suite's Ingresses (one namespace), as a lab writes them.
INGRESSES = """\
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: path-rules}
  spec:
    ingressClassName: CLASS
    rules:
      - host: exact-path-rules
        http:
          paths:
            - {path: /foo, pathType: Exact, backend: {service: {name: foo-exact, port: {number: 80}}}}
      - host: prefix-path-rules
        http:
          paths:
            - {path: /foo, pathType: Prefix, backend: {service: {name: foo-prefix, port: {number: 80}}}}
            - {path: /aaa/bbb, pathType: Prefix, backend: {service: {name: aaa-slash-bbb-prefix, port: {number: 80}}}}
            - {path: /aaa, pathType: Prefix, backend: {service: {name: aaa-prefix, port: {number: 80}}}}
      - host: mixed-path-rules
        http:
          paths:
            - {path: /foo, pathType: Prefix, backend: {service: {name: foo-prefix, port: {number: 80}}}}
            - {path: /foo, pathType: Exact, backend: {service: {name: foo-exact, port: {number: 80}}}}
      - host: trailing-slash-path-rules
        http:
          paths:
            - {path: /aaa/bbb/, pathType: Prefix, backend: {service: {name: aaa-slash-bbb-slash-prefix, port: {number: 80}}}}
            - {path: /foo/, pathType: Exact, backend: {service: {name: foo-slash-exact, port: {number: 80}}}}
      - host: impl-specific-rules
        http:
          paths:
            - {path: /foo, pathType: ImplementationSpecific, backend: {service: {name: foo-prefix, port: {number: 80}}}}
            - {path: /foo/bar, pathType: Exact, backend: {service: {name: foo-exact, port: {number: 80}}}}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: host-rules}
  spec:
    ingressClassName: CLASS
    tls:
      - {hosts: [foo.bar.com], secretName: conformance-tls}
    rules:
      - host: "*.foo.com"
        http:
          paths:
            - {path: /, pathType: Prefix, backend: {service: {name: wildcard-foo-com, port: {number: 80}}}}
      - host: foo.bar.com
        http:
          paths:
            - {path: /, pathType: Prefix, backend: {service: {name: foo-bar-com, port: {name: http}}}}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: default-backend}
  spec:
    ingressClassName: CLASS
    defaultBackend: {service: {name: echo-service, port: {number: 80}}}
"""

SERVICES = ["foo-exact", "foo-prefix", "aaa-slash-bbb-prefix", "aaa-prefix", "aaa-slash-bbb-slash-prefix",
            "foo-slash-exact", "wildcard-foo-com", "foo-bar-com", "echo-service"]

# path_rules.feature: a host whose paths all miss goes to the default backend (the suite runs
# each feature alone, where that is a 404; here the default-backend Ingress is served
# together with them, so it answers).
DEFAULT = "echo-service"
CASES: list[tuple[str, str, str | None]] = [
    # path_rules.feature
    ("exact-path-rules", "/foo", "foo-exact"),
    ("exact-path-rules", "/foo/", DEFAULT),  # Exact /foo does not match /foo/
    ("exact-path-rules", "/FOO", DEFAULT),  # case-sensitive
    ("exact-path-rules", "/bar", DEFAULT),
    ("prefix-path-rules", "/foo", "foo-prefix"),
    ("prefix-path-rules", "/foo/", "foo-prefix"),  # trailing slash of the request ignored
    ("prefix-path-rules", "/FOO", DEFAULT),
    ("prefix-path-rules", "/aaa/bbb", "aaa-slash-bbb-prefix"),  # the longest match
    ("prefix-path-rules", "/aaa/bbb/ccc", "aaa-slash-bbb-prefix"),
    ("prefix-path-rules", "/aaa/ccc", "aaa-prefix"),
    ("prefix-path-rules", "/aaaccc", DEFAULT),  # element by element: /aaa is not a prefix of /aaaccc
    ("prefix-path-rules", "/aaa/bbbxyz", "aaa-prefix"),
    ("mixed-path-rules", "/foo", "foo-exact"),  # Exact beats Prefix at equal length
    ("mixed-path-rules", "/foo/", "foo-prefix"),
    ("trailing-slash-path-rules", "/aaa/bbb", "aaa-slash-bbb-slash-prefix"),  # Prefix /aaa/bbb/ ≡ /aaa/bbb
    ("trailing-slash-path-rules", "/aaa/bbb/", "aaa-slash-bbb-slash-prefix"),
    ("trailing-slash-path-rules", "/foo", DEFAULT),  # Exact /foo/ does not match /foo
    ("trailing-slash-path-rules", "/foo/", "foo-slash-exact"),
    # ImplementationSpecific: nginx's plain string prefix (as ingress-nginx); longest wins
    ("impl-specific-rules", "/foo", "foo-prefix"),
    ("impl-specific-rules", "/foobar", "foo-prefix"),
    ("impl-specific-rules", "/foo/bar", "foo-exact"),
    # host_rules.feature
    ("foo.bar.com", "/", "foo-bar-com"),
    ("FOO.bar.com", "/", "foo-bar-com"),  # host names are case-insensitive
    ("subdomain.bar.com", "/", DEFAULT),  # no host rule: the default backend beats nothing else
    ("bar.foo.com", "/", "wildcard-foo-com"),  # a wildcard covers one label
    ("baz.bar.foo.com", "/", DEFAULT),  # ... not two
    ("foo.com", "/", DEFAULT),  # ... not none
    # default_backend.feature
    ("my-host", "/", DEFAULT),
    ("my-host", "/sub-path", DEFAULT),
    ("some-host", "/resource", DEFAULT),
]

# Without the default-backend Ingress, what misses is a 404 (the suite's own expectation).
NO_DEFAULT = [(h, p, None if want == DEFAULT else want) for h, p, want in CASES
              if not (h, p) in {("my-host", "/"), ("my-host", "/sub-path"), ("some-host", "/resource")}]
