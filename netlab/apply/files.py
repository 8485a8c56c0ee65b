"""Files a lab's processes read (their configurations), written under the lab's run directory.

A path must lie inside the lab's own directory: a plan never writes anywhere else.
"""

from __future__ import annotations

import os
from pathlib import Path

from netlab.apply.context import Context
from netlab.errors import ApplyError
from netlab.plan.ops import WriteFile


def write_file(ctx: Context, op: WriteFile) -> None:
    path = Path(op.path)
    root = ctx.state.path.resolve()
    if path.is_absolute() is False or root not in path.resolve().parents:
        raise ApplyError(f"{op.path} is outside the lab's directory {root}")
    write_text(path, op.content, op.mode)


def write_text(path: Path, content: str, mode: int = 0o644) -> None:
    """Replace a file whole (written aside, then renamed: a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


HANDLERS = {WriteFile: write_file}
