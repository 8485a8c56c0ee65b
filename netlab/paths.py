"""Where a lab keeps its files: `/run/netlab/<lab>/` (NETLAB_RUN_DIR overrides the root).

Pure: planning needs these paths (a node's OVS sockets, a process's configuration) before
anything exists; `netlab.apply.state` creates and removes the directories.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath

# Absolute: the paths end up in daemons' command lines, which run from `/`.
RUN_ROOT = PurePosixPath(os.path.abspath(os.environ.get("NETLAB_RUN_DIR", "/run/netlab")))


def lab_dir(lab: str) -> PurePosixPath:
    return RUN_ROOT / lab


def object_dir(lab: str, *parts: str) -> PurePosixPath:
    """A directory of one object's files, e.g. a node's OVS: `<lab>/<cluster>/<node>/`."""
    return lab_dir(lab).joinpath(*parts)
