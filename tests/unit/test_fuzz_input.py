"""Mutated scenarios never crash netlab: each one loads and resolves, or is refused with
one located line (a UserError). No other exception, no hang.

Hypothesis mutates the built-in scenarios' YAML text: characters, lines, values (swapped
between keys, or replaced by hostile ones), anchors, aliases, tags, merge keys and deep
nesting inserted. The example count is bounded and the run derandomized, so CI sees the
same few hundred mutants every time in a few seconds.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.errors import NetlabError, UserError
from netlab.lab.resolve import resolve
from netlab.scenario import loader

SEEDS = {name: loader.builtin_path(name).read_text()
         for name in loader.builtin_names() if name != "scale-200"}

HOSTILE_VALUES = [
    "-1", "0", "65536", "70000", "99999999999999999999", '""', "null", "~", "true", "yes",
    "[]", "{}", "[[[[]]]]", "255.255.255.0/24", "0.0.0.0/0", "10.0.0.0/33", "10.0.0.1/8",
    "1.2.3", "!!int abc", "!!float x", "!!bool maybe", "!foo x", "!!binary aGk=", "*a",
    "&a x", "1e400", ".nan", "-.inf", "0x10", "1:30", "2001-01-01", "'" + "a" * 300 + "'",
    "ünïcødé", "'\\x00'", '"\\u2028"', "|\n  block", "? x", "- - -", "a: b: c", "%TAG",
    "0x_", "0b_", "1.5", "TCP", "UDP", "SCTP", "ipvs", "tunnel", "eni", "nodes", "Local", "[node-1, node-1]",
]
SNIPPETS = [
    "x: &a [*a]\n", "<<: {name: x}\n", "a: !!python/object:os.system x\n",
    "deep: " + "[" * 3000 + "]" * 3000 + "\n", "k: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
    "a0: &a0 [x, x]\na1: &a1 [*a0, *a0]\n", "? [a]\n: b\n", "name: dup\n", "---\nname: two\n",
    "\t- tab\n", "80: port\n", "null: x\n",
]
ALPHABET = list(":-[]{}&*!<>#'\"|%@`,? \n\t\x00") + list("0123456789azAZ.")

_SCALAR = re.compile(r"(?<=: )[^\s,{}\[\]#][^,{}\[\]\n#]*")


def _mutate_chars(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["insert", "replace", "delete"]))
        c = data.draw(st.sampled_from(ALPHABET))
        text = (text[:i] + c + text[i:] if op == "insert" else
                text[:i] + c + text[i + 1:] if op == "replace" else text[:i] + text[i + 1:])
    return text


def _mutate_lines(text: str, data: st.DataObject) -> str:
    lines = text.splitlines(keepends=True) or ["\n"]
    i = data.draw(st.integers(0, len(lines) - 1))
    j = data.draw(st.integers(0, len(lines) - 1))
    op = data.draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "snippet"]))
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(j, lines[i])
    elif op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    elif op == "indent":
        lines[i] = "  " + lines[i]
    elif op == "dedent":
        lines[i] = lines[i][2:] if lines[i].startswith("  ") else lines[i]
    else:
        indent = re.match(r"\s*", lines[i]).group()
        snippet = data.draw(st.sampled_from(SNIPPETS))
        lines.insert(i, "".join(indent + s for s in snippet.splitlines(keepends=True)))
    return "".join(lines)


def _mutate_values(text: str, data: st.DataObject) -> str:
    spans = [m.span() for m in _SCALAR.finditer(text)]
    if not spans:
        return text
    for _ in range(data.draw(st.integers(1, 3))):
        spans = [m.span() for m in _SCALAR.finditer(text)]
        a, b = spans[data.draw(st.integers(0, len(spans) - 1))]
        if data.draw(st.booleans()):
            new = data.draw(st.sampled_from(HOSTILE_VALUES))
        else:  # a value from elsewhere in the file
            c, d = spans[data.draw(st.integers(0, len(spans) - 1))]
            new = text[c:d]
        text = text[:a] + new + text[b:]
    return text


MUTATORS = [_mutate_chars, _mutate_lines, _mutate_values]


def check_one(text: str, features: frozenset[str] | None = None) -> None:
    """The property: a scenario text is accepted, or refused with one located line.
    `features` None judges the scenario alone (`validate`); a set, on such a host (`up`)."""
    try:
        scenario, source = loader.load_text(text, "fuzz.yaml")
        resolve(scenario, source, features)
    except UserError as e:
        message = str(e)
        assert "\n" not in message and message.startswith("fuzz.yaml"), message
    except NetlabError as e:  # pragma: no cover - a runtime failure has no place here
        raise AssertionError(f"not a user error: {type(e).__name__}: {e}") from e


@settings(max_examples=300, deadline=5000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.sampled_from(sorted(SEEDS)), host=st.booleans(), data=st.data())
def test_mutated_scenarios_load_or_fail_in_one_line(seed, host, data):
    text = SEEDS[seed]
    for _ in range(data.draw(st.integers(1, 3))):
        text = data.draw(st.sampled_from(MUTATORS))(text, data)
    check_one(text, frozenset() if host else None)


def test_the_seeds_themselves_are_valid():
    for text in SEEDS.values():
        scenario, source = loader.load_text(text, "fuzz.yaml")
        resolve(scenario, source, None)
