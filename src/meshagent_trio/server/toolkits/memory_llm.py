"""The `llm` ingest strategy: an OpenAI-compatible chat model reads the text and names its
entities and relationships (protocol/room-apis.md §15.4).

* **Configuration**: the server process's environment, read at each call: `OPENAI_API_KEY`
  (required) and `OPENAI_BASE_URL` (default `https://api.openai.com/v1`). Without a key the
  strategy is refused with 1007 (`NOT_CONFIGURED`).
* **Request**: `POST $OPENAI_BASE_URL/chat/completions` with `Authorization: Bearer …`, the
  caller's `llm_model` (default `DEFAULT_MODEL`) and `llm_temperature` (left out when null),
  `response_format: {"type": "json_object"}`, a system message that asks for
  `{"entities": [{"name", "entity_type", "context", "confidence"}], "relationships":
  [{"source", "target", "relationship_type", "description", "confidence"}]}` and the text as the
  user message. At most `MAX_TEXT` characters of text (1002 beyond), `TIMEOUT` seconds, an answer
  of at most `MAX_ANSWER_BYTES`.
* **Validation** (msgspec): the answer must be a chat completion whose first choice's message
  content is that JSON object; names must be non-empty. Anything else is refused with 1008
  ("the language model's answer …") and nothing is written. A relationship naming an entity the
  model did not list adds that entity; relationship types are upper-cased, non-identifier
  characters become `_`, and a type that is still no label becomes `RELATED_TO`. Entities get
  the same ids as the heuristic strategy's (`entity_id_for`), so both strategies grow one graph.
* **Grant**: the strategy spends the server's model credentials for the caller, so it needs the
  caller's `llm` grant to allow `openai/<model>` (1001 otherwise).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping

import httpx
import msgspec

from meshagent_core import ErrorCode, RoomException
from meshagent_core.toolkits.memory import MemoryEntityRecord, MemoryRelationshipRecord

from .memory_extract import Extraction, entity_id_for
from .memory_store import invalid

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
PROVIDER = "openai"
TIMEOUT = 120.0
MAX_TEXT = 48_000
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_ITEMS = 2000
NOT_CONFIGURED = "the llm ingest strategy is not configured on this server: set OPENAI_API_KEY (and OPENAI_BASE_URL for a server other than OpenAI's)"

SYSTEM_PROMPT = """You extract a knowledge graph from the user's text.
Answer with one JSON object and nothing else, of this shape:
{"entities": [{"name": str, "entity_type": str, "context": str, "confidence": number}],
 "relationships": [{"source": str, "target": str, "relationship_type": str, "description": str, "confidence": number}]}
Entities are the people, organizations, places, things and concepts the text is about; "context" says in one sentence what the text says about the entity.
"entity_type" is an upper-case word such as PERSON, ORGANIZATION, LOCATION, EVENT, CONCEPT.
Relationships connect two entity names from the list; "relationship_type" is UPPER_SNAKE_CASE such as WORKS_AT or PART_OF.
Confidence is between 0 and 1."""

_NOT_LABEL = re.compile(r"[^A-Za-z0-9_]+")


class _Entity(msgspec.Struct):
    name: str
    entity_type: str | None = None
    context: str | None = None
    confidence: float | None = None


class _Relationship(msgspec.Struct):
    source: str
    target: str
    relationship_type: str | None = None
    description: str | None = None
    confidence: float | None = None


class _Graph(msgspec.Struct):
    entities: list[_Entity] = msgspec.field(default_factory=list)
    relationships: list[_Relationship] = msgspec.field(default_factory=list)


class _Message(msgspec.Struct):
    content: str


class _Choice(msgspec.Struct):
    message: _Message


class _Completion(msgspec.Struct):
    choices: list[_Choice]


def settings(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(base URL, API key); 1007 without a key."""
    environ = os.environ if environ is None else environ
    key = environ.get("OPENAI_API_KEY", "").strip()
    if not key:
        raise RoomException(NOT_CONFIGURED, code=ErrorCode.DEPENDENCY_MISSING)
    base = environ.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL
    return base.rstrip("/"), key


