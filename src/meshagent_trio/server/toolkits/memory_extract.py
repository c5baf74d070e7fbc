"""The `heuristic` ingest strategy: entities and relationships taken from text by fixed rules
(protocol/room-apis.md §15.4). Pure functions: no I/O, no clock, no randomness, so the same text
always gives the same entities, relationships and ids.

Rules, in order:

1. **Sentences.** The text is cut at line breaks and after `.`, `!` or `?` followed by white
   space — except after a known abbreviation (`Dr.`, `Inc.`, `e.g.`, …).
2. **Quoted terms** — text between double quotes (straight or curly) or backticks, 2 to 80
   characters — are entities of type `CONCEPT`.
3. **Capitalised phrases** — runs of words that start with a capital letter, separated by single
   spaces, and joined across the connectors `of`, `de`, `van`, `von`, `der`, `da`, `di`, `du`,
   `la`, `le`, `del` and `&` when a capitalised word follows — are entities. Leading function
   words (`The`, `This`, `In`, weekdays, months, …) are dropped from a phrase, a trailing `'s`
   too. A one-word phrase that opens its sentence is kept only when it is all capitals, has a
   capital or digit inside, or appears capitalised somewhere else in the text not opening a
   sentence (so "Yesterday" at the start of a sentence is not an entity, "Alice" is when she is
   named again). Pure numbers and single letters are not entities.
4. **Types.** `ORGANIZATION` when the phrase holds a company or institution word (`Inc`,
   `Corp`, `University`, `Bank`, …); `PERSON` when a title (`Mr`, `Ms`, `Dr`, `Prof`, …)
   comes right before it; `CONCEPT` for quoted terms; `ENTITY` otherwise.
5. **Identity.** An entity's id is `entity_id_for(name)`: a UUID 5 of the name with Unicode
   normalised (NFKC), case folded and white space collapsed, so "ACME corp" and "Acme  Corp"
   are one entity, in every source and every memory. Its name is its first spelling in the text.
6. **Context.** The first `CONTEXT_SENTENCES` sentences that mention the entity, joined, at most
   `MAX_CONTEXT` characters.
7. **Relationships.** Two entities named in the same sentence are `RELATED_TO` each other, once
   per pair: stored from the smaller entity id to the larger (co-occurrence has no direction),
   with the first sentence they share as the description and confidence 0.5. At most
   `MAX_ENTITIES_PER_SENTENCE` entities of a sentence take part.

Bounds: `MAX_ENTITIES` entities and `MAX_RELATIONSHIPS` relationships per text (the first ones
in reading order).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field

from meshagent_core.toolkits.memory import MemoryEntityRecord, MemoryRelationshipRecord

#: The UUID 5 namespace of memory ids (entities by name, sources by source id).
MEMORY_ID_NAMESPACE = uuid.UUID("6f1d3c52-9b4e-5d0a-8c3f-2e7a91b4d605")
MAX_ENTITIES = 2000
MAX_RELATIONSHIPS = 10_000
MAX_ENTITIES_PER_SENTENCE = 12
CONTEXT_SENTENCES = 3
MAX_CONTEXT = 1000
MAX_DESCRIPTION = 500
CO_OCCURRENCE_CONFIDENCE = 0.5

ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof sr jr st mt inc ltd corp co vs etc e.g i.e no fig al approx dept est gen gov sen rep".split()
)
TITLES = frozenset("mr mrs ms miss mx dr prof sir madam dame lord lady".split())
CONNECTORS = frozenset("of de van von der da di du la le del &".split())
ORGANIZATION_WORDS = frozenset(
    "inc corp corporation company co ltd llc gmbh ag plc university institute bank group foundation agency association council committee department ministry labs".split()
)
FUNCTION_WORDS = frozenset(
    """a an the this that these those it its he she they we i you his her their our my your
    in on at for but and or if when while after before also however then there here as by from
    to with of so because although since until what who where why how which each every some
    many most all both either neither no not yes is are was were be been being do does did has
    have had will would can could should may might must shall let please thanks thank dear hi
    hello yesterday today tomorrow tonight monday tuesday wednesday thursday friday saturday
    sunday january february march april june july august september october november december
    mr mrs ms miss mx dr prof sir madam dame lord lady""".split()
)

_SENTENCE_END = re.compile(r"([.!?]+)[\"'”’)\]]*\s+")
_QUOTED = re.compile(r"\"([^\"\n]{2,80})\"|“([^”\n]{2,80})”|`([^`\n]{2,80})`")
_WORD = re.compile(r"[^\W_][\w'’\-]*|&")
_SPACES = re.compile(r"\s+")


def normalise_name(name: str) -> str:
    """The form two spellings of one name share (NFKC, case folded, single spaces)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


