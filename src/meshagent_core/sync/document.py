"""The collaborative document model (protocol/documents.md §2) on a pycrdt `Doc` mapped as protocol/documents.md §3 says.

The CRDT is the only source of truth. A small structural mirror (each node's children in
order, and the id index) is kept up to date from the CRDT's deep observer, so local and
remote edits take the same path, deletions can be reported with the node that went away,
and every structural change is checked against the schema as it is integrated:

- the root is the `XmlFragment` named `xml` and never holds attributes;
- every element is an `XmlElement` named by its tag with a unique string `$id`;
- an element's children must be allowed by its type's child property;
- an element tagged `text` holds rich text as an `XmlText` child;
- attributes must be declared by the element type, with a value of the declared type
  (an attribute named after the child property is tolerated: the official `append_json`
  writes one, protocol/documents.md §3.3 quirk b, and readers ignore it).

`apply_update` integrates a remote update and reports what broke those rules. A replica
that integrated a breaking update keeps it (a CRDT cannot roll back), so a peer that must
refuse such updates validates on a scratch replica first (as the server's sync toolkit
does). Items that arrive before earlier items of the same client are held back until
those arrive, as Yjs does (pycrdt 0.14 would integrate some of them into the gap).

Changes and local updates are handed to listeners when the outermost transaction is over,
outside pycrdt's callbacks, so a listener may read and edit the document.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pycrdt import Doc, XmlElement, XmlFragment, XmlText
from pycrdt import get_state as _update_state_vector
from pycrdt import get_update as _update_since
from pycrdt import merge_updates as _merge_updates

from .schema import ElementType, MeshSchema

ROOT_NAME = "xml"
ID_ATTRIBUTE = "$id"
TEXT_TAG = "text"
EMPTY_STATE_VECTOR = b"\x00"

YNode = Union[XmlElement, XmlText]


class DocumentError(Exception):
    """A local edit the schema or the document model does not allow."""


class InvalidUpdate(ValueError):
    """Bytes that are not a Yjs v1 update (or not base64 of one)."""


class SchemaViolation(InvalidUpdate):
    """An integrated update broke the document's schema; `violations` says how."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(violations[:5]) + (" …" if len(violations) > 5 else ""))


ChangeKind = Literal["inserted", "deleted", "updated", "text"]


@dataclass(frozen=True, slots=True)
class DocumentChange:
    """One change to the document, reported after the transaction that made it.

    - `inserted`: `node` appeared under `parent` (nested children are reported too);
    - `deleted`: `node` was removed from `parent`;
    - `updated`: attribute `name` of `node` changed to `value` (None when removed);
    - `text`: the rich text `node` was edited.
    `local` tells edits made through this document from updates applied to it.
    """

    kind: ChangeKind
    node: "Element | TextNode"
    parent: "Element | None" = None
    name: str | None = None
    value: Any = None
    local: bool = False


def encode_update(update: bytes) -> bytes:
    """The wire form of an update or state vector: standard base64 with padding (protocol/documents.md §3.5)."""
    return base64.b64encode(update)


def decode_update(payload: bytes | str) -> bytes:
    """Decode a base64 payload strictly; `InvalidUpdate` when it is not base64."""
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidUpdate(f"payload is not base64: {exc}") from None


def new_client_id() -> int:
    """A random Yjs client id. Yjs (and so the official clients) keeps client ids in 32 bits;
    pycrdt >= 0.13 makes 53-bit ones, which older readers truncate, so an update made with
    one comes back from an official client as *new* items (duplicate elements)."""
    return secrets.randbits(32)


MAX_CLIENT_ID = 2**32 - 1


def decode_state_vector(vector: bytes) -> dict[int, int]:
    """A Yjs v1 state vector as {client id: next clock}; `InvalidUpdate` when malformed."""
    position = 0

    def varuint() -> int:
        nonlocal position
        value = shift = 0
        while True:
            if position >= len(vector) or shift > 70:
                raise InvalidUpdate("truncated or malformed state vector")
            byte = vector[position]
            position += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    clocks: dict[int, int] = {}
    for _ in range(varuint()):
        client = varuint()
        clocks[client] = varuint()
    if position != len(vector):
        raise InvalidUpdate("trailing bytes after the state vector")
    return clocks


def update_clients(update: bytes) -> dict[int, int]:
    """{client id: next clock} of the items an update carries (every client, also one whose
    items do not start at clock 0: pycrdt's own reading leaves those out)."""
    try:
        vector = _update_state_vector(update)
        state = decode_state_vector(vector)
        rest = _update_since(update, vector)  # the structs of clients that do not start at 0
    except ValueError as exc:
        raise InvalidUpdate(str(exc)) from None
    if rest[:1] != b"\x00":
        for client, (_, end, _) in (struct_ranges(rest) or {}).items():
            state[client] = max(state.get(client, 0), end)
    return state


def encode_state_vector(vector: Mapping[int, int]) -> bytes:
    """The Yjs v1 encoding of {client id: next clock}."""
    out = bytearray()

    def varuint(value: int) -> None:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)

    varuint(len(vector))
    for client, clock in vector.items():
        varuint(client)
        varuint(clock)
    return bytes(out)


