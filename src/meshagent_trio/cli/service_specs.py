"""Reading the documents the REST commands take: YAML or JSON files (or URLs) holding a
`ServiceSpec`, a service template, template values, or a `ScheduledTaskSpec`; and writing specs
back as YAML.

A file that cannot be read, or is not YAML/JSON, is a usage error naming the file (exit 2); a
document that reads but is not the spec the command wants is a failure naming the file and the
field (exit 1), as the official CLI reports an invalid spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .common import CommandFailed

#: The metadata annotation the official CLI matches services by (`--service-id`, `--replace`).
ANNOTATION_SERVICE_ID = "meshagent.service.id"


def read_text(file: Optional[str], url: Optional[str] = None, *, what: str, option: str = "--file") -> tuple[str, str]:
    """The text of `--file` or `--url` (exactly one), and where it came from."""
    if file and url:
        raise typer.BadParameter("pass only one of --file or --url", param_hint="--file")
    if not file and not url:
        raise typer.BadParameter(f"a {what} is needed: pass {option} PATH", param_hint=option)
    if url:
        if not url.startswith(("http://", "https://")):
            raise typer.BadParameter("the URL must start with http:// or https://", param_hint="--url")
        import httpx

        try:
            response = httpx.get(url, timeout=30.0, follow_redirects=True)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise typer.BadParameter(f"cannot read the {what} from {url}: {error}", param_hint="--url") from None
        return response.text, url
    path = Path(file).expanduser()  # type: ignore[arg-type]
    try:
        return path.read_text(encoding="utf-8"), str(file)
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise typer.BadParameter(f"cannot read the {what} {file}: {reason}", param_hint=option) from None


def parse_document(text: str, source: str, *, what: str, option: str = "--file") -> Any:
    """The YAML (or JSON, which is YAML) of `text`; a usage error naming `source` if it is not."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        reason = " ".join(str(error).split())
        raise typer.BadParameter(f"the {what} {source} is not YAML or JSON: {reason}", param_hint=option) from None


def load_document(file: Optional[str], url: Optional[str] = None, *, what: str, option: str = "--file") -> tuple[Any, str, str]:
    """(parsed document, its text, where it came from)."""
    text, source = read_text(file, url, what=what, option=option)
    return parse_document(text, source, what=what, option=option), text, source


def convert(data: Any, model: type, source: str, what: str) -> Any:
    """`data` as `model` (`msgspec.convert`); a failure naming `source` and the field."""
    import msgspec

    if not isinstance(data, dict):
        raise CommandFailed(f"invalid {what} in {source}: expected a mapping, got {type(data).__name__}")
    try:
        return msgspec.convert(data, model, strict=False)
    except (msgspec.ValidationError, ValueError) as error:
        raise CommandFailed(f"invalid {what} in {source}: {' '.join(str(error).split())}") from None


# --- services ------------------------------------------------------------------------------


def load_service_spec(file: Optional[str], url: Optional[str] = None) -> Any:
    """The `ServiceSpec` of `--file`/`--url`; a template there is refused with a pointer to
    the `*-template` commands, as the official CLI does."""
    from meshagent_core.rest.service_spec import ServiceSpec

    data, _text, source = load_document(file, url, what="service spec")
    if isinstance(data, dict) and data.get("kind") == "ServiceTemplate":
        raise CommandFailed(f"{source} is a service template, not a service spec: use the create-template / update-template commands")
    return convert(data, ServiceSpec, source, "service spec")


def load_template_text(file: Optional[str], url: Optional[str] = None) -> tuple[str, str]:
    """A service template's YAML text (rendered by the server, so only read here) and where it
    came from; a service spec there is refused."""
    text, source = read_text(file, url, what="service template")
    try:
        data = parse_document(text, source, what="service template")
    except typer.BadParameter:
        return text, source  # a template may be YAML only once rendered (Jinja blocks)
    if isinstance(data, dict) and data.get("kind") == "Service":
        raise CommandFailed(f"{source} is a service spec, not a service template: use create / update / validate")
    return text, source


def template_values(values_file: Optional[str], values: Optional[list[str]]) -> dict[str, str]:
    """`--values-file` (a YAML/JSON mapping) overridden by each `--value key=value`."""
    result: dict[str, str] = {}
    if values_file:
        data, _text, source = load_document(values_file, what="values file", option="--values-file")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise typer.BadParameter(f"{source} must hold a mapping of names to values", param_hint="--values-file")
        result = {str(key): "" if value is None else str(value) for key, value in data.items()}
    for item in values or ():
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--value")
        result[key] = value
    return result


def with_service_id(spec: Any, service_id: Optional[str]) -> Any:
    """`spec` with `meshagent.service.id` set to `service_id` (when given)."""
    if service_id is None:
        return spec
    if not service_id.strip():
        raise typer.BadParameter("must not be empty", param_hint="--service-id")
    spec.metadata.annotations = {**(spec.metadata.annotations or {}), ANNOTATION_SERVICE_ID: service_id.strip()}
    return spec


def annotated_id(spec: Any) -> Optional[str]:
    value = (spec.metadata.annotations or {}).get(ANNOTATION_SERVICE_ID)
    return (value or "").strip() or None


def to_template(spec: Any) -> Any:
    """The `ServiceTemplateSpec` of a `ServiceSpec` (the official CLI's mapping: no id, no
    enabled flag, the container without its pull secret)."""
    import msgspec

    from meshagent_core.rest.service_spec import read_service_template

    if spec.external is not None and spec.external.url is None:
        raise CommandFailed("a service whose external.url is unset has no template form")
    plain = msgspec.to_builtins(spec)
    plain.pop("id", None)
    plain.pop("enabled", None)
    plain["kind"] = "ServiceTemplate"
    if plain.get("container"):
        plain["container"].pop("pull_secret", None)
    return read_service_template(_without_nulls(plain))


def dump_yaml(spec: Any) -> str:
    """A spec as YAML, nulls left out, keys in the model's order."""
    import msgspec
    import yaml

    return yaml.safe_dump(_without_nulls(msgspec.to_builtins(spec)), sort_keys=False, allow_unicode=True)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


# --- scheduled tasks -------------------------------------------------------------------------


def load_task_spec(file: str) -> Any:
    """The `ScheduledTaskSpec` of `--file`, checked as the server checks it."""
    from meshagent_core.rest.tasks import ScheduledTaskSpec, check_spec

    data, _text, source = load_document(file, what="scheduled task spec")
    spec = convert(data, ScheduledTaskSpec, source, "scheduled task spec")
    try:
        check_spec(spec)
    except ValueError as error:
        raise CommandFailed(f"invalid scheduled task spec in {source}: {error}") from None
    return spec
