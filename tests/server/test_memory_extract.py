"""The memory toolkit's pure parts, property-tested: the heuristic extraction rules (ids,
relationships, determinism across processes), the read-only check of `query` statements, and
records as the clients send them read back by the server unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshagent_core import RoomException
from meshagent_core.client.memory import _records
from meshagent_core.toolkits.memory import MemoryEntityRecord, MemoryRelationshipRecord
from meshagent_core.toolkits.records import DatasetJson, DatasetStruct, encode_records
from meshagent_trio.server.toolkits.memory_extract import MAX_CONTEXT, entity_id_for, extract, normalise_name, sentences
from meshagent_trio.server.toolkits.memory_graph import WRITE_WORDS, check_read_only
from meshagent_trio.server.toolkits.memory_tables import entity_records, relationship_records, table_rows

WORDS = ["Alice", "Bob", "Acme Corp", "Berlin", "the", "works", "at", "met", "NASA", "quietly", "University of Oxford", "Dr. Stone", '"deep learning"',
         "and", "in", "Ms. Lee", "Q3", "iPhone", "McDonald", "Monday", "The", "Yesterday", "Bob's", "x", "7", "Café Müller", "“smart quotes”", "`code`"]  # fmt: skip
SENTENCES = st.lists(st.sampled_from(WORDS), min_size=1, max_size=10).map(lambda words: " ".join(words) + ".")
TEXTS = st.lists(SENTENCES, min_size=1, max_size=8).map(" ".join)


@settings(deadline=None, max_examples=200)
@given(text=TEXTS | st.text(max_size=400))
def test_extraction_is_consistent(text: str) -> None:
    first, second = extract(text), extract(text)
    assert first == second
    ids = [entity.entity_id for entity in first.entities]
    assert len(ids) == len(set(ids))
    for entity in first.entities:
        assert entity.entity_id == entity_id_for(entity.name) and entity.name.strip() == entity.name and len(entity.name) >= 2
        assert entity.entity_type in ("CONCEPT", "ORGANIZATION", "PERSON", "ENTITY")
        assert entity.context and len(entity.context) <= MAX_CONTEXT
    keys = [(r.source_entity_id, r.target_entity_id) for r in first.relationships]
    assert len(keys) == len(set(keys))
    for relationship in first.relationships:
        assert relationship.source_entity_id < relationship.target_entity_id
        assert {relationship.source_entity_id, relationship.target_entity_id} <= set(ids)
        assert relationship.relationship_type == "RELATED_TO" and relationship.description


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ", min_size=1, max_size=30).filter(str.strip)


@settings(deadline=None)
@given(name=NAMES)
def test_entity_ids_ignore_case_and_spacing(name: str) -> None:
    respaced = "  ".join(name.upper().split()) + " "
    assert entity_id_for(name) == entity_id_for(respaced)
    assert normalise_name(respaced) == " ".join(name.lower().split())


def test_extraction_is_the_same_in_every_process() -> None:
    """No set or hash order leaks into the result: other hash seeds, the same extraction."""
    text = " ".join(f"{a} met {b} at {c} in {d}." for a, b, c, d in [("Alice", "Bob", "Acme Corp", "Berlin"), ("Carol", "Dan", "NASA", "Paris")] * 3)
    program = (
        "import json, sys, msgspec; from meshagent_trio.server.toolkits.memory_extract import extract; "
        "e = extract(sys.argv[1]); print(json.dumps(msgspec.to_builtins([e.entities, e.relationships])))"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", program, text], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
    here = extract(text)
    assert json.loads(outputs.pop()) == msgspec.to_builtins([here.entities, here.relationships])


def test_rules() -> None:
    assert sentences("Dr. Stone met Ms. Lee. They talked!\nNext line? Yes") == ["Dr. Stone met Ms. Lee.", "They talked!", "Next line?", "Yes"]
    found = extract('Yesterday Dr. Bob Stone joined the University of Oxford. Bob Stone likes "graph databases". Alice met Bob Stone.')
    assert [(entity.name, entity.entity_type) for entity in found.entities] == [
        ("Bob Stone", "PERSON"),
        ("University of Oxford", "ORGANIZATION"),
        ("graph databases", "CONCEPT"),
    ]  # "Yesterday" and "Alice" open their sentences and are not named elsewhere
    assert {(r.source_entity_name, r.target_entity_name) for r in found.relationships} == {
        tuple(sorted(pair, key=entity_id_for)) for pair in [("Bob Stone", "University of Oxford"), ("Bob Stone", "graph databases")]
    }
    assert [entity.name for entity in extract("Alice is here. I saw Alice.").entities] == ["Alice"]  # named again inside a sentence
    assert [entity.name for entity in extract("NASA met Acme's board.").entities] == ["NASA", "Acme"]  # all capitals; a trailing 's


# --- the read-only check -------------------------------------------------------------------------

IDENTIFIERS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda word: word.upper() not in WRITE_WORDS)


@settings(deadline=None)
@given(word=st.sampled_from(sorted(WRITE_WORDS)), before=IDENTIFIERS, after=IDENTIFIERS, lower=st.booleans())
def test_a_write_word_in_code_is_refused(word: str, before: str, after: str, lower: bool) -> None:
    word = word.lower() if lower else word
    with pytest.raises(RoomException) as refused:
        check_read_only(f"MATCH ({before}:Entity) {word} {after} RETURN {before}")
    assert refused.value.code == 1002 and "read-only" in str(refused.value)


@settings(deadline=None)
@given(word=st.sampled_from(sorted(WRITE_WORDS)), name=IDENTIFIERS, quote=st.sampled_from(["'", '"', "`"]))
def test_a_write_word_in_a_literal_comment_or_property_is_not(word: str, name: str, quote: str) -> None:
    for statement in (
        f"MATCH (e:Entity) WHERE e.name = {quote}{word} {name}{quote} RETURN e",
        f"MATCH (e:Entity) RETURN e.{word.lower()} // {word} {name}",
        f"MATCH (e:Entity) /* {word} */ RETURN e.name",
    ):
        assert check_read_only(statement + ";") == statement


def test_one_statement_at_a_time() -> None:
    with pytest.raises(RoomException, match="one statement"):
        check_read_only("RETURN 1; RETURN 2")
    assert check_read_only("RETURN ';' AS x;  ") == "RETURN ';' AS x"


# --- records as the clients send them ------------------------------------------------------------

TEXTS_OR_NONE = st.none() | st.text(max_size=20)
FLOATS = st.none() | st.floats(allow_nan=False, allow_infinity=False)
METADATA = st.none() | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)
ENTITIES = st.builds(
    MemoryEntityRecord, entity_id=TEXTS_OR_NONE, name=st.text(max_size=20), entity_type=TEXTS_OR_NONE, context=TEXTS_OR_NONE,
    confidence=FLOATS, created_at=TEXTS_OR_NONE, valid_at=TEXTS_OR_NONE, metadata=METADATA,
)  # fmt: skip
RELATIONSHIPS = st.builds(
    MemoryRelationshipRecord, source_entity_id=st.text(max_size=10), target_entity_id=st.text(max_size=10), relationship_type=st.text(max_size=10),
    description=TEXTS_OR_NONE, confidence=FLOATS, expired_at=TEXTS_OR_NONE, source_entity_name=TEXTS_OR_NONE, metadata=METADATA,
)  # fmt: skip
JSON_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10)
    | st.binary(max_size=20) | st.uuids() | st.dates() | st.datetimes(timezones=st.just(timezone.utc)) | JSON_DOCUMENTS.map(DatasetJson),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3).map(DatasetStruct),
    max_leaves=8,
)  # fmt: skip


@settings(deadline=None, max_examples=150)
@given(entities=st.lists(ENTITIES, max_size=4), relationships=st.lists(RELATIONSHIPS, max_size=4))
def test_graph_records_round_trip(entities: list, relationships: list) -> None:
    """What `room.memory.upsert_nodes` / `upsert_relationships` send, the server reads as sent."""
    assert entity_records(json.dumps(_records(entities, MemoryEntityRecord))) == entities
    assert relationship_records(json.dumps(_records(relationships, MemoryRelationshipRecord))) == relationships


@settings(deadline=None, max_examples=150)
@given(rows=st.lists(st.dictionaries(st.text(max_size=8), VALUES, max_size=4), max_size=4))
def test_table_rows_round_trip(rows: list) -> None:
    """Rows in the official client's wire form (§12.1) are read as the official decoder reads them."""
    assert table_rows(json.dumps(encode_records(rows))) == rows
