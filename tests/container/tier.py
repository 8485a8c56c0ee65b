"""Pytest plugin: the container tier — tests marked ``@pytest.mark.container``.

They need Podman, root and the image (`make image`), and take minutes, so `make test`
leaves them out and says so: its summary prints ``container tier: N test(s) NOT RUN``
with the reason, never a silent pass. `make test-image` builds the image and runs them
(``--container-tier=on``).

``--container-tier`` (default: $NETLAB_CONTAINER_TIER, else ``off``):
  off   marked tests are deselected and reported as NOT RUN
  on    they run; where Podman or the image is missing they fail, naming what is missing
  auto  they run where Podman works and the image exists, else NOT RUN with the reason
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

MARKER = "container"
MODES = ("off", "on", "auto")
CONF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy", "podman",
                    "containers.conf")


def image() -> str:
    return os.environ.get("NETLAB_IMAGE", "localhost/netlab:latest")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", os.path.abspath(CONF))}


def unavailable() -> str | None:
    """Why the container tier cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (privileged containers)"
    if not shutil.which("podman"):
        return "podman is not installed (`sudo make image-setup`)"
    done = subprocess.run(["podman", "image", "exists", image()], env=podman_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        return f"image {image()} is not built (`sudo make image`): {done.stderr.strip()}"
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    env = os.environ.get("NETLAB_CONTAINER_TIER", "off")
    parser.getgroup("netlab-container-tier", "netlab container tier").addoption(
        "--container-tier", choices=MODES, default=env if env in MODES else "off",
        help="tests marked `container` (Podman, the image, kube play): off (not run, "
             "reported; default), on (run; fail where Podman is missing), auto (run where "
             "Podman and the image are there)")


class ContainerTier:
    def __init__(self, config: pytest.Config) -> None:
        self.mode = config.getoption("container_tier")
        self.not_run: list[str] = []
        self.reason: str | None = None
        self.missing: str | None = None

    def pytest_collection_modifyitems(self, session, config, items) -> None:
        marked = [i for i in items if i.get_closest_marker(MARKER)]
        if not marked:
            return
        if self.mode == "off":
            self.reason = "--container-tier=off; `sudo make test-image` runs them"
        elif (why := unavailable()) is not None:
            if self.mode == "auto":
                self.reason = f"--container-tier=auto: {why}"
            else:
                self.missing = why
        if self.reason:
            self.not_run = [i.nodeid for i in marked]
            config.hook.pytest_deselected(items=marked)
            items[:] = [i for i in items if not i.get_closest_marker(MARKER)]

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if self.missing and item.get_closest_marker(MARKER):
            pytest.fail(f"container tier: {self.missing}", pytrace=False)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.not_run:
            terminalreporter.write_line(
                f"container tier: {len(self.not_run)} test(s) NOT RUN ({self.reason})",
                yellow=True, bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: needs Podman, root and the netlab image "
                                       "(tests/container/tier.py; `make test-image`)")
    if not config.pluginmanager.has_plugin("netlab-container-tier-impl"):
        config.pluginmanager.register(ContainerTier(config), "netlab-container-tier-impl")
