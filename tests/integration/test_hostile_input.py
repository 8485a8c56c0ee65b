"""Hostile input through the CLI, as users run it: every command answers exit 2 with one
line on stderr, no traceback, in bounded time (the subprocess timeout is the bound), and
`up` builds nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab import linux
from tests.helpers import SCENARIOS, netlab
from tests.unit import test_fuzz_input as fuzz

BASE = (SCENARIOS / "vpc-basic.yaml").read_text()
SERVICES = (SCENARIOS / "services.yaml").read_text()
BOMB = "name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))

SCENARIO_TEXT = {
    # case: (text, what the one line must hold after "netlab: error: FILE")
    "alias-bomb": (BOMB, ":2: a0: anchor &a0: anchors and aliases are not supported"),
    "self-reference": (BASE + "x: &a [*a]\n", ":30: x: anchor &a: anchors and aliases are not supported"),
    "deep-3000": (BASE + "x: " + "[" * 3000 + "]" * 3000 + "\n", ":30: "),
    "deep-100000": (BASE + "x: " + "{a: " * 100_000 + "1" + "}" * 100_000 + "\n", ":30: "),
    "tag": (BASE.replace("name: vpc-basic", "name: !foo vpc-basic"), ":4: name: tag !foo is not supported"),
    "merge-key": (BASE.replace("vpc:\n", "vpc:\n  <<: {cidr: 10.0.0.0/8}\n"), ":7: vpc: merge keys (<<) are not supported"),
    "int-abc": (BASE.replace("  cidr: 192.168.0.0/16\n", "  cidr: 192.168.0.0/16\n  route_quota: !!int abc\n"),
                ":8: vpc.route_quota: 'abc' is not a valid !!int"),
    "reserved-cidr": (BASE.replace("cidr: 192.168.0.0/16", "cidr: 255.255.255.0/24"),
                      ":7: vpc.cidr: '255.255.255.0/24' is inside 240.0.0.0/4 (reserved)"),
    "host-bits": (BASE.replace("cidr: 192.168.0.0/16", "cidr: 192.168.0.1/16"),
                  ":7: vpc.cidr: '192.168.0.1/16' has host bits set; the network is 192.168.0.0/16"),
    "target-port": (SERVICES.replace("targetPort: 8080", "targetPort: 70000"),
                    ":27: clusters[0].services[1].ports[0].targetPort: 70000 is not a port number (1-65535)"),
    "duplicate-key": (BASE.replace("vpc:\n", "vpc:\n  cidr: 10.0.0.0/8\n"), ":8: vpc.cidr: duplicate key 'cidr' (first on line 7)"),
    "integer-key": (BASE.replace("vpc:\n", "vpc:\n  80: x\n"), ":7: vpc: key '80' is not a string"),
    "nul": (BASE.replace("description:", "description: \x00"), ":5: character U+0000 is not allowed"),
}


def one_line_exit_2(done, *expected: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("netlab: error: ")
    for fragment in expected:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("case", sorted(SCENARIO_TEXT))
def test_hostile_scenario_text(case, tmp_path):
    text, expected = SCENARIO_TEXT[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    one_line_exit_2(netlab("validate", str(path), timeout=20), f"netlab: error: {path}{expected}")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("description: VPC", "description: caf\xe9 VPC").encode("latin-1"))
    one_line_exit_2(netlab("validate", str(path), timeout=20), f"{path}:5: not UTF-8 text (byte 0xe9)")


def _paths(tmp: Path) -> dict[str, tuple[str, str]]:
    os.mkfifo(tmp / "fifo.yaml")
    (tmp / "loop-a").symlink_to(tmp / "loop-b")
    (tmp / "loop-b").symlink_to(tmp / "loop-a")
    (tmp / "file.yaml").write_text(BASE)
    long = str(tmp / ("a" * 300 + ".yaml"))
    return {
        "fifo": (str(tmp / "fifo.yaml"), "is a FIFO (named pipe), not a regular file"),
        "dev-zero": ("/dev/zero", "/dev/zero: is a character device, not a regular file"),
        "dev-urandom": ("/dev/urandom", "/dev/urandom: is a character device, not a regular file"),
        "symlink-loop": (str(tmp / "loop-a"), "too many levels of symbolic links"),
        "through-a-file": (str(tmp / "file.yaml" / "x.yaml"), "a component of the path is not a directory"),
        "long-name": (long, f"{long}: file name too long"),
        "missing": (str(tmp / "missing.yaml"), "missing.yaml: no such file"),
        "directory": (str(tmp), "is a directory"),
    }


def test_hostile_paths(tmp_path):
    for case, (path, expected) in _paths(tmp_path).items():
        one_line_exit_2(netlab("validate", path, timeout=20), expected)
        if case in ("fifo", "dev-zero", "symlink-loop"):
            one_line_exit_2(netlab("up", path, "--name", "hi-path", timeout=20), expected)
    assert not [ns for ns in linux.list_netns() if ns.startswith("nl-hi-path-")]
    assert not Path("/run/netlab/hi-path").exists()


@pytest.mark.parametrize("case", ["alias-bomb", "deep-100000", "target-port", "reserved-cidr"])
def test_up_builds_nothing(case, tmp_path):
    text, expected = SCENARIO_TEXT[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    name = f"hi-{case}"
    one_line_exit_2(netlab("up", str(path), "--name", name, timeout=20), expected)
    assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
    assert not Path(f"/run/netlab/{name}").exists()


@settings(max_examples=6, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(sorted(fuzz.SEEDS)), data=st.data())
def test_mutants_that_validate_refuses_are_refused_by_up_with_nothing_built(seed, data):
    text = fuzz.SEEDS[seed]
    for _ in range(2):
        text = data.draw(st.sampled_from(fuzz.MUTATORS))(text, data)
    path = Path(f"/tmp/netlab-hi-mutant-{os.getpid()}.yaml")
    path.write_text(text)
    try:
        checked = netlab("validate", str(path), timeout=20)
        if checked.returncode == 0:
            return  # a mutant that is still a valid lab: building it is another test's job
        line = one_line_exit_2(checked)
        name = "hi-mutant"
        assert one_line_exit_2(netlab("up", str(path), "--name", name, timeout=20)) == line
        assert not [ns for ns in linux.list_netns() if ns.startswith(f"nl-{name}.")]
        assert not Path(f"/run/netlab/{name}").exists()
    finally:
        path.unlink()


# --- kube-proxy render|trace -------------------------------------------------------------

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: svc1}
spec:
  clusterIP: 172.30.0.41
  ports: [{name: p80, port: 80, targetPort: 8080}]
"""
KP = ["--node-ip", "192.168.0.2", "--hostname", "node-a", "--cluster-cidr", "10.0.0.0/8"]


