"""The few Linux system calls netlab needs that Python 3.11 lacks: setns, unshare, mount.

`setns()` changes the network namespace of the calling *thread* only, and a socket keeps
the namespace it was created in. So one thread can step into a lab namespace, open a
socket or a netlink channel there, step back, and go on using it from the host's side.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_SHARED = 1 << 20
MNT_DETACH = 2
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, arg: str = "") -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", arg or None)


def netns_path(name: str) -> str:
    return os.path.join(NETNS_RUN_DIR, name)


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def current_netns_fd() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def open_netns(name: str) -> int:
    return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def entered(name_or_fd: str | int) -> Iterator[None]:
    """Run the body with this thread in another network namespace, then come back."""
    home = current_netns_fd()
    fd = open_netns(name_or_fd) if isinstance(name_or_fd, str) else name_or_fd
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)
        if isinstance(name_or_fd, str):
            os.close(fd)


def _share_run_dir() -> None:
    # What `ip netns add` does: make /run/netns a shared mount point so a namespace
    # bind-mounted there is seen from every mount namespace.
    os.makedirs(NETNS_RUN_DIR, exist_ok=True)
    run = NETNS_RUN_DIR.encode()
    if _libc.mount(b"none", run, None, MS_SHARED | MS_REC, None) == 0:
        return
    _check(_libc.mount(run, run, b"none", MS_BIND | MS_REC, None), "mount --bind", NETNS_RUN_DIR)
    _check(_libc.mount(b"none", run, None, MS_SHARED | MS_REC, None), "mount --make-rshared", NETNS_RUN_DIR)


_run_dir_ready = False


def create_netns(name: str, sysctls: dict[str, str] | None = None) -> None:
    """Create a named network namespace (like `ip netns add`) without leaving this thread in
    it; `sysctls` are written inside it while the thread is there."""
    global _run_dir_ready
    if not _run_dir_ready:
        _share_run_dir()
        _run_dir_ready = True
    path = netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    home = current_netns_fd()
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", name)
        try:
            _check(_libc.mount(b"/proc/thread-self/ns/net", path.encode(), b"none", MS_BIND, None),
                   "mount", name)
            for key, value in (sysctls or {}).items():
                write_sysctl(key, value)
        finally:
            setns(home)
    except OSError:
        os.unlink(path)
        raise
    finally:
        os.close(home)


def write_sysctl(key: str, value: str) -> None:
    """Write a sysctl of the namespace this thread is in (/proc/sys/net follows the thread)."""
    with open(os.path.join("/proc/sys", *key.split(".")), "w") as f:
        f.write(value)


def remove_netns(name: str) -> bool:
    """Remove a named namespace (like `ip netns del`); False if it did not exist."""
    path = netns_path(name)
    if not os.path.exists(path):
        return False
    _libc.umount2(path.encode(), MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_RUN_DIR))
    except FileNotFoundError:
        return []


NetnsId = tuple[int, int]


def netns_id(name: str) -> NetnsId | None:
    """The identity (device, inode) of a named namespace, as `ip netns pids` compares it."""
    try:
        st = os.stat(netns_path(name))
    except OSError:
        return None
    return st.st_dev, st.st_ino


def process_netns_id(pid: int) -> NetnsId | None:
    """The identity of the network namespace a process is in (None once it has exited:
    a zombie has no namespaces left)."""
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return st.st_dev, st.st_ino
