"""Reading a file the user named: a regular file under a size cap, read once, UTF-8.

Scenario files, Kubernetes manifests and KubeProxyConfiguration files all come through
`read_text`. The file is opened non-blocking and checked with `fstat` on the open
descriptor before a byte is read, so a FIFO, a terminal or a device such as /dev/zero or
/dev/urandom is refused at once instead of blocking or filling memory; what is checked is
what is read. Every failure is an `InputError`
naming the file, in words rather than an errno.
"""

from __future__ import annotations

import errno
import os
import stat

from netlab.errors import InputError

MiB = 1 << 20
# A scenario is a few hundred lines; 8 MiB is far beyond any lab netlab can build.
SCENARIO_LIMIT = 8 * MiB
# `kubectl get svc,endpointslices -A -o yaml` of a 100,000-Service cluster is ~350 MiB.
MANIFEST_LIMIT = 512 * MiB
# A KubeProxyConfiguration is a page.
CONFIG_LIMIT = 1 * MiB

_KINDS = [(stat.S_ISDIR, "is a directory, not a file"),
          (stat.S_ISFIFO, "is a FIFO (named pipe), not a regular file"),
          (stat.S_ISCHR, "is a character device, not a regular file"),
          (stat.S_ISBLK, "is a block device, not a regular file"),
          (stat.S_ISSOCK, "is a socket, not a regular file")]

_ERRNO = {errno.ENOENT: "no such file",
          errno.EISDIR: "is a directory, not a file",
          errno.ELOOP: "too many levels of symbolic links (a symlink loop?)",
          errno.ENOTDIR: "a component of the path is not a directory",
          errno.ENAMETOOLONG: "file name too long",
          errno.EACCES: "permission denied",
          errno.EPERM: "permission denied",
          errno.ENXIO: "is a socket or a device without a reader, not a regular file"}


def read_text(path: str | os.PathLike, *, limit: int, error: type[InputError] = InputError,
              what: str = "input") -> str:
    """The whole text of the regular file `path`, at most `limit` bytes of UTF-8."""
    name = os.fspath(path)
    try:
        # Look before opening: opening a device can itself do something (a tape rewinds,
        # a serial line raises DTR). fstat below then checks what was really opened.
        _check_kind(os.stat(name), name, error)
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise error(_ERRNO.get(exc.errno, f"cannot open: {exc.strerror}"), file=name) from None
    except ValueError:  # an embedded NUL byte
        raise error("the file name contains a NUL byte", file=name) from None
    try:
        info = os.fstat(fd)
        _check_kind(info, name, error)
        if info.st_size > limit:
            raise error(_too_big(info.st_size, limit, what), file=name)
        data = _read_at_most(fd, limit + 1)
    except OSError as exc:
        raise error(_ERRNO.get(exc.errno, f"cannot read: {exc.strerror}"), file=name) from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew, or it is a /proc file that reports size 0
        raise error(_too_big(len(data), limit, what), file=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
                    file=name, line=line) from None


def _check_kind(info: os.stat_result, name: str, error: type[InputError]) -> None:
    for test, message in _KINDS:
        if test(info.st_mode):
            raise error(message, file=name)


def _read_at_most(fd: int, size: int) -> bytes:
    chunks, total = [], 0
    while total < size:
        chunk = os.read(fd, min(size - total, 16 * MiB))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _too_big(size: int, limit: int, what: str) -> str:
    shown = f"{size / MiB:.1f} MiB" if size >= MiB else f"{size} bytes"
    return f"is {shown}; {what} files are limited to {_size(limit)}"


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} bytes"