def _gapped_clients(update: bytes, vector: bytes) -> dict[int, int]:
    """{client: next clock} of the clients whose items in `update` do not follow on from
    `vector` (a clock range is missing before them, or a Skip leaves one inside)."""
    ours = decode_state_vector(vector)
    # The clients whose items run from clock 0 without a hole (pycrdt reads those, fast)
    # follow on from anything; only the structs of the others are read here.
    covered = dict(ours)
    for client, end in decode_state_vector(_update_state_vector(update)).items():
        covered[client] = max(covered.get(client, 0), end)
    rest = _update_since(update, encode_state_vector(covered))
    if rest[:1] == b"\x00":
        return {}
    ranges = struct_ranges(rest)
    if ranges is None:
        raise ValueError("the structs of the update cannot be read")
    return {c: end for c, (start, end, holes) in ranges.items() if start > ours.get(c, 0) or holes}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def byte(self) -> int:
        if self.position >= len(self.data):
            raise ValueError("unexpected end of update")
        value = self.data[self.position]
        self.position += 1
        return value

    def varuint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 70:
                raise ValueError("varuint too long")

    def skip(self, count: int) -> None:
        if self.position + count > len(self.data):
            raise ValueError("unexpected end of update")
        self.position += count

    def string(self) -> str:
        size = self.varuint()
        start = self.position
        self.skip(size)
        return self.data[start:self.position].decode("utf-8", "surrogatepass")

    def any(self) -> None:
        kind = self.byte()
        if kind in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if kind == 125:  # signed varint
            while self.byte() >= 0x80:
                pass
        elif kind == 124:
            self.skip(4)
        elif kind in (123, 122):
            self.skip(8)
        elif kind == 119:
            self.string()
        elif kind == 118:
            for _ in range(self.varuint()):
                self.string()
                self.any()
        elif kind == 117:
            for _ in range(self.varuint()):
                self.any()
        elif kind == 116:
            self.skip(self.varuint())
        else:
            raise ValueError(f"unknown Any tag {kind}")


def struct_ranges(update: bytes) -> dict[int, tuple[int, int, bool]] | None:
    """{client id: (first clock, next clock, whether a Skip leaves a hole inside)} of the
    structs in a Yjs v1 update, read from its struct section; None when it cannot be read.
    Struct lengths count UTF-16 units for strings, as Yjs does."""
    reader = _Reader(update)
    ranges: dict[int, tuple[int, int, bool]] = {}
    try:
        for _ in range(reader.varuint()):
            count = reader.varuint()
            client = reader.varuint()
            first = clock = reader.varuint()
            holes = False
            for _ in range(count):
                info = reader.byte()
                kind = info & 0x1F
                if kind == 0:  # GC
                    clock += reader.varuint()
                    continue
                if kind == 10:  # Skip
                    clock += reader.varuint()
                    holes = True
                    continue
                if info & 0x80:
                    reader.varuint(), reader.varuint()
                if info & 0x40:
                    reader.varuint(), reader.varuint()
                if info & 0xC0 == 0:
                    if reader.varuint() == 1:
                        reader.string()
                    else:
                        reader.varuint(), reader.varuint()
                    if info & 0x20:
                        reader.string()
                if kind == 1:  # deleted
                    length = reader.varuint()
                elif kind == 2:  # JSON
                    length = reader.varuint()
                    for _ in range(length):
                        reader.string()
                elif kind == 3:  # binary
                    reader.skip(reader.varuint())
                    length = 1
                elif kind == 4:  # string
                    length = len(reader.string().encode("utf-16-le", "surrogatepass")) // 2
                elif kind == 5:  # embed
                    reader.string()
                    length = 1
                elif kind == 6:  # format
                    reader.string(), reader.string()
                    length = 1
                elif kind == 7:  # type
                    if reader.varuint() in (3, 5):  # XmlElement, XmlHook: a name follows
                        reader.string()
                    length = 1
                elif kind == 8:  # Any
                    length = reader.varuint()
                    for _ in range(length):
                        reader.any()
                elif kind == 9:  # sub-document
                    reader.string()
                    reader.any()
                    length = 1
                else:
                    return None
                clock += length
            ranges[client] = (first, clock, holes)
    except (ValueError, UnicodeDecodeError):
        return None
    return ranges


