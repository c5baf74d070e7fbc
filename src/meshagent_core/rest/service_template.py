"""Rendering a service template (protocol/rest.md §8): its YAML text is rendered with a sandboxed
Jinja2 environment and the `values` map, then read as YAML, where a scalar tagged `!template` is
rendered once more; the result is a `ServiceTemplateSpec` whose metadata carries the original text
(`meshagent.service.template.yaml`) and the values (`meshagent.service.template.values`,
`json.dumps(values)`). This is what the official `ServiceTemplateSpec.from_yaml` does, in the same
sandbox (Jinja2's `ImmutableSandboxedEnvironment`: a template reaches no Python internals).

Unlike the official code, rendering is bounded, since the server renders what callers send: the
template's size, the rendered text's size, the items all `range()` calls of one rendering may
make, repetition (`"x" * n`), powers, and the number of values in the YAML (aliases counted once
per use). Every failure is a `TemplateError` saying where (the line) and why.

`check_template_values` is the server's rule on top: every variable not marked `optional` has a
non-empty value, and a variable with an `enum` has one of its values.
"""

from __future__ import annotations

import json
import math
import sys
from types import TracebackType
from typing import Any, Callable

import msgspec

from .service_spec import ServiceTemplateSpec, ServiceTemplateVariable, read_service_template

TEMPLATE_YAML_ANNOTATION = "meshagent.service.template.yaml"
TEMPLATE_VALUES_ANNOTATION = "meshagent.service.template.values"

MAX_TEMPLATE_CHARS = 256 * 1024
MAX_RENDERED_CHARS = 1024 * 1024
#: items all `range()` calls of one rendering may make together
MAX_RANGE_ITEMS = 100_000
#: the longest string or list `*` may make, and the most bits `**` may make
MAX_REPEATED_ITEMS = 1024 * 1024
MAX_POWER_BITS = 4096
#: values (mappings, lists, scalars) in the YAML, each use of an alias counted
MAX_YAML_VALUES = 100_000


class TemplateError(ValueError):
    """A template that cannot be rendered into a `ServiceTemplateSpec`: where and why."""


class _Rendering:
    """One rendering's sandbox and budgets (shared by the text and its `!template` values)."""

    def __init__(self, values: dict[str, str]) -> None:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        rendering = self

        class BoundedEnvironment(ImmutableSandboxedEnvironment):
            intercepted_binops = frozenset({"*", "**"})

            def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
                rendering.check_binop(operator, left, right)
                return super().call_binop(context, operator, left, right)

        self.values = values
        self.environment = BoundedEnvironment()
        self.range_left = MAX_RANGE_ITEMS

    def bounded_range(self, *arguments: int) -> range:
        items = range(*arguments)
        self.range_left -= len(items)
        if self.range_left < 0:
            raise TemplateError(f"the template's range() calls make more than {MAX_RANGE_ITEMS} items")
        return items

    def check_binop(self, operator: str, left: Any, right: Any) -> None:
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) and len(sequence) * count > MAX_REPEATED_ITEMS:
                    raise TemplateError(f"'*' would make more than {MAX_REPEATED_ITEMS} items")
        elif isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right * math.log2(abs(left)) > MAX_POWER_BITS:
                raise TemplateError(f"'**' would make a number of more than {MAX_POWER_BITS} bits")

    def render(self, source: str, where: str) -> str:
        from jinja2 import TemplateError as JinjaError
        from jinja2 import TemplateSyntaxError

        try:
            template = self.environment.from_string(source, globals={"range": self.bounded_range})
            parts: list[str] = []
            size = 0
            for part in template.generate(**self.values):
                size += len(part)
                if size > MAX_RENDERED_CHARS:
                    raise TemplateError(f"the rendered text is over {MAX_RENDERED_CHARS} characters")
                parts.append(part)
            return "".join(parts)
        except TemplateSyntaxError as error:
            raise TemplateError(f"{where}, line {error.lineno}: {error.message}") from None
        except TemplateError as error:
            line = _template_line(sys.exc_info()[2])
            raise TemplateError(f"{where}{'' if line is None else f', line {line}'}: {error}") from None
        except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError, AttributeError, RecursionError) as error:
            line = _template_line(sys.exc_info()[2])
            raise TemplateError(f"{where}{'' if line is None else f', line {line}'}: {type(error).__name__}: {error}") from None


