"""Reading a manifest file in two processes gives exactly what one process reads."""

import os

import pytest

from netlab.errors import ManifestError
from netlab.kubeproxy.halves import cut, read_in_halves
from netlab.kubeproxy.manifests import Inputs, load_manifest_text


def _service(i: int) -> str:
    return (f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: ns\n"
            f"spec:\n  clusterIP: 172.16.0.{i + 1}\n  ports:\n  - port: 80\n")


def _slice(i: int) -> str:
    return ("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
            f"  name: svc-{i}-x\n  namespace: ns\n  labels:\n"
            f"    kubernetes.io/service-name: svc-{i}\naddressType: IPv4\n"
            f"endpoints:\n- addresses: [10.0.0.{i + 1}]\n  nodeName: node-{i % 3}\n"
            "ports:\n- port: 8080\n  name: ''\n")


TEXT = "".join(f"---\n{_service(i)}---\n{_slice(i)}" for i in range(20))


def _read(text: str) -> Inputs:
    return read_in_halves(text, lambda t: load_manifest_text(t, "m.yaml"), _joined, min_bytes=0)


def _joined(first: Inputs, second: Inputs) -> Inputs:
    first.extend(second)
    return first


def _error(read, text: str) -> str:
    with pytest.raises(ManifestError) as exc:
        read(text)
    return str(exc.value)


def _no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_cut_is_a_document_start_near_the_middle():
    at = cut(TEXT)
    assert at is not None and at >= len(TEXT) // 2 - 1
    assert TEXT[at:at + 4] == "---\n" and TEXT[at - 1] == "\n"


@pytest.mark.parametrize("text", [
    "%YAML 1.1\n" + TEXT,           # a directive belongs to the document after it
    TEXT.replace("\n", "\r\n"),     # YAML counts CR as a line break too
    TEXT.replace("ns\n", "ns\x85"),  # and NEL
    "a: 1\n" * 100,                 # no document start at all
    TEXT.replace("\n---\n", "\n---x\n"),  # not a document start
])
def test_texts_that_do_not_cut_cleanly_are_read_serially(text):
    assert cut(text) is None


def test_two_halves_read_the_same_objects_lines_and_order():
    serial = load_manifest_text(TEXT, "m.yaml")
    both = _read(TEXT)
    assert both == serial
    assert [s.source.line for s in both.services] == [s.source.line for s in serial.services]
    assert [s.name for s in both.services] == [f"svc-{i}" for i in range(20)]


@pytest.mark.parametrize("where", [0.1, 0.9])  # the first half, the second half
def test_an_error_in_either_half_is_the_serial_readers_error(where):
    lines = TEXT.splitlines(keepends=True)
    i = next(n for n in range(int(len(lines) * where), len(lines))
             if lines[n].startswith("  - port: 80"))
    bad = "".join(lines[:i] + ["  - port: 70000\n"] + lines[i + 1:])
    serial = _error(lambda t: load_manifest_text(t, "m.yaml"), bad)
    assert _error(_read, bad) == serial
    assert f"m.yaml:{i + 1}:" in serial and "spec.ports[0].port" in serial
    assert _no_children_left()


def test_yaml_that_is_valid_only_across_the_cut_is_read_serially():
    # A flow sequence left open over the cut: the halves fail on their own; the answer
    # must be the serial reader's, line and all.
    at = cut(TEXT)
    bad = TEXT[:at - 1] + "\nx: [1,\n" + TEXT[at:]
    assert _error(_read, bad) == _error(lambda t: load_manifest_text(t, "m.yaml"), bad)
    assert _no_children_left()