class _EventEmitter:
    # Made on the first `on()`: a document holds one emitter per element, and most never get a handler.
    _handlers: dict[str, list[Callable[..., Any]]] | None = None

    def on(self, event_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a handler for `inserted`, `deleted` or `updated` (decorator form)."""

        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            if self._handlers is None:
                self._handlers = {}
            self._handlers.setdefault(event_name, []).append(handler)
            return handler

        return register

    def off(self, event_name: str, handler: Callable[..., Any]) -> None:
        handlers = self._handlers.get(event_name, []) if self._handlers else []
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event_name: str, *args: Any) -> None:
        if not self._handlers:
            return
        for handler in list(self._handlers.get(event_name, ())):
            handler(*args)


class Element(_EventEmitter):
    """An element of the document (or its root). Reads go to the CRDT; edits are checked
    against the schema and applied to the CRDT at once."""

    def __init__(
        self,
        doc: "MeshDocument",
        ytype: XmlElement | XmlFragment,
        element_type: ElementType,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """`attributes`: the element's attributes when the caller has already read them."""
        self._doc = doc
        self._ytype = ytype
        self._type = element_type
        self._id: str | None = None
        if isinstance(ytype, XmlElement):
            raw = (attributes if attributes is not None else ytype.attributes).get(ID_ATTRIBUTE)
            self._id = raw if isinstance(raw, str) else None

    @property
    def doc(self) -> "MeshDocument":
        return self._doc

    @property
    def id(self) -> str | None:
        """The element's `$id` (None for the root)."""
        return self._id

    @property
    def tag_name(self) -> str:
        return self._type.tag_name

    @property
    def schema(self) -> ElementType:
        return self._type

    @property
    def is_root(self) -> bool:
        return isinstance(self._ytype, XmlFragment)

    @property
    def parent(self) -> "Element | None":
        return self._doc._parent_of(self._ytype)

    def get_attribute(self, name: str, default: Any = None) -> Any:
        if self.is_root:
            return default
        value = self._ytype.attributes.get(name)  # type: ignore[union-attr]
        return default if value is None else value

    def __getitem__(self, name: str) -> Any:
        return self.get_attribute(name)

    def __setitem__(self, name: str, value: Any) -> None:
        self.set_attribute(name, value)

    def set_attribute(self, name: str, value: Any) -> None:
        self._check_writable_attribute(name)
        prop = self._type.value_property(name)
        if prop is None:
            raise DocumentError(f"{name!r} is not a value property of {self.tag_name!r}")
        if not prop.accepts(value):
            raise DocumentError(
                f"{self.tag_name}.{name} is a {prop.type}"
                + (f" in {prop.enum!r}" if prop.enum is not None else "")
                + f"; {value!r} does not fit"
            )
        with self._doc._edit():
            self._ytype.attributes[name] = value  # type: ignore[union-attr]

    def remove_attribute(self, name: str) -> None:
        self._check_writable_attribute(name)
        attributes = self._ytype.attributes  # type: ignore[union-attr]
        if name in dict(attributes):
            with self._doc._edit():
                del attributes[name]

    def _check_writable_attribute(self, name: str) -> None:
        self._check_editable()
        if self.is_root:
            raise DocumentError("the root element has no attributes in the shared document")
        if name == ID_ATTRIBUTE:
            raise DocumentError("'$id' is assigned at creation and never changes")

    def get_children(self) -> list["Element | TextNode"]:
        return list(self._doc._children_of(self._ytype))

    def get_children_by_tag_name(self, tag_name: str) -> list["Element"]:
        return [c for c in self.get_children() if isinstance(c, Element) and c.tag_name == tag_name]

    def get_elements_by_tag_name(self, tag_name: str) -> list["Element"]:
        """Every descendant element with this tag, in document order."""
        return [e for e in self._descendants() if e.tag_name == tag_name]

    def get_node_by_id(self, id: str) -> "Element | None":
        node = self._doc._by_id.get(id)
        if node is None or node is self:
            return node
        ancestor = node.parent
        while ancestor is not None:
            if ancestor is self:
                return node
            ancestor = ancestor.parent
        return None

    def _descendants(self) -> Iterator["Element"]:
        for child in self._doc._children_of(self._ytype):
            if isinstance(child, Element):
                yield child
                yield from child._descendants()

    def append_child(self, tag_name: str, attributes: Mapping[str, Any] | None = None) -> "Element":
        return self.insert_child_at(len(self._ytype.children), tag_name, attributes or {})

    def insert_child_at(self, index: int, tag_name: str, attributes: Mapping[str, Any] | None = None) -> "Element":
        self._check_editable()
        size = len(self._ytype.children)  # the live count: the mirror lags inside a transaction
        if not 0 <= index <= size:
            raise DocumentError(f"index {index} is outside 0..{size}")
        prelim = self._doc._prelim_element(self._type, tag_name, dict(attributes or {}), children=None)
        return self._doc._insert(self._ytype, index, prelim)

    def insert_child_after(self, sibling: "Element | str", tag_name: str, attributes: Mapping[str, Any] | None = None) -> "Element":
        sibling_id = sibling.id if isinstance(sibling, Element) else sibling
        index = self._doc._live_index_after(self._ytype, sibling_id)
        return self.insert_child_at(index, tag_name, attributes)

    def append_json(self, node_json: Mapping[str, Any]) -> "Element":
        """Append a JSON node (`{"<tag>": {attributes…, "<child property>": [nodes…]}}`) and
        its descendants in one transaction."""
        self._check_editable()
        tag_name, body = _single_key(node_json)
        attributes = {k: v for k, v in body.items() if k != ID_ATTRIBUTE}
        prelim = self._doc._prelim_element(self._type, tag_name, attributes, children="from-json")
        return self._doc._insert(self._ytype, len(self._ytype.children), prelim)

    def delete(self) -> None:
        self._doc._check_open()
        if self.is_root:
            raise DocumentError("the root element cannot be deleted")
        self._check_editable()
        self._doc._delete(self._ytype)

    def _check_editable(self) -> None:
        # A pycrdt handle of a removed node must never be written to: yrs frees the removed
        # content when the transaction commits, and a later write corrupts memory.
        self._doc._check_open()
        if not self._doc._is_live(self._ytype):
            raise DocumentError(f"the {self.tag_name!r} element is no longer in the document")

    def grep(self, pattern: str, *, ignore_case: bool = False, before: int = 0, after: int = 0) -> list["Element"]:
        """Elements under this one whose tag, attribute names or values match `pattern`,
        each with up to `before`/`after` siblings of context, in document order."""
        regex = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
        found: list[Element] = []
        seen: set[int] = set()

        def add(element: Element) -> None:
            if id(element) not in seen:
                seen.add(id(element))
                found.append(element)

        def visit(element: Element) -> None:
            siblings = [c for c in element.get_children() if isinstance(c, Element)]
            for index, child in enumerate(siblings):
                if child._matches(regex):
                    for s in siblings[max(0, index - before):index]:
                        add(s)
                    add(child)
                    for s in siblings[index + 1:index + 1 + after]:
                        add(s)
                visit(child)

        visit(self)
        return found

    def _matches(self, regex: re.Pattern[str]) -> bool:
        if regex.search(self.tag_name):
            return True
        for name, value in self._attributes().items():
            if name == ID_ATTRIBUTE:
                continue
            if regex.search(name) or (value is not None and regex.search(str(value))):
                return True
        return False

    def _attributes(self) -> dict[str, Any]:
        if self.is_root:
            return {}
        return dict(self._ytype.attributes)  # type: ignore[union-attr]

    def to_json(self, include_ids: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in self._attributes().items():
            if name != ID_ATTRIBUTE or include_ids:
                body[name] = value
        child_property = self._type.child_property_name
        if child_property is not None:
            body[child_property] = [c.to_json(include_ids) for c in self.get_children()]
        return {self.tag_name: body}

    def __repr__(self) -> str:
        return f"<Element {self.tag_name} id={self._id!r}>"


class TextNode(_EventEmitter):
    """The rich text held by a `text` element: a Yjs delta of runs."""

    def __init__(self, doc: "MeshDocument", ytext: XmlText, parent: Element) -> None:
        self._doc = doc
        self._ytext = ytext
        self._parent = parent

    @property
    def parent(self) -> Element:
        return self._parent

    @property
    def id(self) -> str | None:
        return self._parent.id

    @property
    def delta(self) -> list[dict[str, Any]]:
        return [{"insert": text, "attributes": dict(attrs or {})} for text, attrs in self._ytext.diff()]

    @property
    def text(self) -> str:
        return "".join(run["insert"] for run in self.delta if isinstance(run["insert"], str))

    def __len__(self) -> int:
        """The length in characters (code points; an embedded value counts as one)."""
        return sum(len(run) if isinstance(run, str) else 1 for run, _ in self._ytext.diff())

    # Indices are in characters (code points), as Python strings count them. pycrdt counts
    # UTF-8 bytes and puts text given a position inside a character at the end instead, so
    # every index is translated before it reaches the CRDT.

    def insert(self, index: int, text: str, attributes: Mapping[str, Any] | None = None) -> None:
        self._check_editable()
        size = len(self)
        if not 0 <= index <= size:
            raise DocumentError(f"index {index} is outside the text of length {size}")
        with self._doc._edit():
            self._ytext.insert(self._byte_offset(index), text, dict(attributes) if attributes else None)

    def format(self, start: int, length: int, attributes: Mapping[str, Any]) -> None:
        self._check_editable()
        self._check_range(start, length)
        with self._doc._edit():
            self._ytext.format(self._byte_offset(start), self._byte_offset(start + length), dict(attributes))

    def delete(self, index: int, length: int) -> None:
        self._check_editable()
        self._check_range(index, length)
        with self._doc._edit():
            del self._ytext[self._byte_offset(index):self._byte_offset(index + length)]

    def _check_editable(self) -> None:
        self._doc._check_open()
        if not self._doc._is_live(self._ytext):
            raise DocumentError("this text is no longer in the document")

    def _check_range(self, start: int, length: int) -> None:
        size = len(self)
        if start < 0 or length < 0 or start + length > size:
            raise DocumentError(f"range {start}+{length} is outside the text of length {size}")

    def _byte_offset(self, index: int) -> int:
        offset = 0
        for run, _ in self._ytext.diff():
            size = len(run) if isinstance(run, str) else 1
            if index <= size:
                return offset + (len(run[:index].encode("utf-8")) if isinstance(run, str) else index)
            index -= size
            offset += len(run.encode("utf-8")) if isinstance(run, str) else 1
        return offset

    def to_json(self, include_ids: bool = False) -> dict[str, Any]:
        return {TEXT_TAG: {"delta": self.delta}}

    def __repr__(self) -> str:
        return f"<TextNode of {self._parent!r}>"


Node = Union[Element, TextNode]


@dataclass
class _Integration:
    changes: list[DocumentChange] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)


class MeshDocument(_EventEmitter):
    """A schema-checked document on one pycrdt `Doc` (protocol/documents.md §2, §3).

    Build it empty, from JSON (`initial_json`), or from an update. Local edits through
    `root` and its elements go straight into the CRDT; `observe_updates` hands every local
    transaction's update to whoever sends it; `apply_update` takes remote ones.
    """

    def __init__(
        self,
        *,
        schema: MeshSchema,
        update: bytes | None = None,
        initial_json: Mapping[str, Any] | None = None,
        client_id: int | None = None,
    ) -> None:
        self._schema = schema
        self._ydoc = Doc(client_id=client_id if client_id is not None else new_client_id())
        self._fragment = self._ydoc.get(ROOT_NAME, type=XmlFragment)
        self.id = uuid.uuid4().hex
        self._closed = False
        self._applying_remote = 0
        self._pending: _Integration | None = None
        self._children: dict[Any, list[Node]] = {}
        self._wrappers: dict[Any, Node] = {}
        self._parents: dict[Any, Element] = {}
        self._by_id: dict[str, Element] = {}
        # Elements made by local inserts, registered before their transaction commits;
        # checked when it does (an insert undone in the same transaction leaves no event).
        self._provisional: list[Element] = []
        # Elements deleted by this process in a transaction that has not committed yet: still
        # in their parent's child list (the commit's delta counts on it) but hidden from reads.
        self._deleted_pending: set[int] = set()
        self._transaction_depth = 0
        # Remote items held back until the items before them arrive (see `_hold_back`).
        self._held_remote: bytes | None = None
        # Changes and local updates are handed out once the outermost transaction is over,
        # outside pycrdt's callbacks (where the document cannot be edited or even read).
        self._held_changes: list[DocumentChange] = []
        self._held_updates: list[bytes] = []
        self._change_listeners: list[Callable[[list[DocumentChange]], None]] = []
        self._update_listeners: list[Callable[[bytes], None]] = []
        self._root = Element(self, self._fragment, schema.root)
        self._wrappers[self._fragment] = self._root
        self._children[self._fragment] = []
        self._deep_subscription = self._fragment.observe_deep(self._on_deep_events)
        self._doc_subscription = self._ydoc.observe(self._on_transaction)
        if update is not None:
            violations = self.apply_update(update)
            if violations:
                raise SchemaViolation(violations)
        if initial_json is not None:
            self.load_json(initial_json)

    # -- public surface --------------------------------------------------------------

    @property
    def schema(self) -> MeshSchema:
        return self._schema

    @property
    def root(self) -> Element:
        return self._root

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def ydoc(self) -> Doc:
        """The underlying pycrdt document (for advanced use; edits made here bypass the
        schema checks of the element API, and their changes and update are handed out with
        those of the next edit or update made through this document)."""
        return self._ydoc

    def to_json(self, include_ids: bool = False) -> dict[str, Any]:
        return self._root.to_json(include_ids)

    def get_node_by_id(self, id: str) -> Element | None:
        return self._by_id.get(id)

    def get_state(self, vector: bytes | None = None) -> bytes:
        """The document as a Yjs v1 update: all of it, or what a peer at `vector` lacks."""
        return self._ydoc.get_update(vector if vector is not None else EMPTY_STATE_VECTOR)

    def get_state_vector(self) -> bytes:
        return self._ydoc.get_state()

    @property
    def incomplete(self) -> bool:
        """Whether some applied update is not integrated yet because items of a client came
        before that client's earlier items (held back until those arrive). A peer that
        relays updates should refuse one that leaves its replica incomplete: clients send
        their own items in order."""
        return self._held_remote is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group edits into one transaction: one update and one batch of changes, handed
        to the listeners when the outermost transaction ends."""
        with self._edit():
            yield

    @contextmanager
    def _edit(self) -> Iterator[None]:
        self._transaction_depth += 1
        try:
            with self._ydoc.transaction():
                yield
        finally:
            # Also when the body raised: pycrdt committed what it did, which must go out.
            self._transaction_depth -= 1
            if self._transaction_depth == 0:
                self._flush()

    def load_json(self, document_json: Mapping[str, Any]) -> None:
        """Append the children of a JSON document (`{"<root tag>": {...}}`) in one
        transaction. Root attributes are not stored: the root has no CRDT identity
        (protocol/documents.md §3.3)."""
        self._check_open()
        tag_name, body = _single_key(document_json)
        if tag_name != self._schema.root_tag_name:
            raise DocumentError(f"the root tag is {self._schema.root_tag_name!r}, not {tag_name!r}")
        child_property = self._schema.root.child_property_name
        for key in body:
            if key != child_property and self._schema.root.property(key) is None:
                raise DocumentError(f"{key!r} is not a property of {tag_name!r}")
            prop = self._schema.root.value_property(key)
            if prop is not None and not prop.accepts(body[key]):
                raise DocumentError(f"{tag_name}.{key} is a {prop.type}; {body[key]!r} does not fit")
        children = body.get(child_property, []) if child_property else []
        if not isinstance(children, list):
            raise DocumentError(f"{tag_name}.{child_property} must be a list")
        # Every node is checked before the first is written, so bad JSON adds nothing.
        prelims = []
        for child in children:
            child_tag, child_body = _single_key(child)
            attributes = {k: v for k, v in child_body.items() if k != ID_ATTRIBUTE}
            prelims.append(self._prelim_element(self._schema.root, child_tag, attributes, children="from-json"))
        with self.transaction():
            for prelim in prelims:
                self._insert(self._fragment, len(self._fragment.children), prelim)

    def apply_update(self, update: bytes) -> list[str]:
        """Integrate a remote Yjs v1 update. Returns the schema violations it brought in
        (empty when it was valid); raises `InvalidUpdate` when the bytes do not decode, in
        which case nothing was changed. Items that follow items of their client not received
        yet are held back until those arrive (see `incomplete`)."""
        self._check_open()
        if self._transaction_depth:
            raise DocumentError(
                "apply_update cannot run inside transaction(): the remote changes would be taken for local ones"
            )
        roots_before = set(self._ydoc.keys())
        integration = _Integration()
        clients = update_clients(update)
        too_wide = [client for client in clients if client > MAX_CLIENT_ID]
        if too_wide:
            integration.violations.append(f"client id {too_wide[0]} does not fit in 32 bits, as Yjs requires")
        try:
            held_back = self._hold_back(update)
        except ValueError as exc:
            raise InvalidUpdate(str(exc)) from None
        if not held_back:
            self._integrate(update, integration)
        self._integrate_held(integration)
        for name in self._ydoc.keys():
            if name != ROOT_NAME and name not in roots_before:
                integration.violations.append(f"shared type {name!r} is not part of a MeshAgent document")
        self._flush()
        return integration.violations

    def _hold_back(self, update: bytes) -> bool:
        """Hold `update` back when it has items of a client whose earlier items have not
        arrived, as Yjs keeps such items pending (held updates are merged into one; the
        parts that can be integrated are, by `_integrate_held`). yrs >= 0.27 would integrate
        some of them into a hole in the client's clock range, report no change inside the
        types they create, and may leave the rest pending for good (replicas diverge)."""
        if not _gapped_clients(update, self._ydoc.get_state()):
            return False
        self._held_remote = update if self._held_remote is None else _merge_updates(self._held_remote, update)
        return True

    def _integrate_held(self, integration: _Integration) -> None:
        """Integrate what of the held update follows on from the document: all of it, or
        the items of the clients without a missing range (which can let yrs integrate
        pending items of others, so this repeats while the state moves)."""
        while self._held_remote is not None:
            vector = self._ydoc.get_state()
            gaps = _gapped_clients(self._held_remote, vector)
            if not gaps:
                held, self._held_remote = self._held_remote, None
                self._integrate(held, integration)
                return
            ready_to = decode_state_vector(vector)
            for client, end in gaps.items():
                ready_to[client] = max(ready_to.get(client, 0), end)
            ready = _update_since(self._held_remote, encode_state_vector(ready_to))
            if ready[:1] == b"\x00":
                return
            self._integrate(ready, integration)
            if self._ydoc.get_state() == vector:
                return

    def _integrate(self, update: bytes, integration: _Integration) -> None:
        self._pending = integration
        self._applying_remote += 1
        try:
            self._ydoc.apply_update(update)
        except ValueError as exc:
            raise InvalidUpdate(str(exc)) from None
        finally:
            self._applying_remote -= 1
            self._pending = None

    def observe(self, listener: Callable[[list[DocumentChange]], None]) -> Callable[[], None]:
        """Call `listener` with the changes of every transaction, once the outermost local
        transaction (or `apply_update`) is over, so it may edit the document; returns an
        unsubscribe."""
        self._change_listeners.append(listener)
        return lambda: self._change_listeners.remove(listener) if listener in self._change_listeners else None

    def observe_updates(self, listener: Callable[[bytes], None]) -> Callable[[], None]:
        """Call `listener` with the update of every local transaction (not remote ones), once
        the outermost transaction is over; returns an unsubscribe."""
        self._update_listeners.append(listener)
        return lambda: self._update_listeners.remove(listener) if listener in self._update_listeners else None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._fragment.unobserve(self._deep_subscription)
        self._ydoc.unobserve(self._doc_subscription)
        self._change_listeners.clear()
        self._update_listeners.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise DocumentError("the document is closed")

    # -- building local edits ----------------------------------------------------------

    def _prelim_element(
        self,
        parent_type: ElementType,
        tag_name: str,
        attributes: dict[str, Any],
        children: Literal["from-json"] | None,
    ) -> XmlElement:
        child_property = parent_type.child_property
        if child_property is None or not child_property.is_tag_allowed(tag_name):
            raise DocumentError(f"{tag_name!r} is not allowed as a child of {parent_type.tag_name!r}")
        element_type = self._schema.element(tag_name)
        own_child_property = element_type.child_property_name
        nested: list[XmlElement | XmlText] = []
        stored: dict[str, Any] = {ID_ATTRIBUTE: str(uuid.uuid4())}
        for name, value in attributes.items():
            if children == "from-json" and name == own_child_property:
                if not isinstance(value, list):
                    raise DocumentError(f"{tag_name}.{name} must be a list of nodes")
                for node_json in value:
                    child_tag, child_body = _single_key(node_json)
                    child_attributes = {k: v for k, v in child_body.items() if k != ID_ATTRIBUTE}
                    nested.append(self._prelim_element(element_type, child_tag, child_attributes, children))
                continue
            prop = element_type.value_property(name)
            if prop is None:
                raise DocumentError(f"{name!r} is not a value property of {tag_name!r}")
            if not prop.accepts(value):
                raise DocumentError(f"{tag_name}.{name} is a {prop.type}; {value!r} does not fit")
            if value is not None:
                stored[name] = value
        if tag_name == TEXT_TAG:
            nested.insert(0, XmlText())
        return XmlElement(tag_name, stored, nested)

    def _insert(self, parent: XmlElement | XmlFragment, index: int, prelim: XmlElement) -> Element:
        with self._edit():
            parent.children.insert(index, prelim)
            inserted = parent.children[index]
            # Adopted now so the caller gets its element even inside an enclosing
            # transaction; the deep observer reuses this wrapper when the transaction ends.
            node = self._adopt(inserted, self._wrappers[parent], _Integration(), local=True)
            assert isinstance(node, Element)
            self._provisional.append(node)
        return node

    def _delete(self, ytype: XmlElement) -> None:
        node = self._wrappers.get(ytype)
        parent = self._parents.get(ytype)
        if node is None or parent is None:
            raise DocumentError("the element is no longer in the document")
        for index, child in enumerate(parent._ytype.children):
            if child == ytype:
                with self._edit():
                    del parent._ytype.children[index]
                # Forgotten at once, so that nothing writes to it later in this
                # transaction; the deep observer reports the deletion when it commits.
                self._forget(node)
                self._deleted_pending.add(id(node))
                return
        raise DocumentError("the element is no longer in the document")

    def _live_index_after(self, parent: XmlElement | XmlFragment, sibling_id: str | None) -> int:
        for index, child in enumerate(parent.children):
            if isinstance(child, XmlElement) and child.attributes.get(ID_ATTRIBUTE) == sibling_id:
                return index + 1
        raise DocumentError(f"{sibling_id!r} is not a child of this element")

    # -- the structural mirror ---------------------------------------------------------

    def _is_live(self, ytype: Any) -> bool:
        """Whether a node and all its ancestors are still in the document (an element made
        earlier in this transaction under one deleted since is not)."""
        while ytype is not self._fragment:
            node = self._wrappers.get(ytype)
            if node is None:
                return False
            parent = node.parent if isinstance(node, TextNode) else self._parents.get(ytype)
            if parent is None:
                return False
            ytype = parent._ytype
        return True

    def _children_of(self, ytype: Any) -> list[Node]:
        children = self._children.get(ytype, [])
        if self._deleted_pending:
            return [c for c in children if id(c) not in self._deleted_pending]
        return children

    def _parent_of(self, ytype: Any) -> Element | None:
        return self._parents.get(ytype)

    def _on_transaction(self, event: Any) -> None:
        self._settle_provisional()
        self._deleted_pending.clear()
        if self._applying_remote or not self._update_listeners:
            return
        update = event.update
        if update and update != b"\x00\x00":
            self._held_updates.append(update)

    def _on_deep_events(self, events: list[Any], *_: Any) -> None:
        integration = self._pending if self._pending is not None else _Integration()
        local = not self._applying_remote
        start = len(integration.changes)
        # Parents first: a transaction that inserts an element and edits inside it only
        # reports the insert, and one that deletes an element may also report its edits.
        for event in sorted(events, key=lambda e: len(e.path)):
            self._integrate_event(event, integration, local)
        self._settle_provisional()
        self._deleted_pending.clear()
        self._held_changes.extend(integration.changes[start:])

    def _flush(self) -> None:
        """After the outermost transaction: hand out the local updates and the changes."""
        updates, self._held_updates = self._held_updates, []
        for update in updates:
            for listener in list(self._update_listeners):
                listener(update)
        changes, self._held_changes = self._held_changes, []
        if changes:
            self._emit_changes(changes)

    def _integrate_event(self, event: Any, integration: _Integration, local: bool) -> None:
        target = event.target
        if isinstance(target, XmlText):
            node = self._wrappers.get(target)
            if node is not None:
                integration.changes.append(DocumentChange("text", node, node.parent, local=local))
            return
        if target not in self._children:
            return  # removed earlier in this transaction, or never adopted
        element = self._wrappers[target]
        assert isinstance(element, Element)
        for name, info in event.keys.items():
            if element.is_root:
                integration.violations.append(f"attribute {name!r} written on the root")
                continue
            value = info.get("newValue") if info.get("action") != "delete" else None
            self._check_attribute(element, name, value, info.get("action"), integration)
            integration.changes.append(DocumentChange("updated", element, element.parent, name=name, value=value, local=local))
        if event.delta:
            self._integrate_children_delta(target, element, event.delta, integration, local)

    def _integrate_children_delta(self, target: Any, element: Element, delta: list[dict[str, Any]], integration: _Integration, local: bool) -> None:
        old = self._children[target]
        new: list[Node] = []
        position = 0
        for op in delta:
            if "retain" in op:
                count = op["retain"]
                new.extend(old[position:position + count])
                position += count
            elif "delete" in op:
                count = op["delete"]
                for gone in old[position:position + count]:
                    self._forget(gone)
                    integration.changes.append(DocumentChange("deleted", gone, element, local=local))
                position += count
            elif "insert" in op:
                for ychild in op["insert"]:
                    node = self._adopt(ychild, element, integration, local)
                    if node is not None:
                        new.append(node)
        new.extend(old[position:])
        self._children[target] = new

    def _adopt(self, ychild: Any, parent: Element, integration: _Integration, local: bool) -> Node | None:
        """Register `ychild` and its subtree under `parent`, check them against the schema
        and record an `inserted` change for each node. Wrappers made earlier (by `_insert`)
        are reused, so adopting twice is harmless."""
        existing = self._wrappers.get(ychild)
        if isinstance(ychild, XmlText):
            if parent.tag_name != TEXT_TAG:
                integration.violations.append(f"rich text inside {parent.tag_name!r}, which is not a 'text' element")
            node: Node = existing if isinstance(existing, TextNode) else TextNode(self, ychild, parent)
            self._wrappers[ychild] = node
            integration.changes.append(DocumentChange("inserted", node, parent, local=local))
            return node
        if not isinstance(ychild, XmlElement):
            integration.violations.append(f"a {type(ychild).__name__} is not a document node")
            return None
        tag = ychild.tag or ""
        element_type = self._schema.elements_by_tag_name.get(tag)
        child_property = parent.schema.child_property
        if element_type is None:
            integration.violations.append(f"{tag!r} is not an element type of the schema")
            element_type = ElementType(tag_name=tag or "?", properties=[])
        elif child_property is None or not child_property.is_tag_allowed(tag):
            integration.violations.append(f"{tag!r} is not allowed as a child of {parent.tag_name!r}")
        attributes = dict(ychild.attributes)
        element = existing if isinstance(existing, Element) else Element(self, ychild, element_type, attributes)
        if not element.id:
            integration.violations.append(f"a {tag!r} element without a string '$id'")
        elif self._by_id.get(element.id, element) is not element:
            integration.violations.append(f"duplicate element id {element.id!r}")
        else:
            self._by_id[element.id] = element
        properties = element_type.value_properties
        for name, value in attributes.items():
            prop = properties.get(name)
            if prop is None or not prop.accepts(value):  # the common case stops here
                if name != ID_ATTRIBUTE:
                    self._check_attribute(element, name, value, "add", integration)
        self._wrappers[ychild] = element
        self._parents[ychild] = parent
        self._children[ychild] = []
        integration.changes.append(DocumentChange("inserted", element, parent, local=local))
        grandchildren: list[Node] = []
        for grandchild in ychild.children:
            node = self._adopt(grandchild, element, integration, local)
            if node is not None:
                grandchildren.append(node)
        self._children[ychild] = grandchildren
        return element

    def _settle_provisional(self) -> None:
        """Forget the locally inserted elements that did not survive their transaction."""
        if not self._provisional:
            return
        provisional, self._provisional = self._provisional, []
        members: dict[Any, set[int]] = {}

        def attached(element: Element) -> bool:
            while element is not self._root:
                parent = self._parents.get(element._ytype)
                if parent is None:
                    return False
                if parent._ytype not in members:
                    members[parent._ytype] = {id(n) for n in self._children.get(parent._ytype, ())}
                if id(element) not in members[parent._ytype]:
                    return False
                element = parent
            return True

        for element in provisional:
            if element._ytype in self._wrappers and not attached(element):
                self._forget(element)

    def _forget(self, node: Node) -> None:
        ytype = node._ytype if isinstance(node, Element) else node._ytext
        for child in self._children.pop(ytype, []):
            self._forget(child)
        self._wrappers.pop(ytype, None)
        self._parents.pop(ytype, None)
        if isinstance(node, Element) and node.id is not None and self._by_id.get(node.id) is node:
            del self._by_id[node.id]

    def _check_attribute(self, element: Element, name: str, value: Any, action: Any, integration: _Integration) -> None:
        if name == ID_ATTRIBUTE:
            if action != "add":
                integration.violations.append(f"the '$id' of {element.tag_name!r} changed")
            return
        if action == "delete":
            return  # removing an attribute never breaks the schema
        prop = element.schema.property(name)
        if prop is None:
            integration.violations.append(f"{name!r} is not a property of {element.tag_name!r}")
            return
        if name == element.schema.child_property_name:
            return  # protocol/documents.md §3.3 quirk b: a stale copy of the child list, ignored by readers
        value_property = element.schema.value_property(name)
        if value_property is not None and action != "delete" and not value_property.accepts(value):
            integration.violations.append(f"{element.tag_name}.{name}: {value!r} is not a {value_property.type}")

    def _emit_changes(self, changes: list[DocumentChange]) -> None:
        for change in changes:
            event = "inserted" if change.kind == "inserted" else "deleted" if change.kind == "deleted" else "updated" if change.kind == "updated" else None
            if event is None:
                continue
            args = (change.node,) if event != "updated" else (change.node, change.name)
            target = change.parent if event != "updated" else change.node
            if target is not None:
                target.emit(event, *args)
            self.emit(event, *args)
        for listener in list(self._change_listeners):
            listener(changes)


def _single_key(node_json: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(node_json, Mapping) or len(node_json) != 1:
        raise DocumentError(f"a JSON node is an object with exactly one key (its tag), not {node_json!r}")
    ((tag_name, body),) = node_json.items()
    if not isinstance(body, Mapping):
        raise DocumentError(f"the body of {tag_name!r} must be an object")
    return tag_name, dict(body)


__all__ = [
    "DocumentChange",
    "DocumentError",
    "Element",
    "InvalidUpdate",
    "MeshDocument",
    "SchemaViolation",
    "TextNode",
    "decode_state_vector",
    "encode_state_vector",
    "decode_update",
    "encode_update",
    "new_client_id",
    "struct_ranges",
    "update_clients",
]