def model_of(llm_model: str | None) -> str:
    return (llm_model or "").strip() or DEFAULT_MODEL


def refused(reason: str) -> RoomException:
    return RoomException(f"the language model's answer {reason}", code=ErrorCode.OPERATION_FAILED)


def _label(value: str | None) -> str:
    label = _NOT_LABEL.sub("_", (value or "").strip()).strip("_").upper()[:64]
    if not label or not (label[0].isalpha() or label[0] == "_"):
        return "RELATED_TO"
    return label


def _confidence(value: float | None) -> float | None:
    if value is None or value != value:
        return None
    return min(1.0, max(0.0, float(value)))


def parse_answer(body: bytes) -> Extraction:
    """A chat completion's body as entities and relationships; 1008 for anything else."""
    try:
        completion = msgspec.json.decode(body, type=_Completion)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise refused(f"is not a chat completion: {error}") from None
    if not completion.choices:
        raise refused("has no choices")
    content = completion.choices[0].message.content.strip()
    if content.startswith("```"):  # some models fence JSON even when asked not to
        content = content.strip("`").removeprefix("json").strip()
    try:
        graph = msgspec.json.decode(content, type=_Graph)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise refused(f"is not the JSON object asked for: {error}") from None
    if len(graph.entities) > MAX_ITEMS or len(graph.relationships) > MAX_ITEMS:
        raise refused(f"lists more than {MAX_ITEMS} entities or relationships")
    entities: dict[str, MemoryEntityRecord] = {}

    def entity(name: str, **fields: Any) -> str:
        name = name.strip()
        if not name:
            raise refused("names an entity with an empty name")
        entity_id = entity_id_for(name)
        if entity_id not in entities:
            entities[entity_id] = MemoryEntityRecord(entity_id=entity_id, name=name, **fields)
        return entity_id

    for item in graph.entities:
        entity(item.name, entity_type=(item.entity_type or "").strip().upper() or None, context=item.context, confidence=_confidence(item.confidence))
    relationships = []
    for item in graph.relationships:
        source, target = entity(item.source), entity(item.target)
        relationships.append(
            MemoryRelationshipRecord(
                source_entity_id=source,
                target_entity_id=target,
                relationship_type=_label(item.relationship_type),
                description=item.description,
                confidence=_confidence(item.confidence),
                source_entity_name=entities[source].name,
                target_entity_name=entities[target].name,
            )
        )
    return Extraction(entities=list(entities.values()), relationships=relationships)


async def llm_extract(text: str, model: str, temperature: float | None, environ: Mapping[str, str] | None = None) -> Extraction:
    """Ask the configured model for the graph of `text`."""
    base, key = settings(environ)
    if len(text) > MAX_TEXT:
        raise invalid(f"the text is longer than {MAX_TEXT} characters, too long for the llm strategy: split it or use the heuristic strategy")
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}],
        "response_format": {"type": "json_object"},
    }
    if temperature is not None:
        request["temperature"] = temperature
    url = f"{base}/chat/completions"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False, follow_redirects=False) as client:
            async with client.stream(
                "POST", url, content=json.dumps(request).encode(), headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            ) as response:
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body += piece
                    if len(body) > MAX_ANSWER_BYTES:
                        raise refused(f"is larger than {MAX_ANSWER_BYTES} bytes")
                status = response.status_code
    except httpx.TimeoutException:
        raise RoomException(f"the language model did not answer within {TIMEOUT:g} s", code=ErrorCode.TIMEOUT) from None
    except httpx.HTTPError as error:
        raise RoomException(f"the language model could not be reached at {url}: {error or type(error).__name__}", code=ErrorCode.OPERATION_FAILED) from None
    if status != 200:
        raise RoomException(f"the language model call failed: HTTP {status}: {bytes(body[:300]).decode('utf-8', 'replace')}", code=ErrorCode.OPERATION_FAILED)
    return parse_answer(bytes(body))


__all__ = ["DEFAULT_MODEL", "NOT_CONFIGURED", "PROVIDER", "llm_extract", "model_of", "parse_answer", "settings"]
