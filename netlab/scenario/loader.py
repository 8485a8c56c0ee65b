"""Load a scenario YAML file into a `Scenario`, keeping the line of every field.

The file is read by `netlab.inputfile` (a regular file under 8 MiB) and parsed by
`netlab.yamlsrc` (plain YAML: no aliases, merge keys, duplicate keys or unknown tags).
Every error names the file, the line and the field, and says what would be valid; the
`Source` returned with the scenario lets later stages (resolve) do the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from netlab import yamlsrc
from netlab.errors import ScenarioError
from netlab.inputfile import SCENARIO_LIMIT, read_text
from netlab.scenario.schema import Scenario, error_path, model_of_field
from netlab.scenario.types import NODE_PORT_MAX, NODE_PORT_MIN, Path_
from netlab.yamlsrc import format_path

BUILTIN = "default"


@dataclass
class Source:
    """Where each field of a loaded document came from."""

    file: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        # The field itself, else the nearest enclosing object that has a line.
        for i in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:i]))
            if line:
                return line
        return None

    def error(self, path: Path_, message: str) -> ScenarioError:
        return ScenarioError(message, file=self.file, line=self.line(path), field=format_path(path))


def parse_yaml(text: str, file: str) -> tuple[Any, Source]:
    """YAML text → plain Python data plus the line of every path in it."""
    data = yamlsrc.document(text, file, error=ScenarioError)
    if data is None:
        raise ScenarioError("the file is empty; a scenario needs at least 'name'", file=file)
    return data, Source(file, yamlsrc.line_index(data))


# Fields whose values carry a unit, and what a valid one looks like.
UNIT_HINTS = {"delay": "a duration such as 20ms", "jitter": "a duration such as 5ms",
              "loss": "a percentage such as 1%", "rate": "a rate such as 100mbit"}


def _describe(err: dict, data: Any, root: Any = None) -> str:
    """One line for a pydantic error: what is wrong and what would be valid. Every error
    type has a phrasing; the last resort is pydantic's own message, still one line."""
    kind = err["type"]
    loc = err["loc"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden" and len(loc) == 3 and loc[0] == "clusters" and model_of_field(str(loc[-1])):
        cluster = _at(data, loc[:2])
        return (f"'{loc[-1]}' applies to model: {' or '.join(model_of_field(str(loc[-1])))} only, and "
                f"cluster '{cluster.get('name')}' is model: {cluster.get('model')}; remove it")
    if kind == "extra_forbidden":
        return f"unknown key '{loc[-1]}'; valid keys: {_valid_keys(loc[:-1], data, root or Scenario)}"
    if loc and loc[-1] == "targetPort" and kind != "missing":
        return f"{_input(err)} is not a port number (1-65535) or a port name (such as http)"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than") and loc:
        if loc[-1] in ("nodePort", "healthCheckNodePort"):
            return f"{_input(err)} is outside the node port range {NODE_PORT_MIN}-{NODE_PORT_MAX}"
        if loc[-1] == "port":
            return f"{_input(err)} is not a port number (1-65535)"
        bound = next(iter(ctx.values()), "?")
        words = {"greater_than_equal": "at least", "less_than_equal": "at most",
                 "greater_than": "more than", "less_than": "less than"}
        return f"{_input(err)} is out of range; it must be {words[kind]} {bound}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        models = " or ".join(repr(t) for t in str(ctx.get("expected_tags", "")).split(", ") if t) \
            or "a network model"
        return "required field is missing; expected " + models if kind == "union_tag_not_found" \
            else f"{ctx.get('tag')!r} is not a network model; expected {ctx.get('expected_tags')}"
    if kind == "missing":
        return "required field is missing"
    if kind in ("literal_error", "enum"):
        return f"{_input(err)} is not valid; {err['msg'].replace('Input should be', 'expected')}"
    if kind in ("string_pattern_mismatch", "string_type") and loc and loc[-1] in UNIT_HINTS:
        return f"{_input(err)} is not {UNIT_HINTS[loc[-1]]}"
    if kind == "string_pattern_mismatch":
        return (f"{_input(err)} is not a valid name; use lowercase letters, digits and '-', "
                "starting and ending with a letter or digit")
    if kind in ("ip_v4_network", "ip_v4_address", "ip_any_network"):
        return f"{_input(err)} is not {'an IPv4 CIDR such as 192.168.0.0/24' if 'network' in kind else 'an IPv4 address'}"
    if kind == "value_error":
        return str(ctx.get("error") or err["msg"].removeprefix("Value error, "))
    if kind in _EXPECTED:
        value = err.get("input")
        hint = f" (quote it: '{value}')" if kind == "string_type" and isinstance(value, (int, float)) else ""
        return f"expected {_EXPECTED[kind]}, not {_kind_of(value)}{hint}"
    if kind == "int_from_float":
        return f"{_input(err)} is not a whole number"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length" if kind == "too_short" else "max_length", "?")
        return (f"needs {'at least' if kind == 'too_short' else 'at most'} {n} "
                f"{'item' if n == 1 else 'items'}, not {ctx.get('actual_length', '?')}")
    if kind in ("string_too_long", "string_too_short"):
        n = ctx.get("max_length" if kind == "string_too_long" else "min_length", "?")
        return f"{_input(err)} is {'longer' if kind == 'string_too_long' else 'shorter'} than the {n} characters allowed"
    message = str(err.get("msg", kind))
    return f"{_input(err)}: {message[:1].lower()}{message[1:]}" if "input" in err else message


# What a type error expected, by pydantic error type.
_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "list_type": "a list", "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)", "model_attributes_type": "a mapping (key: value)",
    "none_required": "nothing (null)",
}


