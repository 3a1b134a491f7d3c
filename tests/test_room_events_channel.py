"""A room's events come as a trio ReceiveChannel: usable wherever one is, closable, measurable.

The tests with a server send data packets from alice to bob in a fresh room and read them from
bob's channels. Other events (quality updates, speakers...) may come in between at any time:
no test counts on their absence.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _room, _room_native
from rtc_trio._proto import room_pb2
from tests.server import require_server
from tests.test_room_support import BOUND, run, two_rooms, wait_for_event

T = TypeVar("T")


async def collect(channel: trio.abc.ReceiveChannel[T], keep: Callable[[T], bool], count: int) -> list[T]:
    """What any trio consumer does: own the channel in ``async with``, read it with ``async for``."""
    kept: list[T] = []
    async with channel:
        async for item in channel:
            if keep(item):
                kept.append(item)
                if len(kept) == count:
                    break
    return kept


def _payload(event: rtc.RoomEvent) -> bytes | None:
    return event.payload if isinstance(event, rtc.DataReceived) else None


def test_room_events_work_where_any_receive_channel_does() -> None:
    server = require_server()

    async def main() -> None:
        send, receive = trio.open_memory_channel[bytes](8)  # the reference: trio's own channel
        for payload in (b"one", b"two", b"three"):
            send.send_nowait(payload)
        assert await collect(receive, lambda _: True, 3) == [b"one", b"two", b"three"]

        async with two_rooms(server) as (a, b):
            channel = b.events()
            assert isinstance(channel, trio.abc.ReceiveChannel)
            for payload in (b"one", b"two", b"three"):
                await a.local_participant.publish_data(payload)  # reliable: in order
            with trio.fail_after(BOUND):
                got = await collect(channel, lambda e: _payload(e) is not None, 3)
            assert [_payload(e) for e in got] == [b"one", b"two", b"three"]
            for closed in (receive, channel):  # leaving `async with` closed both alike
                with pytest.raises(trio.ClosedResourceError):
                    await closed.receive()

    run(main)


def test_aclose_wakes_a_blocked_reader_and_stops_the_channel() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            channel = b.events()
            probe = b.events()  # sees what the channel would have
            outcome: list[str] = []

            async def reader() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    async for _ in channel:
                        pass
                outcome.append("closed")

            with trio.fail_after(BOUND):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(reader)
                    while channel._lot.statistics().tasks_waiting != 1:  # parked in receive()
                        await trio.sleep(0.01)
                    await channel.aclose()  # closes before its first checkpoint: the reader was parked
            assert outcome == ["closed"]
            await a.local_participant.publish_data(b"after", topic="after")
            await wait_for_event(probe, rtc.DataReceived, lambda e: e.topic == "after")
            assert channel.statistics() == rtc.RoomEventsStatistics(0, channel.capacity, 0)
            with pytest.raises(trio.ClosedResourceError):
                channel.receive_nowait()
            await channel.aclose()  # twice is harmless

    run(main)


def test_statistics_count_what_was_buffered_and_dropped() -> None:
    """Channels opened together get the same events: a probe that reads tells how many came
    (data packets and whatever else), and the unread channels' statistics must agree."""
    server = require_server()
    sent = 5

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            small, large, probe = b.events(capacity=3), b.events(capacity=64), b.events()
            assert small.statistics() == rtc.RoomEventsStatistics(0, 3, 0)
            for index in range(sent):
                await a.local_participant.publish_data(b"%d" % index, topic="count")
            seen = 0
            with trio.fail_after(BOUND):
                async for event in probe:
                    seen += 1
                    if _payload(event) == b"%d" % (sent - 1):
                        break
            came = seen + probe.statistics().buffered  # no checkpoint from here on
            assert small.statistics() == rtc.RoomEventsStatistics(3, 3, came - 3)
            assert large.statistics() == rtc.RoomEventsStatistics(came, 64, 0)
            assert small.dropped == came - 3
            payloads = [_payload(large.receive_nowait()) for _ in range(came)]
            assert [p for p in payloads if p is not None] == [b"%d" % i for i in range(sent)]
            assert large.statistics() == rtc.RoomEventsStatistics(0, 64, 0)

    run(main)


def test_only_the_library_makes_room_event_channels() -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        rtc.RoomEvents(8)
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Mine", (rtc.RoomEvents,), {})


def test_the_event_tables_name_real_room_events() -> None:
    """Each table is keyed by the RoomEvent oneof's field names: a misspelt key would never
    match, and its events would silently pass as OtherRoomEvent."""
    kinds = {field.name for field in room_pb2.RoomEvent.DESCRIPTOR.oneofs_by_name["message"].fields}
    for table in (_room._APPLY, _room_native._OWNERS, _room._TRANSIENT_EVENTS):
        assert set(table) <= kinds, set(table) - kinds
