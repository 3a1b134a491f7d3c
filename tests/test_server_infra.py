"""The LiveKit server that tests/run.py provides is really there and speaks with our credentials."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from livekit import api

from tests.server import TestServer, require_server, test_server


async def _create_list_delete(server: TestServer, name: str) -> list[str]:
    """Create room ``name``, list it, delete it; return the listed room names."""
    lkapi = api.LiveKitAPI(server.http_url, server.api_key, server.api_secret, failover=False)
    try:
        room = await lkapi.room.create_room(api.CreateRoomRequest(name=name, empty_timeout=10))
        assert room.name == name
        listed = await lkapi.room.list_rooms(api.ListRoomsRequest(names=[name]))
        await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
        return [r.name for r in listed.rooms]
    finally:
        await lkapi.aclose()


def test_create_and_list_rooms() -> None:
    server = require_server()
    name = f"infra-{uuid.uuid4().hex[:8]}"
    assert asyncio.run(_create_list_delete(server, name)) == [name]


def test_wrong_secret_is_rejected() -> None:
    server = require_server()
    impostor = TestServer(server.url, server.api_key, "x" * 40)
    with pytest.raises(api.TwirpError) as raised:
        asyncio.run(_create_list_delete(impostor, "never-created"))
    assert raised.value.status == 401


def test_token_decodes() -> None:
    server = require_server()
    token = server.token("alice", "room-a", can_publish=False)
    claims = api.TokenVerifier(server.api_key, server.api_secret).verify(token)
    assert claims.identity == "alice"
    assert claims.video is not None
    assert (claims.video.room, claims.video.room_join, claims.video.can_publish) == (
        "room-a", True, False)


def test_environment_describes_the_server() -> None:
    server = require_server()
    assert test_server() == server
    assert server.url.startswith(("ws://", "wss://"))
