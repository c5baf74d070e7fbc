"""The built-in toolkits of the local server, by name."""

from __future__ import annotations

from ..toolkit import Toolkit
from . import dataset, developer, livekit, memory, messaging, mounts, queues, services, sqlite, storage, sync

BUILTIN_TOOLKITS: dict[str, Toolkit] = {
    toolkit.name: toolkit
    for toolkit in (
        dataset.toolkit,
        developer.toolkit,
        livekit.toolkit,
        memory.toolkit,
        messaging.toolkit,
        mounts.toolkit,
        queues.toolkit,
        services.toolkit,
        sqlite.toolkit,
        storage.toolkit,
        sync.toolkit,
    )
}

#: Built-in toolkits of the MeshAgent cloud that this server does not provide (yet): calls get
#: a clear error instead of being routed to a participant.
UNAVAILABLE_TOOLKITS = frozenset({"containers"})
