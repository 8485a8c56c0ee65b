"""Fixtures for the container tier: Podman with the repository's settings, and cleanup of
every container, pod and network a test creates, whatever happens."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from tests.container.tier import image, podman_env


class Podman:
    """`podman` with deploy/podman/containers.conf; remembers what to remove afterwards."""

    def __init__(self) -> None:
        self.containers: list[str] = []
        self.kube_files: list[str] = []
        self.networks: list[tuple[str, tuple[str, ...]]] = []
        self.image = image()
        self.volumes_before = set(self.volumes())

    def __call__(self, *argv: str, check: bool = True, prefix: tuple[str, ...] = (),
                 timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([*prefix, "podman", *argv], env=podman_env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(argv)} exited {done.returncode}:\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def volumes(self) -> list[str]:
        return self("volume", "ls", "--quiet").stdout.split()

    def new_volumes(self) -> list[str]:
        """Volumes made since this fixture began: `podman kube play` turns a ConfigMap or
        an emptyDir into a named volume, and `podman kube down` keeps it (Podman 4.3)."""
        return [v for v in self.volumes() if v not in self.volumes_before]

    def name(self, what: str) -> str:
        return f"im-{what}-{uuid.uuid4().hex[:6]}"

    def cleanup(self) -> None:
        for f in self.kube_files:
            self("kube", "down", f, check=False)
        for c in self.containers:
            self("rm", "--force", "--time", "5", c, check=False)
        for net, prefix in self.networks:
            self("network", "rm", "--force", net, check=False, prefix=prefix)
        for v in self.new_volumes():
            self("volume", "rm", "--force", v, check=False)


@pytest.fixture
def podman():
    p = Podman()
    try:
        yield p
    finally:
        p.cleanup()


def host_netns_inodes() -> dict[int, str]:
    """The network namespaces the host has named (/run/netns), by inode."""
    out = {}
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        try:
            out[os.stat(f"/run/netns/{name}").st_ino] = name
        except OSError:
            pass   # another lab removed it meanwhile
    return out


def processes_in_pidns(pid: int) -> set[int]:
    """Host PIDs of every process in the PID namespace of process `pid` (a container)."""
    target = os.readlink(f"/proc/{pid}/ns/pid")
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == target:
                    out.add(int(entry))
            except OSError:
                pass
    return out


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if os.path.exists(f"/proc/{p}")}


def lab_netns_inodes(podman: Podman, container: str) -> dict[int, str]:
    """The lab namespaces a container holds in its own /run/netns, by inode."""
    done = podman("exec", container, "sh", "-c",
                  'for f in /run/netns/*; do [ -e "$f" ] && stat -L -c "%i %n" "$f"; done; true')
    out = {}
    for line in done.stdout.splitlines():
        ino, path = line.split(" ", 1)
        out[int(ino)] = os.path.basename(path)
    return out
