"""netlab.inputfile: only regular files, under a cap, read once as UTF-8; every other path
is refused at once, in words."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from netlab.errors import InputError, ScenarioError
from netlab.inputfile import MiB, read_text


def refused(path, limit=MiB) -> InputError:
    with pytest.raises(InputError) as e:
        read_text(path, limit=limit)
    assert e.value.file == str(path) and "\n" not in str(e.value)
    return e.value


def test_a_regular_file_is_read_as_utf8(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes("\ufeffname: é\n".encode())  # a BOM is dropped
    assert read_text(path, limit=MiB) == "name: é\n"


def test_the_error_class_and_the_words_are_the_callers(tmp_path):
    with pytest.raises(ScenarioError, match="is 1.0 MiB; scenario files are limited to 1 MiB"):
        path = tmp_path / "big.yaml"
        path.write_bytes(b"#" * (MiB + 1))
        read_text(path, limit=MiB, error=ScenarioError, what="scenario")


def test_size_cap(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a" * 2000)
    assert len(read_text(path, limit=2000)) == 2000
    assert refused(path, limit=1999).message == "is 2000 bytes; input files are limited to 1999 bytes"


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = tmp_path / "fifo.yaml"
    os.mkfifo(path)
    result: list = []
    reader = threading.Thread(target=lambda: result.append(refused(path)), daemon=True)
    reader.start()
    reader.join(5)
    assert result and result[0].message == "is a FIFO (named pipe), not a regular file"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_devices_are_refused(device):
    assert refused(device).message == "is a character device, not a regular file"


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert refused(path).message == "is a socket, not a regular file"


def test_paths_that_lead_nowhere(tmp_path):
    (tmp_path / "loop-a").symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(tmp_path / "loop-a")
    (tmp_path / "file").write_text("x")
    cases = {
        tmp_path / "missing.yaml": "no such file",
        tmp_path: "is a directory, not a file",
        tmp_path / "loop-a": "too many levels of symbolic links (a symlink loop?)",
        tmp_path / "file" / "x.yaml": "a component of the path is not a directory",
        tmp_path / ("a" * 300 + ".yaml"): "file name too long",
    }
    for path, message in cases.items():
        assert refused(path).message == message


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\ndescription: caf\xe9\n")
    e = refused(path)
    assert e.line == 2 and e.message == "not UTF-8 text (byte 0xe9); save the file as UTF-8"