def entity_id_for(name: str) -> str:
    """The id of the entity called `name` (see rule 5)."""
    return str(uuid.uuid5(MEMORY_ID_NAMESPACE, "entity:" + normalise_name(name)))


def source_entity_id(source_id: str) -> str:
    """The id of the entity that stands for an ingested source."""
    return str(uuid.uuid5(MEMORY_ID_NAMESPACE, "source:" + source_id))


@dataclass
class Extraction:
    """What a strategy found in a text."""

    entities: list[MemoryEntityRecord] = field(default_factory=list)
    relationships: list[MemoryRelationshipRecord] = field(default_factory=list)


def sentences(text: str) -> list[str]:
    """The text cut into sentences (rule 1)."""
    result: list[str] = []
    for line in text.splitlines():
        start = 0
        for match in _SENTENCE_END.finditer(line):
            before = line[start : match.start()].rsplit(None, 1)
            last_word = before[-1].lower().rstrip(".") if before else ""
            if match.group(1) == "." and (last_word in ABBREVIATIONS or len(last_word) == 1 and last_word.isalpha()):
                continue
            piece = line[start : match.end()].strip()
            if piece:
                result.append(piece)
            start = match.end()
        piece = line[start:].strip()
        if piece:
            result.append(piece)
    return result


@dataclass
class _Mention:
    name: str
    entity_type: str


def _phrases(sentence: str) -> list[tuple[list[str], bool, str | None]]:
    """Capitalised phrases of a sentence: (words, opens the sentence, word before it)."""
    words = [(match.group(), match.start(), match.end()) for match in _WORD.finditer(sentence)]
    phrases: list[tuple[list[str], bool, str | None]] = []
    index = 0
    while index < len(words):
        word, start, end = words[index]
        if not word[0].isupper():
            index += 1
            continue
        run = [word]
        last_end = end
        cursor = index + 1
        while cursor < len(words):
            next_word, next_start, next_end = words[cursor]
            if sentence[last_end:next_start] != " ":
                break
            if next_word[0].isupper():
                run.append(next_word)
                last_end = next_end
                cursor += 1
                continue
            if next_word.lower() in CONNECTORS and cursor + 1 < len(words):
                after, after_start, after_end = words[cursor + 1]
                if sentence[next_end:after_start] == " " and after[0].isupper():
                    run.extend([next_word, after])
                    last_end = after_end
                    cursor += 2
                    continue
            break
        opens = sentence[:start].strip(" \t\"'“‘([*-•#>0123456789.") == ""
        previous = words[index - 1][0] if index > 0 else None
        phrases.append((run, opens, previous))
        index = cursor
    return phrases


def _clean(run: list[str]) -> list[str]:
    while run and run[0].lower().rstrip(".") in FUNCTION_WORDS:
        run = run[1:]
    while run and run[-1].lower() in CONNECTORS:
        run = run[:-1]
    if run:
        last = run[-1]
        for suffix in ("'s", "’s"):
            if last.endswith(suffix) and len(last) > len(suffix):
                run = [*run[:-1], last[: -len(suffix)]]
    return run


