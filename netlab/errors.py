"""The one exception hierarchy of netlab; the CLI maps each class to an exit code.

User errors (bad scenario, bad manifest, missing capability, not root) exit 2 with a
single line, no traceback. Runtime failures while touching the kernel exit 1.
"""

from __future__ import annotations


class NetlabError(Exception):
    """Base class. `exit_code` is what the CLI exits with."""

    exit_code = 1


class UserError(NetlabError):
    """Something the user can fix: bad input, wrong invocation, missing privilege."""

    exit_code = 2


class InputError(UserError):
    """Bad content in a file the user gave: names the file, line and field when known.

    Renders as ``FILE:LINE: FIELD: MESSAGE`` (parts that are unknown are left out).
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class ScenarioError(InputError):
    """An invalid scenario file (schema or meaning)."""


class ManifestError(InputError):
    """An invalid Kubernetes manifest or KubeProxyConfiguration."""


class CapabilityError(UserError):
    """The running kernel or host lacks a feature the lab asked for."""


class NotRootError(UserError):
    """The command needs root (network namespaces, netlink)."""


class LabStateError(UserError):
    """A lab that does not exist, or already exists."""


class ApplyError(NetlabError):
    """The kernel or a process refused an operation while building a lab."""
