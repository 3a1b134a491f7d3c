"""The LiveKit server the tests run against, as described by the environment ``tests/run.py`` sets.

``RTC_TRIO_TEST_URL``, ``RTC_TRIO_TEST_API_KEY``, ``RTC_TRIO_TEST_API_SECRET`` describe it;
``RTC_TRIO_REQUIRE_SERVER=1`` turns a missing server into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

SKIP_REASON = ("no LiveKit server: run the tests as root through `python tests/run.py`, "
               "or set RTC_TRIO_TEST_URL, RTC_TRIO_TEST_API_KEY, RTC_TRIO_TEST_API_SECRET")


@dataclass(frozen=True)
class TestServer:
    """A LiveKit server: its websocket URL, API credentials and (for one a test started) process id."""

    __test__: ClassVar[bool] = False  # a helper, not a test class for pytest to collect

    url: str
    api_key: str
    api_secret: str
    pid: int | None = None

    @property
    def http_url(self) -> str:
        """The URL for the server API (``ws://`` becomes ``http://``, ``wss://`` ``https://``)."""
        return "http" + self.url[2:] if self.url.startswith(("ws://", "wss://")) else self.url

    def token(self, identity: str, room: str, **grants: Any) -> str:
        """A join token for ``room``; ``grants`` are extra ``VideoGrants`` fields (can_publish=...)."""
        from livekit import api  # imported here: most tests never need it

        video = api.VideoGrants(**{"room_join": True, "room": room, **grants})
        return (api.AccessToken(self.api_key, self.api_secret)
                .with_identity(identity).with_grants(video).to_jwt())


def participants(server: TestServer, room: str) -> dict[str, list[str]]:
    """Who the server lists in ``room`` now, with the names of the tracks each publishes
    (RoomService.ListParticipants; blocking).

    The server's own truth: other participants see joins and leaves of non-publishers only in
    batches (every 3 s, the latest state per identity), so a short stay can be invisible to them.
    """
    token = server.token("rtc-trio-tests-admin", room, room_admin=True)
    request = urllib.request.Request(
        f"{server.http_url}/twirp/livekit.RoomService/ListParticipants",
        data=json.dumps({"room": room}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the namespace only
    with opener.open(request, timeout=10) as response:
        listed = json.load(response).get("participants", [])
    return {entry["identity"]: [track.get("name", "") for track in entry.get("tracks", [])]
            for entry in listed}


setattr(participants, "__test__", False)


def test_server() -> TestServer | None:
    """The server described by the environment, or None if there is none."""
    url = os.environ.get("RTC_TRIO_TEST_URL")
    key = os.environ.get("RTC_TRIO_TEST_API_KEY")
    secret = os.environ.get("RTC_TRIO_TEST_API_SECRET")
    if not (url and key and secret):
        return None
    return TestServer(url, key, secret)


setattr(test_server, "__test__", False)  # a helper, not a test, when imported into a test module


def require_server() -> TestServer:
    """The test server; skips the calling test without one (fails it if RTC_TRIO_REQUIRE_SERVER=1)."""
    server = test_server()
    if server is None:
        if os.environ.get("RTC_TRIO_REQUIRE_SERVER") == "1":
            pytest.fail(f"{SKIP_REASON} (RTC_TRIO_REQUIRE_SERVER=1 is set)", pytrace=False)
        pytest.skip(SKIP_REASON)
    return server