def _kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null (an empty value)"
    kind = {bool: "the boolean", int: "the integer", float: "the number", str: "the string"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}"


def _input(err: dict) -> str:
    value = err.get("input")
    return _kind_of(value) if isinstance(value, (dict, list)) or value is None else repr(value)


def _at(data: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return data


def _valid_keys(loc: tuple, data: Any, root: Any) -> str:
    model: Any = root
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None)
        if info is None:
            return "?"
        model = _inner_model(info.annotation, _at(data, loc[:i + 1]))
        if model is None:
            return "?"
    return ", ".join(f.alias or name for name, f in model.model_fields.items())


def _inner_model(annotation: Any, data: Any = None) -> Any:
    """The pydantic model inside an annotation (list[X], X | None, a union of X's); of a
    discriminated union (a cluster's model sections), the one `data` selects."""
    from typing import get_args

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    found = [m for m in (_inner_model(arg, data) for arg in get_args(annotation)) if m is not None]
    if len(found) > 1:
        items = data if isinstance(data, list) else [data]
        wanted = {item.get("model") for item in items if isinstance(item, dict)}
        found = [m for m in found if "model" in m.model_fields
                 and get_args(m.model_fields["model"].annotation)[:1] and
                 get_args(m.model_fields["model"].annotation)[0] in wanted] or found
    return found[0] if found else None


def load_text(text: str, file: str) -> tuple[Scenario, Source]:
    data, source = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise ScenarioError("a scenario is a mapping with at least 'name'", file=file, line=1)
    try:
        return Scenario.model_validate(data), source
    except ValidationError as e:
        err = _first_error(e, data)
        raise source.error(err["loc"], _describe(err, data)) from None


def validate(model: Any, data: Any, source: Source) -> Any:
    """Plain data → `model` (a pydantic model), or the first error as one line naming the
    file, line and field, in the words every input file of netlab uses."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = _first_error(e, data)
        raise source.error(err["loc"], _describe(err, data, model)) from None


def _first_error(e: ValidationError, data: Any) -> dict:
    """The first error, its location as the user wrote it; when the value was a union's
    (`node: a name or a list of names`), the alternative that got deepest into it."""
    errors = []
    for raw in e.errors():
        err = dict(raw)
        err["loc"] = _data_path(error_path(tuple(err["loc"])), data, err["type"])
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            err["loc"] = err["loc"] + ("model",)
        errors.append(err)
    first = errors[0]["loc"]
    same_value = [err for err in errors if err["loc"][:len(first)] == first]
    return max(same_value, key=lambda err: len(err["loc"]))  # the first of the deepest


def _data_path(loc: tuple, data: Any, kind: str) -> tuple:
    """Drop the parts of a pydantic location that are not keys or indexes of the data
    (a union's branch names such as 'constrained-str'), keeping a missing field's name."""
    out: list[Any] = []
    for i, part in enumerate(loc):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif not (kind == "missing" and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


def load(path: str | Path) -> tuple[Scenario, Source]:
    text = read_text(path, limit=SCENARIO_LIMIT, error=ScenarioError, what="scenario")
    return load_text(text, str(path))


def builtin_path(name: str = BUILTIN) -> Path:
    """A scenario shipped inside the package (works from an installed wheel too)."""
    return Path(str(resources.files("netlab") / "scenarios" / f"{name}.yaml"))


def builtin_names() -> list[str]:
    folder = resources.files("netlab") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