def test_kube_proxy_render_and_trace_refuse_bad_input(tmp_path):
    def manifest(name: str, text: str) -> str:
        (tmp_path / name).write_text(text)
        return str(tmp_path / name)

    cases = {
        str(tmp_path / "missing.yaml"): "missing.yaml: no such file",
        manifest("port0.yaml", SERVICE.replace("port: 80", "port: 0")):
            "port0.yaml:6: Service ns1/svc1: spec.ports[0].port: 0 is out of range; valid: 1-65535",
        manifest("target.yaml", SERVICE.replace("targetPort: 8080", "targetPort: 70000")):
            "target.yaml:6: Service ns1/svc1: spec.ports[0].targetPort: 70000 is not a port number",
        manifest("bomb.yaml", BOMB): "bomb.yaml:2: a0: anchor &a0: anchors and aliases are not supported",
        manifest("merge.yaml", SERVICE.replace("spec:\n", "spec:\n  <<: {type: NodePort}\n")):
            "merge.yaml:5: spec: merge keys (<<) are not supported",
        "/dev/zero": "/dev/zero: is a character device, not a regular file",
    }
    os.mkfifo(tmp_path / "fifo.yaml")
    cases[str(tmp_path / "fifo.yaml")] = "fifo.yaml: is a FIFO (named pipe), not a regular file"
    for path, expected in cases.items():
        one_line_exit_2(netlab("kube-proxy", "render", *KP, path, timeout=20), expected)
        one_line_exit_2(netlab("kube-proxy", "trace", *KP, path, "--src", "10.0.0.2",
                               "--dst", "172.30.0.41", "--dport", "80", timeout=20), expected)
    good = manifest("good.yaml", SERVICE)
    one_line_exit_2(netlab("kube-proxy", "render", "--config", "/dev/urandom", *KP, good, timeout=20),
                    "/dev/urandom: is a character device")


def test_check_junit_into_a_missing_directory_is_refused_up_front():
    one_line_exit_2(netlab("check", "hi-no-such-lab", "--junit", "/no/such/dir/x.xml", timeout=20),
                    "--junit", "directory /no/such/dir does not exist")