def _template_line(trace: TracebackType | None) -> int | None:
    """The template line of the innermost frame Jinja2 maps to the template (its tracebacks
    show template frames under the file name `<template>`)."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _check_size(template: str) -> None:
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template: over {MAX_TEMPLATE_CHARS} characters")


def _load_yaml(text: str, tagged: Callable[[str], str]) -> Any:
    import yaml

    class TemplateLoader(yaml.SafeLoader):
        pass

    def construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> str:
        return tagged(loader.construct_scalar(node))  # type: ignore[arg-type]

    TemplateLoader.add_multi_constructor("!template", construct_tagged)
    try:
        return yaml.load(text, Loader=TemplateLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"
        raise TemplateError(f"the rendered template is not valid YAML{where}: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise TemplateError(f"the rendered template is not valid YAML: {error}") from None


def _count_values(value: Any) -> int:
    """How many values `value` holds once its shared parts (YAML aliases) are expanded."""
    counted: dict[int, int] = {}

    def count(item: Any) -> int:
        if not isinstance(item, (dict, list)):
            return 1
        known = counted.get(id(item))
        if known is not None:
            return known
        counted[id(item)] = MAX_YAML_VALUES + 1  # a cycle (a recursive alias) counts as too many
        children = item.values() if isinstance(item, dict) else item
        total = 1 + sum(count(child) for child in children)
        counted[id(item)] = total
        return total

    return count(value)


def render_service_template(template: str, values: dict[str, str], *, require_values: bool = False) -> ServiceTemplateSpec:
    """The `ServiceTemplateSpec` of a template's YAML text and its values, as the official
    `ServiceTemplateSpec.from_yaml` renders it (`TemplateError` saying where and why). With
    `require_values`, the values are checked against the variables first (`check_template_values`)."""
    _check_size(template)
    rendering = _Rendering(values)
    text = rendering.render(template, "template")
    data = _load_yaml(text, lambda value: rendering.render(value, "a !template value"))
    if _count_values(data) > MAX_YAML_VALUES:
        raise TemplateError(f"the rendered template holds more than {MAX_YAML_VALUES} values")
    if require_values and isinstance(data, dict):
        try:
            variables = msgspec.convert(data.get("variables") or [], list[ServiceTemplateVariable], strict=False)
        except msgspec.ValidationError:
            variables = None  # reading the whole spec below names the fault
        if variables is not None:
            check_template_values(variables, values)
    try:
        spec = read_service_template(data)
    except msgspec.ValidationError as error:
        raise TemplateError(f"the rendered template is not a valid ServiceTemplateSpec: {error}") from None
    annotations = dict(spec.metadata.annotations or {})
    annotations[TEMPLATE_YAML_ANNOTATION] = template
    annotations[TEMPLATE_VALUES_ANNOTATION] = json.dumps(values)
    spec.metadata.annotations = annotations
    return spec


def check_template_values(variables: list[ServiceTemplateVariable], values: dict[str, str]) -> None:
    """`TemplateError` naming the required variables without a value (missing or empty) and the
    values outside their variable's `enum`."""
    missing = [variable.name for variable in variables if not variable.optional and not values.get(variable.name)]
    if missing:
        raise TemplateError(f"values: missing for the required template variables {', '.join(missing)}")
    for variable in variables:
        value = values.get(variable.name)
        if value and variable.enum is not None and value not in variable.enum:
            raise TemplateError(f"values: {variable.name} {value!r} is not one of {', '.join(variable.enum)}")


__all__ = [
    "MAX_TEMPLATE_CHARS",
    "TEMPLATE_VALUES_ANNOTATION",
    "TEMPLATE_YAML_ANNOTATION",
    "TemplateError",
    "check_template_values",
    "render_service_template",
]
