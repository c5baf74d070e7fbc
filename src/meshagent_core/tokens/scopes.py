"""`ApiScope`: the fine-grained room API permissions of an `api` grant (protocol/tokens.md §4)."""

from __future__ import annotations

import msgspec

from collections.abc import Mapping
from typing import Any

from .grants import (
    AdminGrant,
    AgentsGrant,
    ContainersGrant,
    DatasetGrant,
    DeveloperGrant,
    LivekitGrant,
    LLMGrant,
    MemoryGrant,
    MessagingGrant,
    QueuesGrant,
    SecretsGrant,
    ServicesGrant,
    SqliteGrant,
    StorageGrant,
    SyncGrant,
    TunnelsGrant,
)
from .model import GrantModel

# Input spellings of `dataset`, in order of precedence (the first key present wins).
DATASET_ALIASES = ("dataset", "database", "datasets")


class ApiScope(GrantModel):
    """Room API permissions, one optional grant per capability family.

    `None` (absent on the wire) means the family is not granted; a grant at its defaults
    (`{}` on the wire) grants the family without restrictions. On input `dataset` may also be
    spelled `database` or `datasets`; unknown keys are ignored.
    """

    livekit: LivekitGrant | None = None
    queues: QueuesGrant | None = None
    messaging: MessagingGrant | None = None
    dataset: DatasetGrant | None = None
    sqlite: SqliteGrant | None = None
    memory: MemoryGrant | None = None
    sync: SyncGrant | None = None
    storage: StorageGrant | None = None
    containers: ContainersGrant | None = None
    developer: DeveloperGrant | None = None
    agents: AgentsGrant | None = None
    llm: LLMGrant | None = None
    admin: AdminGrant | None = None
    secrets: SecretsGrant | None = None
    tunnels: TunnelsGrant | None = None
    services: ServicesGrant | None = None

    @classmethod
    def _prepare_input(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "dataset" not in data:
            for alias in DATASET_ALIASES[1:]:
                if alias in data:
                    return {**data, "dataset": data[alias]}
        return data

    @staticmethod
    def agent_default(*, tunnels: bool = False) -> ApiScope:
        """Every family except `admin` and `secrets`; `tunnels` only when asked for."""
        return msgspec.structs.replace(
            ApiScope.user_default(), llm=LLMGrant(), tunnels=TunnelsGrant() if tunnels else None
        )

    @staticmethod
    def user_default() -> ApiScope:
        """As `agent_default()` without `llm`."""
        return ApiScope(
            livekit=LivekitGrant(),
            queues=QueuesGrant(),
            messaging=MessagingGrant(),
            dataset=DatasetGrant(),
            sqlite=SqliteGrant(),
            memory=MemoryGrant(),
            sync=SyncGrant(),
            storage=StorageGrant(),
            containers=ContainersGrant(),
            developer=DeveloperGrant(),
            agents=AgentsGrant(),
            services=ServicesGrant(),
        )

    @staticmethod
    def full() -> ApiScope:
        """Every family except `secrets`, unrestricted."""
        return msgspec.structs.replace(
            ApiScope.user_default(), llm=LLMGrant(), admin=AdminGrant(), tunnels=TunnelsGrant()
        )

