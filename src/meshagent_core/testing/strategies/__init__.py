"""Hypothesis strategies for the MeshAgent protocol: property-test your own code (a receiver, a
tool, a document consumer) against the values the protocol core produces and accepts.

Needs the optional extra (`pip install 'meshagent-trio[hypothesis]'`); nothing else in
`meshagent_core` imports Hypothesis.

Wire: `json_values`, `contents`, `messages`, `packets_of`, `packet_streams` (`PacketStream`),
`envelopes`. Tokens: `api_scopes`, `participant_tokens`. Sync: `mesh_schemas`, `documents`.
Tools: `tool_arguments` (`UnsupportedSchemaError`).

    from hypothesis import given
    from meshagent_core import pack_content, unpack_content
    from meshagent_core.testing.strategies import contents

    @given(contents())
    def test_content_round_trips(content):
        assert unpack_content(pack_content(content)) == content
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "meshagent_core.testing.strategies needs Hypothesis, an optional extra: "
        "pip install 'meshagent-trio[hypothesis]'",
        name=__name__,
    ) from error

from ._json_schema import UnsupportedSchemaError, tool_arguments
from ._sync import documents, mesh_schemas
from ._tokens import api_scopes, participant_tokens
from ._wire import PacketStream, contents, envelopes, json_values, messages, packet_streams, packets_of

__all__ = [
    "PacketStream",
    "UnsupportedSchemaError",
    "api_scopes",
    "contents",
    "documents",
    "envelopes",
    "json_values",
    "mesh_schemas",
    "messages",
    "packet_streams",
    "packets_of",
    "participant_tokens",
    "tool_arguments",
]
