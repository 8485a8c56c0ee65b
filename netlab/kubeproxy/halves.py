"""Read one large manifest file in two processes: this one and one fork.

YAML parsing is the bulk of `netlab kube-proxy render` on a big cluster (libyaml's events
alone cost about 0.8 µs each, and 10,000 Services as kubectl prints them are 4 million
events), and it runs in one interpreter. `read_in_halves` cuts the text at a document
boundary near its middle, reads the second half in a forked child while this process reads
the first, and joins the two `Inputs`: the same objects, in the same order, with the same
lines, as one process reading the whole text.

Whatever could make the halves differ from the whole is left to the serial reader:

- the cut is a line that is exactly a document start (`---` at column 0 followed by a
  blank or the end of the line), which libyaml reads as a document start or an error
  wherever it appears; the child's half is prefixed with as many newlines as precede it,
  so its marks carry the file's own line numbers;
- texts with directives (`%YAML`, `%TAG`, which belong to the document after them) or
  with line breaks other than LF (CR, NEL, LS, PS: YAML counts them as lines) are read
  serially;
- if either half raises anything (bad YAML, a bad field, a half that is not valid on its
  own), the child is reaped and the whole text is read serially, so the error, its line
  and its field are exactly the serial reader's.

The child is reaped in every case (SIGKILL first if this process stops early) and
returns its result as a pickle over a pipe; it runs only what the parent would have run.
"""

from __future__ import annotations

import os
import pickle
import re
import signal
from typing import Callable, TypeVar

T = TypeVar("T")

# Below this the fork and the pickle cost more than the second core gains.
MIN_BYTES = 4 << 20
_DOC_START = re.compile(r"\n---(?=[ \t\n]|\Z)")
_EXOTIC_BREAKS = re.compile("[\r\x85\u2028\u2029]")
_DIRECTIVE = re.compile(r"(?:\A|\n)%")


def cut(text: str) -> int | None:
    """The offset of a document start near the middle of `text` where both halves can be
    read on their own, or None."""
    if _DIRECTIVE.search(text) or _EXOTIC_BREAKS.search(text):
        return None
    match = _DOC_START.search(text, len(text) // 2)
    if match is None:
        return None
    return match.start() + 1


def read_in_halves(text: str, read: Callable[[str], T], join: Callable[[T, T], T],
                   min_bytes: int = MIN_BYTES) -> T:
    """`read(text)`, with the second half read by a forked child when the text is large
    and cuts cleanly; `join(first, second)` combines the halves' results."""
    at = cut(text) if len(text) >= min_bytes else None
    if at is None:
        return read(text)
    second = "\n" * text.count("\n", 0, at) + text[at:]
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read the second half, send the result, exit at once
        os.close(rfd)
        status = 1
        try:
            payload = pickle.dumps(read(second), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as out:
                out.write(payload)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no flush of the parent's buffers
    os.close(wfd)
    reaped = False
    try:
        try:
            first = read(text[:at])
        except Exception:  # the serial reader below names it exactly
            first = None
        with os.fdopen(rfd, "rb") as pipe:
            payload = pipe.read() if first is not None else b""
        if first is not None:
            _, status = os.waitpid(pid, 0)
            reaped = True
            if os.waitstatus_to_exitcode(status) == 0:
                return join(first, pickle.loads(payload))
    finally:
        if not reaped:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return read(text)
