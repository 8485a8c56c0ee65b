"""conntrack's view of one flow, from `conntrack -L` lines (pure): the original and reply
tuples, and so the NAT the namespace applied (DNAT: the reply comes from elsewhere than the
original destination; SNAT: it goes back to elsewhere than the original source)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    proto: str
    state: str | None
    orig: dict[str, str]
    reply: dict[str, str]

    def nat(self) -> list[dict]:
        out = []
        o, r = self.orig, self.reply
        if (r.get("src"), r.get("sport")) != (o.get("dst"), o.get("dport")):
            out.append({"type": "dnat", "from": _addr(o, "dst", "dport"), "to": _addr(r, "src", "sport")})
        if (r.get("dst"), r.get("dport")) != (o.get("src"), o.get("sport")):
            out.append({"type": "snat", "from": _addr(o, "src", "sport"), "to": _addr(r, "dst", "dport")})
        return out

    def as_json(self) -> dict:
        return {"proto": self.proto, "state": self.state, "original": _addr(self.orig, "src", "sport") + " → "
                + _addr(self.orig, "dst", "dport"), "reply": _addr(self.reply, "src", "sport") + " → "
                + _addr(self.reply, "dst", "dport"), "nat": self.nat()}


def _addr(t: dict, ip: str, port: str) -> str:
    return f"{t.get(ip)}:{t[port]}" if t.get(port) else str(t.get(ip))


def parse(text: str) -> list[Entry]:
    out = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or not words[1].isdigit():
            continue
        proto = words[0]
        state = next((w for w in words[3:5] if w.isupper() and "=" not in w), None)
        tuples: list[dict[str, str]] = [{}, {}]
        side = -1
        for w in words:
            key, eq, value = w.partition("=")
            if not eq:
                continue
            if key == "src":
                side += 1
            if 0 <= side <= 1:
                tuples[side].setdefault(key, value)
        if side >= 1:
            out.append(Entry(proto, state, tuples[0], tuples[1]))
    return out
