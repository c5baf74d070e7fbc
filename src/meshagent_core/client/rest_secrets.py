"""The official conveniences of `Meshagent` for secrets (protocol/rest.md §9): values as bytes
(sent and answered base64), lists answered as lists, and proxy access granted to a service
account by id. `Meshagent` inherits them; they call `self.call`.

Where the official method takes a different argument than the wire (`value` for
`value_base64`, `service_account_id` for `subject`, the seed's `data` for `data_base64`), the
wire form is accepted too.
"""

from __future__ import annotations

import base64
from typing import Any

from ..rest.secrets import ManagedSecretInfo, Secret, SecretVersion


def _base64(value: bytes | None, encoded: str | None, name: str) -> str:
    if value is not None:
        return base64.b64encode(value).decode()
    if encoded is None:
        raise TypeError(f"give {name} (bytes)")
    return encoded


def _service_account(service_account_id: str | None, subject: Any) -> dict[str, Any]:
    if service_account_id is not None:
        return {"type": "service_account", "id": service_account_id}
    if subject is None:
        raise TypeError("give service_account_id")
    return subject  # type: ignore[no-any-return]


class SecretsMethods:
    async def call(self, route_name: str, /, **arguments: Any) -> Any:  # provided by Meshagent
        raise NotImplementedError

    # --- user and service-account secrets ------------------------------------------------------

    async def get_user_secret(self, *, secret_id: str, include_value: bool = False) -> Secret:
        return await self.call("get_user_secret", secret_id=secret_id, include_value=include_value or None)  # type: ignore[no-any-return]

    async def get_service_account_secret(self, *, project_id: str, service_account_id: str, secret_id: str, include_value: bool = False) -> Secret:
        return await self.call(  # type: ignore[no-any-return]
            "get_service_account_secret",
            project_id=project_id,
            service_account_id=service_account_id,
            secret_id=secret_id,
            include_value=include_value or None,
        )

    async def list_user_secret_versions(self, *, secret_id: str) -> list[SecretVersion]:
        return (await self.call("list_user_secret_versions", secret_id=secret_id)).versions  # type: ignore[no-any-return]

    async def list_service_account_secret_versions(self, *, project_id: str, service_account_id: str, secret_id: str) -> list[SecretVersion]:
        answer = await self.call("list_service_account_secret_versions", project_id=project_id, service_account_id=service_account_id, secret_id=secret_id)
        return answer.versions  # type: ignore[no-any-return]

    async def create_user_secret_version(
        self, *, secret_id: str, value: bytes | None = None, set_current: bool = True, value_base64: str | None = None
    ) -> SecretVersion:
        encoded = _base64(value, value_base64, "value")
        return await self.call("create_user_secret_version", secret_id=secret_id, value_base64=encoded, set_current=set_current)  # type: ignore[no-any-return]

    async def create_service_account_secret_version(
        self, *, project_id: str, service_account_id: str, secret_id: str, value: bytes | None = None, set_current: bool = True, value_base64: str | None = None
    ) -> SecretVersion:
        return await self.call(  # type: ignore[no-any-return]
            "create_service_account_secret_version",
            project_id=project_id,
            service_account_id=service_account_id,
            secret_id=secret_id,
            value_base64=_base64(value, value_base64, "value"),
            set_current=set_current,
        )

    async def access_user_secret_version(self, *, secret_id: str, version_id: str) -> bytes:
        """The version's value; `version_id="latest"` is the current version."""
        return (await self.call("access_user_secret_version", secret_id=secret_id, version_id=version_id)).value  # type: ignore[no-any-return]

    async def access_service_account_secret_version(self, *, project_id: str, service_account_id: str, secret_id: str, version_id: str) -> bytes:
        """The version's value; `version_id="latest"` is the current version."""
        answer = await self.call(
            "access_service_account_secret_version", project_id=project_id, service_account_id=service_account_id, secret_id=secret_id, version_id=version_id
        )
        return answer.value  # type: ignore[no-any-return]

    async def grant_user_secret_proxy_access(self, *, secret_id: str, service_account_id: str | None = None, subject: Any = None) -> None:
        await self.call("grant_user_secret_proxy_access", secret_id=secret_id, subject=_service_account(service_account_id, subject))

    async def revoke_user_secret_proxy_access(self, *, secret_id: str, service_account_id: str | None = None, subject: Any = None) -> None:
        await self.call("revoke_user_secret_proxy_access", secret_id=secret_id, subject=_service_account(service_account_id, subject))

    async def list_service_account_pull_secrets(self, *, project_id: str, service_account_id: str) -> list[Secret]:
        return (await self.call("list_service_account_pull_secrets", project_id=project_id, service_account_id=service_account_id)).secrets  # type: ignore[no-any-return]

    # --- the seed's project, room and agent secrets ----------------------------------------------

    async def create_project_secret(self, *, project_id: str, name: str, type: str, data: bytes | None = None, data_base64: str | None = None) -> str:
        """The new secret's id."""
        encoded = _base64(data, data_base64, "data")
        return (await self.call("create_project_secret", project_id=project_id, name=name, type=type, data_base64=encoded)).id  # type: ignore[no-any-return]

    async def update_project_secret(
        self, *, project_id: str, secret_id: str, name: str, type: str, data: bytes | None = None, data_base64: str | None = None
    ) -> None:
        encoded = _base64(data, data_base64, "data")
        await self.call("update_project_secret", project_id=project_id, secret_id=secret_id, name=name, type=type, data_base64=encoded)

    async def list_project_secrets(self, *, project_id: str) -> list[ManagedSecretInfo]:
        return (await self.call("list_project_secrets", project_id=project_id)).secrets  # type: ignore[no-any-return]

    async def create_room_secret(self, *, project_id: str, room_name: str, data: bytes | None = None, data_base64: str | None = None, **fields: Any) -> str:
        """The new secret's id; `fields` are `secret_id`, `name`, `type`, `delegated_to`."""
        encoded = _base64(data, data_base64, "data")
        return (await self.call("create_room_secret", project_id=project_id, room_name=room_name, data_base64=encoded, **fields)).id  # type: ignore[no-any-return]

    async def update_room_secret(
        self, *, project_id: str, room_name: str, secret_id: str, data: bytes | None = None, data_base64: str | None = None, **fields: Any
    ) -> None:
        encoded = _base64(data, data_base64, "data")
        await self.call("update_room_secret", project_id=project_id, room_name=room_name, secret_id=secret_id, data_base64=encoded, **fields)

    async def list_room_secrets(self, *, project_id: str, room_name: str) -> list[ManagedSecretInfo]:
        return (await self.call("list_room_secrets", project_id=project_id, room_name=room_name)).secrets  # type: ignore[no-any-return]

    async def create_agent_secret(self, *, project_id: str, agent_id: str, data: bytes | None = None, data_base64: str | None = None, **fields: Any) -> str:
        """The new secret's id; `fields` are `secret_id`, `name`, `type`, `delegated_to`."""
        encoded = _base64(data, data_base64, "data")
        return (await self.call("create_agent_secret", project_id=project_id, agent_id=agent_id, data_base64=encoded, **fields)).id  # type: ignore[no-any-return]

    async def update_agent_secret(
        self, *, project_id: str, agent_id: str, secret_id: str, data: bytes | None = None, data_base64: str | None = None, **fields: Any
    ) -> None:
        encoded = _base64(data, data_base64, "data")
        await self.call("update_agent_secret", project_id=project_id, agent_id=agent_id, secret_id=secret_id, data_base64=encoded, **fields)

    async def list_agent_secrets(self, *, project_id: str, agent_id: str) -> list[ManagedSecretInfo]:
        return (await self.call("list_agent_secrets", project_id=project_id, agent_id=agent_id)).secrets  # type: ignore[no-any-return]
