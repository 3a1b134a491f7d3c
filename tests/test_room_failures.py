"""Connects that fail or are abandoned: clear errors, bounded time, nothing left behind."""

from __future__ import annotations

import re

import pytest
import trio

import rtc_trio as rtc
from tests.server import participants, require_server
from tests.test_room_support import room_name, run

# Generous bounds: a hang fails the test, a slow machine does not.
FAIL_BOUND = 40.0


def _closed_port_url(url: str) -> str:
    return re.sub(r":\d+(/.*)?$", ":1", url)


def test_bad_token_is_a_connect_error() -> None:
    server = require_server()

    async def main() -> None:
        with trio.fail_after(FAIL_BOUND):
            with pytest.raises(rtc.ConnectError) as raised:
                async with rtc.connect(server.url, "not-a-jwt"):
                    pass
        print(raised.value)
        assert server.url in str(raised.value)

        forged = server.token("mallory", room_name())[:-4] + "AAAA"  # bad signature
        with trio.fail_after(FAIL_BOUND):
            with pytest.raises(rtc.ConnectError) as raised:
                async with rtc.connect(server.url, forged):
                    pass
        print(raised.value)

    run(main)


def test_closed_port_is_a_connect_error() -> None:
    server = require_server()

    async def main() -> None:
        url = _closed_port_url(server.url)
        with trio.fail_after(FAIL_BOUND):
            with pytest.raises(rtc.ConnectError) as raised:
                async with rtc.connect(url, server.token("x", room_name()), timeout=10):
                    pass
        print(raised.value)
        assert url in str(raised.value)

    run(main)


def test_malformed_url_is_a_connect_error() -> None:
    server = require_server()

    async def main() -> None:
        with trio.fail_after(FAIL_BOUND):
            with pytest.raises(rtc.ConnectError) as raised:
                async with rtc.connect("ws://bad host name:7880", server.token("x", room_name())):
                    pass
        print(raised.value)

    run(main)


def test_timeout_is_a_connect_error() -> None:
    """The native connect is bounded by the same timeout, so no late room is made here; a late
    room that really is created is test_room_hardening's cancelled-connect test."""
    server = require_server()

    async def main() -> None:
        with trio.fail_after(FAIL_BOUND):
            with pytest.raises(rtc.ConnectError, match="within"):
                async with rtc.connect(server.url, server.token("ghost", room_name("late")),
                                       timeout=0.001):
                    pytest.fail("the block must not run")

    run(main)


def test_cancelled_connects_leave_nothing_behind() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name("cancel")
        for index in range(12):
            with trio.move_on_after(index * 0.01):  # cancel at varied points of the connect
                async with rtc.connect(server.url, server.token(f"ghost{index}", name)):
                    await trio.sleep_forever()
        # Locally nothing is left (the autouse fixture checks the handles); the server drops
        # the participants of late rooms once they are disconnected natively.
        with trio.fail_after(FAIL_BOUND):
            while any(identity.startswith("ghost")
                      for identity in await trio.to_thread.run_sync(participants, server, name)):
                await trio.sleep(0.1)

    run(main)
