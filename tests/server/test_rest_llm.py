"""LLM loggers and LLM delegation over REST (protocol/rest.md §12), against a real server on a
real socket with our `Meshagent` client: loggers stored and validated against the project's
feeds, delegations recorded with a token the server verifies."""

from __future__ import annotations

import pytest

from meshagent_core.rest import NotFoundError, PermissionDeniedError, ValidationErrorResponse
from meshagent_core.rest.access import AccessSubject
from meshagent_trio.server import Credentials, Server
from meshagent_trio.server.control.signed_tokens import TokenRefused

from test_rest_domains import api, other_project_key, post_json


async def test_llm_loggers(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        feed = await client.create_feed(project_id=own, name="llm-log")
        made = (await client.create_llm_logger(project_id=own, destination_feed_id=f" {feed.id} ", filter_expression=" model == 'x' ", annotations={"a": "b"})).logger
        assert (made.destination_feed_id, made.filter_expression, made.paused, made.annotations) == (feed.id, "model == 'x'", False, {"a": "b"})
        assert (await client.get_llm_logger(project_id=own, logger_id=made.id)).logger == made
        await client.update_llm_logger(project_id=own, logger_id=made.id, destination_feed_id=feed.id, filter_expression="", paused=True)
        updated = (await client.get_llm_logger(project_id=own, logger_id=made.id)).logger
        assert (updated.paused, updated.filter_expression, updated.annotations) == (True, "", {})
        second = (await client.create_llm_logger(project_id=own, destination_feed_id=feed.id, filter_expression="all")).logger
        assert [logger.id for logger in (await client.list_llm_loggers(project_id=own)).loggers] == [made.id, second.id]
        with pytest.raises(NotFoundError, match="destination_feed_id: feed 'nope' does not exist"):
            await client.create_llm_logger(project_id=own, destination_feed_id="nope", filter_expression="")
        with pytest.raises(ValidationErrorResponse, match="destination_feed_id must not be empty"):
            await client.update_llm_logger(project_id=own, logger_id=made.id, destination_feed_id="  ", filter_expression="")
        status, body = await post_json(server, credentials, f"/accounts/projects/{own}/llm-loggers", {"destination_feed_id": feed.id, "filter_expression": "", "paused": "sometimes"})
        assert status == 400 and "$.paused" in body["error"]["message"]
        await client.delete_llm_logger(project_id=own, logger_id=made.id)
        with pytest.raises(NotFoundError, match=f"LLM logger '{made.id}' does not exist"):
            await client.get_llm_logger(project_id=own, logger_id=made.id)
        with pytest.raises(NotFoundError):
            await client.delete_llm_logger(project_id=own, logger_id=made.id)
        await client.delete_feed(project_id=own, feed_id=feed.id)
        assert (await client.list_llm_loggers(project_id=own)).loggers == []  # the feed's loggers go with it
        _, other_key = await other_project_key(client)
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError):
            await stranger.list_llm_loggers(project_id=own)


async def test_llm_delegation(server: Server, credentials: Credentials) -> None:
    own = credentials.project_id
    async with api(server, credentials.api_key) as client:
        account = await client.create_service_account(project_id=own, name="spender")
        key = (await client.create_api_key(project_id=own, service_account_id=account.id, name="k", description="")).value
        worker = await client.create_service_account(project_id=own, name="worker")
        by_owner = await client.connect_llm(project_id=own, subject=AccessSubject(type="service_account", id=worker.id), max_budget="1")
        assert (by_owner.project_id, by_owner.delegator.type) == (own, "user")
        status, body = await post_json(server, credentials, "/llm/connect", {"subject": {"type": "user", "id": "u"}, "max_budget": "1"})
        assert status == 400 and "the Meshagent-Project-Id header is required" in body["error"]["message"]
        _, other_key = await other_project_key(client)
    async with api(server, key) as spender:
        subject = AccessSubject(type="service_account", id=worker.id)
        delegation = await spender.connect_llm(project_id=own, subject=subject, max_budget="12.50", providers=["openai"], models=["gpt-x"], expires_in_seconds=60)
        assert (delegation.project_id, delegation.subject, delegation.max_budget, delegation.providers, delegation.models) == (own, subject, "12.50", ["openai"], ["gpt-x"])
        assert (delegation.delegator.type, delegation.delegator.id) == ("service_account", account.id)
        verified = await server.control.llm.verify_delegation(delegation.token)
        assert (verified.id, verified.subject, verified.max_budget) == (delegation.id, subject, "12.50")
        user = await spender.connect_llm(project_id=own, subject={"type": "user", "email": "a@b.test"}, max_budget=0)
        assert user.max_budget == "0" and user.providers is None
        for arguments, message in (
            ({"max_budget": "lots"}, "max_budget"),
            ({"max_budget": "-1"}, "max_budget"),
            ({"max_budget": "NaN"}, "max_budget"),
            ({"expires_in_seconds": 0}, "expires_in_seconds"),
            ({"subject": {"type": "group", "id": "g"}}, "subject.type"),
            ({"subject": {"type": "service_account"}}, "subject.id"),
        ):
            with pytest.raises(ValidationErrorResponse, match=message):
                await spender.connect_llm(**{"project_id": own, "subject": subject, "max_budget": "1", **arguments})
        with pytest.raises(NotFoundError, match="subject: service account 'ghost' does not exist"):
            await spender.connect_llm(project_id=own, subject={"type": "service_account", "id": "ghost"}, max_budget="1")
    async with api(server, other_key) as stranger:
        with pytest.raises(PermissionDeniedError, match="another project"):
            await stranger.connect_llm(project_id=own, subject=subject, max_budget="1")
    with pytest.raises(TokenRefused, match="not a valid llm token"):
        await server.control.llm.verify_delegation(delegation.token[:-2] + "xx")
