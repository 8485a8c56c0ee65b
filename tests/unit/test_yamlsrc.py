"""netlab.yamlsrc: what it refuses (each at its line), the lines it keeps, and the two
parsers (libyaml and pure Python) agreeing on both."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netlab import yamlsrc
from netlab.errors import InputError
from netlab.scenario import loader

REPO = Path(__file__).resolve().parents[2]
PARSERS = sorted(yamlsrc.PARSERS)


def test_both_parsers_are_here():
    # The venv's PyYAML wheel carries libyaml; without it the pure parser is the default.
    assert PARSERS == ["libyaml", "python"]
    assert yamlsrc.DEFAULT_PARSER == "libyaml"


def refused(text: str, parser: str) -> InputError:
    with pytest.raises(InputError) as e:
        list(yamlsrc.documents(text, "f.yaml", parser=parser))
    assert "\n" not in str(e.value)
    return e.value


BOMB = "name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))

REFUSED = {
    # case: (text, line, field, words in the message)
    "duplicate key": ("a: 1\nb: {c: 1}\na: 2\n", 3, "a", "duplicate key 'a' (first on line 1)"),
    "nested duplicate": ("a:\n  b: 1\n  b: 2\n", 3, "a.b", "duplicate key 'b' (first on line 2)"),
    "alias bomb": (BOMB, 2, "a0", "anchors and aliases are not supported"),
    "self-reference": ("x: &a [*a]\n", 1, "x", "anchor &a: anchors and aliases are not supported"),
    "alias": ("a: [1, *x]\n", 1, "a[1]", "alias *x: anchors and aliases are not supported"),
    "anchor on a scalar": ("a:\n  - &s v\n", 2, "a[0]", "anchor &s"),
    "merge key": ("base: {x: 1}\nc:\n  <<: {x: 2}\n", 3, "c", "merge keys (<<) are not supported"),
    "unknown tag": ("name: !foo x\n", 1, "name", "tag !foo is not supported"),
    "python tag": ("a: !!python/object/apply:os.system [ls]\n", 1, "a", "tag !!python/object/apply:os.system"),
    "binary tag": ("a: !!binary aGk=\n", 1, "a", "tag !!binary is not supported"),
    "set tag": ("a: !!set {x}\n", 1, "a", "tag !!set is not supported"),
    "bad int": ("vpc:\n  route_quota: !!int abc\n", 2, "vpc.route_quota", "'abc' is not a valid !!int"),
    "bad float": ("a: [!!float x]\n", 1, "a[0]", "'x' is not a valid !!float"),
    "bad bool": ("a: !!bool maybe\n", 1, "a", "'maybe' is not a valid !!bool"),
    "bad null": ("a: !!null x\n", 1, "a", "'x' is not a valid !!null"),
    "integer key": ("ports:\n  80: http\n", 2, "ports", "key '80' is not a string (YAML reads it as an integer); quote it"),
    "null key": ("a:\n  ~: x\n", 2, "a", "key '~' is not a string (YAML reads it as null)"),
    "boolean key": ("a:\n  yes: x\n", 2, "a", "YAML reads it as a boolean"),
    "list key": ("? [a, b]\n: c\n", 1, None, "keys must be strings, not a mapping or a list"),
    "NUL character": ("a: 1\nb: \x00\n", 2, None, "character U+0000 is not allowed"),
    "syntax": ("a: 1\nb: [1, 2\n", 3, None, "not valid YAML"),
    "tab": ("a:\n\tb: 1\n", 2, None, "the line holds a tab: YAML indents with spaces only"),
    "indentation": ("a:\n  b: 1\n   c: 2\n", 3, None, "a key's indentation differs from its siblings'"),
}


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_with_line_field_and_reason(case, parser):
    text, line, field, words = REFUSED[case]
    e = refused(text, parser)
    assert (e.file, e.line, e.field) == ("f.yaml", line, field), str(e)
    assert words in e.message


@pytest.mark.parametrize("parser", PARSERS)
@pytest.mark.parametrize("depth", [yamlsrc.MAX_DEPTH + 1, 3000, 100_000])
def test_deep_nesting_is_refused_without_recursion(parser, depth):
    for text in ("x: " + "[" * depth + "]" * depth + "\n",
                 "x: " + "{a: " * depth + "1" + "}" * depth + "\n",
                 "".join("  " * i + f"k{i}:\n" for i in range(min(depth, 300))) + "  " * 300 + "v\n"):
        e = refused(text, parser)
        assert e.line and ("nested deeper than 100 levels" in e.message
                           or "exceeded maximum nesting depth" in e.message), str(e)


@pytest.mark.parametrize("parser", PARSERS)
def test_as_deep_as_allowed_is_fine(parser):
    depth = yamlsrc.MAX_DEPTH
    data = yamlsrc.document("[" * depth + "]" * depth, "f.yaml", parser=parser)
    for _ in range(depth - 1):
        data = data[0]
    assert data == []


@pytest.mark.parametrize("parser", PARSERS)
def test_scalars_resolve_as_yaml_1_1_except_timestamps(parser):
    items = ["x", "'y'", '"z"', "yes", "No", "on", "1.5", "~", "null", "''", "0x1F", "017",
             "1_000", "-1", "+2", "1:30", ".inf", "2026-01-01", "2026-11-02T10:00:00Z",
             "10.0.0.1", "=", "'<<'", "! 12", "!!str 12", "!!int '7'", "|\n  block", "0x_", "-0b_"]
    text = "".join(f"- {item}\n" for item in items)
    got = yamlsrc.document(text, "f.yaml", parser=parser)
    assert got == ["x", "y", "z", True, False, True, 1.5, None, None, "", 31, 0o17, 1000, -1, 2,
                   90, float("inf"), "2026-01-01", "2026-11-02T10:00:00Z", "10.0.0.1", "=", "<<",
                   "12", "12", 7, "block\n", "0x_", "-0b_"]
    assert yamlsrc.document("{'<<': quoted is a key}", "f.yaml", parser=parser) == {"<<": "quoted is a key"}


@pytest.mark.parametrize("parser", PARSERS)
def test_lines_of_keys_and_items(parser):
    text = "a: 1\nb:\n  c: [x,\n    y]\n  d:\n    - e: 1\n      f: 2\n    -\n      g\n"
    data = yamlsrc.document(text, "f.yaml", parser=parser)
    assert isinstance(data, yamlsrc.MarkedDict) and data.line == 1
    assert data.key_lines == {"a": 1, "b": 2}
    assert data["b"].key_lines == {"c": 3, "d": 5}
    assert data["b"]["c"].item_lines == [3, 4]
    assert data["b"]["d"].item_lines == [6, 9]
    assert yamlsrc.line_index(data) == {
        (): 1, ("a",): 1, ("b",): 2, ("b", "c"): 3, ("b", "c", 0): 3, ("b", "c", 1): 4,
        ("b", "d"): 5, ("b", "d", 0): 6, ("b", "d", 0, "e"): 6, ("b", "d", 0, "f"): 7,
        ("b", "d", 1): 9}


@pytest.mark.parametrize("parser", PARSERS)
def test_documents_one_by_one(parser):
    text = "a: 1\n---\n---\n- b\n---\nc\n"
    assert list(yamlsrc.documents(text, "f.yaml", parser=parser)) == [{"a": 1}, None, ["b"], "c"]
    assert list(yamlsrc.documents("", "f.yaml", parser=parser)) == []
    assert yamlsrc.document("", "f.yaml", parser=parser) is None
    e = refused_single("a: 1\n---\nb: 2\n", parser)
    assert e.line == 2 and "a second YAML document starts here" in e.message


def refused_single(text, parser):
    with pytest.raises(InputError) as e:
        yamlsrc.document(text, "f.yaml", parser=parser)
    return e.value


def _inputs() -> list[Path]:
    scenarios = [loader.builtin_path(name) for name in loader.builtin_names()]
    return scenarios + sorted((REPO / "tests" / "conformance" / "kube-proxy").glob("*/*.yaml"))


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_parsers_read_every_shipped_file_as_pyyaml_does_with_the_same_lines(path):
    text = path.read_text()
    c = list(yamlsrc.documents(text, str(path), parser="libyaml"))
    py = list(yamlsrc.documents(text, str(path), parser="python"))
    assert c == py == [doc for doc in yaml.safe_load_all(text)]
    assert [yamlsrc.line_index(d) for d in c] == [yamlsrc.line_index(d) for d in py]
