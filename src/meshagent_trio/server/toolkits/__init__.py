"""The built-in toolkits of the local server, by name."""

from __future__ import annotations

from ..toolkit import Toolkit
from . import developer, livekit, messaging, mounts, queues, services, storage, sync

BUILTIN_TOOLKITS: dict[str, Toolkit] = {
    toolkit.name: toolkit
    for toolkit in (
        developer.toolkit,
        livekit.toolkit,
        messaging.toolkit,
        mounts.toolkit,
        queues.toolkit,
        services.toolkit,
        storage.toolkit,
        sync.toolkit,
    )
}

#: Built-in toolkits of the MeshAgent cloud that this server does not provide (yet): calls get
#: a clear error instead of being routed to a participant.
UNAVAILABLE_TOOLKITS = frozenset({"dataset", "sqlite", "memory", "containers"})