def _distinctive(word: str) -> bool:
    return (len(word) > 1 and word.isupper()) or any(character.isupper() or character.isdigit() for character in word[1:])


def _mentions(sentence: str, capitalised_inside: set[str]) -> list[_Mention]:
    mentions: list[_Mention] = []
    for match in _QUOTED.finditer(sentence):
        term = next(group for group in match.groups() if group is not None).strip()
        if len(term) >= 2:
            mentions.append(_Mention(term, "CONCEPT"))
    for run, opens, previous in _phrases(sentence):
        cleaned = _clean(run)
        if not cleaned:
            continue
        dropped_lead = len(cleaned) < len(run) and run[0] == cleaned[0]
        if len(cleaned) == 1 and opens and not dropped_lead and len(run) == 1:
            word = cleaned[0]
            if not (_distinctive(word) or word in capitalised_inside):
                continue
        name = " ".join(cleaned)
        if len(name) < 2 or name.replace("-", "").isdigit():
            continue
        if any(word.lower().rstrip(".") in ORGANIZATION_WORDS for word in cleaned):
            kind = "ORGANIZATION"
        elif previous is not None and previous.lower() in TITLES:
            kind = "PERSON"
        else:
            kind = "ENTITY"
        mentions.append(_Mention(name, kind))
    return mentions


def _capitalised_inside(all_sentences: list[str]) -> set[str]:
    """Capitalised words that appear somewhere not opening their sentence."""
    found: set[str] = set()
    for sentence in all_sentences:
        for run, opens, _ in _phrases(sentence):
            words = run[1:] if opens else run
            found.update(word for word in words if word[0].isupper())
    return found


def extract(text: str) -> Extraction:
    """Entities and relationships of `text` by the rules of the module docstring."""
    all_sentences = sentences(text)
    inside = _capitalised_inside(all_sentences)
    names: dict[str, str] = {}
    types: dict[str, str] = {}
    contexts: dict[str, list[str]] = {}
    pairs: dict[tuple[str, str], str] = {}
    for sentence in all_sentences:
        seen: list[str] = []
        for mention in _mentions(sentence, inside):
            entity_id = entity_id_for(mention.name)
            if entity_id not in names:
                if len(names) >= MAX_ENTITIES:
                    continue
                names[entity_id] = mention.name
                types[entity_id] = mention.entity_type
                contexts[entity_id] = []
            if entity_id not in seen:
                seen.append(entity_id)
                if len(contexts[entity_id]) < CONTEXT_SENTENCES:
                    contexts[entity_id].append(sentence)
        seen = seen[:MAX_ENTITIES_PER_SENTENCE]
        for first in range(len(seen)):
            for second in range(first + 1, len(seen)):
                key = (min(seen[first], seen[second]), max(seen[first], seen[second]))
                if key not in pairs and len(pairs) < MAX_RELATIONSHIPS:
                    pairs[key] = sentence[:MAX_DESCRIPTION]
    entities = [
        MemoryEntityRecord(entity_id=entity_id, name=name, entity_type=types[entity_id], context=" ".join(contexts[entity_id])[:MAX_CONTEXT])
        for entity_id, name in names.items()
    ]
    relationships = [
        MemoryRelationshipRecord(
            source_entity_id=source,
            target_entity_id=target,
            relationship_type="RELATED_TO",
            description=description,
            confidence=CO_OCCURRENCE_CONFIDENCE,
            source_entity_name=names[source],
            target_entity_name=names[target],
        )
        for (source, target), description in pairs.items()
    ]
    return Extraction(entities=entities, relationships=relationships)


__all__ = [
    "MAX_CONTEXT",
    "MEMORY_ID_NAMESPACE",
    "Extraction",
    "entity_id_for",
    "extract",
    "normalise_name",
    "sentences",
    "source_entity_id",
]
