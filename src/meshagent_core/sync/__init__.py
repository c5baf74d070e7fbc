"""Collaborative documents: MeshSchema (protocol/documents.md §1) and the document model on pycrdt (protocol/documents.md §2, §3)."""

from .document import (
    DocumentChange,
    DocumentError,
    Element,
    InvalidUpdate,
    MeshDocument,
    SchemaViolation,
    TextNode,
    decode_state_vector,
    decode_update,
    encode_update,
    new_client_id,
    update_clients,
)
from .schema import (
    ChildProperty,
    ElementProperty,
    ElementType,
    MeshSchema,
    MeshSchemaException,
    MeshSchemaValidationException,
    ValueProperty,
)

__all__ = [
    "ChildProperty",
    "DocumentChange",
    "DocumentError",
    "Element",
    "ElementProperty",
    "ElementType",
    "InvalidUpdate",
    "MeshDocument",
    "MeshSchema",
    "MeshSchemaException",
    "MeshSchemaValidationException",
    "SchemaViolation",
    "TextNode",
    "ValueProperty",
    "decode_state_vector",
    "decode_update",
    "encode_update",
    "new_client_id",
    "update_clients",
]
