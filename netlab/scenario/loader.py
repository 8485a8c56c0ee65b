"""Load a scenario YAML file into a `Scenario`, keeping the line of every field.

Every error names the file, the line and the field, and says what would be valid; the
`Source` returned with the scenario lets later stages (resolve) do the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from netlab.errors import ScenarioError
from netlab.scenario.schema import Scenario, error_path, model_of_field
from netlab.scenario.types import NODE_PORT_MAX, NODE_PORT_MIN, Path_

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


def format_path(path: Path_) -> str | None:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


class _Constructor(yaml.constructor.SafeConstructor):
    pass


def _to_python(node: yaml.Node, path: Path_, source: Source, ctor: _Constructor) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node)
            if not isinstance(key, (str, int)):
                raise ScenarioError("keys must be plain strings", file=source.file,
                                    line=key_node.start_mark.line + 1, field=format_path(path))
            if key in out:
                raise ScenarioError(f"duplicate key '{key}'", file=source.file,
                                    line=key_node.start_mark.line + 1, field=format_path(path + (key,)))
            source.lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, path + (key,), source, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, path + (i,), source, ctor) for i, item in enumerate(node.value)]
    return ctor.construct_object(node)


def parse_yaml(text: str, file: str) -> tuple[Any, Source]:
    """YAML text → plain Python data plus the line of every path in it."""
    source = Source(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ScenarioError(f"not valid YAML: {e.problem or e.context}", file=file,
                            line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"not valid YAML: {e}", file=file) from None
    if node is None:
        raise ScenarioError("the file is empty; a scenario needs at least 'name'", file=file)
    return _to_python(node, (), source, _Constructor()), source


# Fields whose values carry a unit, and what a valid one looks like.
UNIT_HINTS = {"delay": "a duration such as 20ms", "jitter": "a duration such as 5ms",
              "loss": "a percentage such as 1%", "rate": "a rate such as 100mbit"}


def _describe(err: dict, data: Any) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden" and len(loc) == 3 and loc[0] == "clusters" and model_of_field(str(loc[-1])):
        cluster = _at(data, loc[:2])
        return (f"'{loc[-1]}' applies to model: {' or '.join(model_of_field(str(loc[-1])))} only, and "
                f"cluster '{cluster.get('name')}' is model: {cluster.get('model')}; remove it")
    if kind == "extra_forbidden":
        return f"unknown key '{loc[-1]}'; valid keys: {_valid_keys(loc[:-1], data)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than") and loc:
        if loc[-1] in ("nodePort", "healthCheckNodePort"):
            return f"{_input(err)} is outside the node port range {NODE_PORT_MIN}-{NODE_PORT_MAX}"
        if loc[-1] in ("port", "targetPort"):
            return f"{_input(err)} is not a port number (1-65535)"
        bound = next(iter(err.get("ctx", {}).values()), "?")
        words = {"greater_than_equal": "at least", "less_than_equal": "at most",
                 "greater_than": "more than", "less_than": "less than"}
        return f"{_input(err)} is out of range; it must be {words[kind]} {bound}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        models = " or ".join(repr(t) for t in err.get("ctx", {}).get("expected_tags", "").split(", ") if t) \
            or "a network model"
        return "required field is missing; expected " + models if kind == "union_tag_not_found" \
            else f"{err['ctx']['tag']!r} is not a network model; expected {err['ctx']['expected_tags']}"
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
    return f"{_input(err)}: {err['msg'][0].lower()}{err['msg'][1:]}" if "input" in err else err["msg"]


def _input(err: dict) -> str:
    value = err.get("input")
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _at(data: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return {}
    return data


def _valid_keys(loc: tuple, data: Any) -> str:
    model: Any = Scenario
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
        err = dict(e.errors()[0])
        err["loc"] = error_path(tuple(err["loc"]))
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            err["loc"] = err["loc"] + ("model",)
        raise source.error(err["loc"], _describe(err, data)) from None


def load(path: str | Path) -> tuple[Scenario, Source]:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ScenarioError("no such file", file=str(path)) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read: {e.strerror if hasattr(e, 'strerror') and e.strerror else e}",
                            file=str(path)) from None
    return load_text(text, str(path))


def builtin_path(name: str = BUILTIN) -> Path:
    """A scenario shipped inside the package (works from an installed wheel too)."""
    return Path(str(resources.files("netlab") / "scenarios" / f"{name}.yaml"))


def builtin_names() -> list[str]:
    folder = resources.files("netlab") / "scenarios"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
