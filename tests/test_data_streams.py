"""Text and byte streams end to end through a real livekit-server: alice sends, bob receives."""

from __future__ import annotations

import json
import os
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _data_streams, _handles, _native, _router
from tests.server import TestServer, require_server
from tests.test_room_support import BOUND, room_name, run, two_rooms, wait_until


async def next_reader(incoming: rtc.IncomingStreams[rtc.TextStreamReader]) -> rtc.TextStreamReader:
    with trio.fail_after(BOUND):
        return await incoming.receive()


async def next_byte_reader(incoming: rtc.IncomingStreams[rtc.ByteStreamReader]) -> rtc.ByteStreamReader:
    with trio.fail_after(BOUND):
        return await incoming.receive()


def test_text_round_trip_with_topic_attributes_and_sender() -> None:
    server = require_server()
    text = "héllo wörld, " * 20_000  # 280 kB of UTF-8: many packets

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events(capacity=4096)
            async with b.text_streams("chat") as chat, b.text_streams("other") as other:
                sent = await a.local_participant.send_text(
                    text, topic="chat", attributes={"lang": "fr"}, destination_identities=["bob"])
                reader = await next_reader(chat)
                assert reader.info.id == sent.id
                assert reader.info.topic == "chat" and sent.topic == "chat"
                assert reader.info.sender_identity == "alice" == sent.sender_identity
                assert reader.info.attributes == {"lang": "fr"}
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == text
                with trio.fail_after(BOUND), pytest.raises(trio.EndOfChannel):
                    await reader.receive()  # ended well: not an error

                async with a.local_participant.stream_text(topic="other", attributes={"n": "3"}) as writer:
                    for part in ("one ", "two ", "three"):
                        await writer.write(part)
                reader = await next_reader(other)
                assert reader.info.id == writer.info.id
                assert (reader.info.topic, reader.info.sender_identity) == ("other", "alice")
                with trio.fail_after(BOUND):
                    assert "".join([chunk async for chunk in reader]) == "one two three"
                assert chat.statistics().waiting == 0  # routed by topic: nothing went to chat
                assert not chat._given and not other._given  # ended streams are let go
            # routed, not broadcast: neither the streams nor their raw packets reach the events
            others = [e.name for e in drain(events) if isinstance(e, rtc.OtherRoomEvent)]
            assert not [name for name in others if "stream" in name], others

    run(main)


def drain(events: rtc.RoomEvents) -> list[rtc.RoomEvent]:
    found = []
    while True:
        try:
            found.append(events.receive_nowait())
        except trio.WouldBlock:
            return found


def test_five_megabyte_byte_stream_and_a_file_arrive_byte_exact(tmp_path: Path) -> None:
    server = require_server()
    data = os.urandom(5 * 1024 * 1024)
    picture = tmp_path / "picture.png"
    picture.write_bytes(os.urandom(300_000))

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.byte_streams("files") as files:
                async with a.local_participant.stream_bytes(
                        topic="files", name="blob.bin", total_size=len(data)) as writer:
                    for start in range(0, len(data), 1024 * 1024):
                        await writer.write(data[start:start + 1024 * 1024])
                reader = await next_byte_reader(files)
                assert (reader.info.name, reader.info.total_size) == ("blob.bin", len(data))
                assert reader.info.mime_type == "application/octet-stream"
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == data

                sent = await a.local_participant.send_file(picture, topic="files")
                reader = await next_byte_reader(files)
                assert reader.info.id == sent.id
                assert (reader.info.name, reader.info.mime_type) == ("picture.png", "image/png")
                assert reader.info.total_size == 300_000
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == picture.read_bytes()

    run(main)


def test_a_writer_ended_by_cancellation_or_error_is_an_error_for_the_receiver() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("t") as incoming:
                with trio.CancelScope() as scope:
                    async with a.local_participant.stream_text(topic="t") as writer:
                        await writer.write("the first half")
                        scope.cancel()
                        await writer.write("never sent")
                assert scope.cancelled_caught
                reader = await next_reader(incoming)
                with trio.fail_after(BOUND):
                    assert await reader.receive() == "the first half"
                    with pytest.raises(rtc.StreamError, match="cancelled"):
                        await reader.receive()
                with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="cancelled"):
                    await reader.read_all()  # it stays failed

                with pytest.raises(KeyError):
                    async with a.local_participant.stream_text(topic="t") as writer:
                        await writer.write("some")
                        raise KeyError("oops")
                reader = await next_reader(incoming)
                with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="raised KeyError"):
                    await reader.read_all()

    run(main)


def test_a_writer_cancelled_while_opening_is_an_error_for_the_receiver(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled once its open request went out, the stream opens anyway: the room closes it
    with an error when the reply comes, so the receiver sees a StreamError, not a success."""
    server = require_server()
    forward = _native.request
    scopes: list[trio.CancelScope] = []

    def cancelling(req: Any) -> Any:
        reply = forward(req)
        if req.WhichOneof("message") in ("text_stream_open", "byte_stream_open") and scopes:
            scopes.pop().cancel()  # the request went out; its caller is cancelled before the reply
        return reply

    monkeypatch.setattr(_native, "request", cancelling)

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("t") as texts, b.byte_streams("t") as blobs:
                for open_writer, incoming in ((a.local_participant.stream_text, texts),
                                              (a.local_participant.stream_bytes, blobs)):
                    with trio.CancelScope() as scope:
                        scopes.append(scope)
                        async with open_writer(topic="t"):
                            raise AssertionError("the open was cancelled")
                    assert scope.cancelled_caught
                    with trio.fail_after(BOUND):
                        reader = await incoming.receive()
                    with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="cancelled"):
                        await reader.read_all()

    run(main)


def test_a_cancelled_read_all_keeps_what_it_read() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("t") as incoming:
                async with a.local_participant.stream_text(topic="t") as writer:
                    await writer.write("first ")
                    reader = await next_reader(incoming)
                    with trio.CancelScope() as scope:
                        async with trio.open_nursery() as nursery:
                            async def cancel_once_read() -> None:
                                await wait_until(lambda: bool(reader._partial))
                                scope.cancel()

                            nursery.start_soon(cancel_once_read)
                            await reader.read_all()
                    assert scope.cancelled_caught
                    await writer.write("second")
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == "first second"

    run(main)


def test_a_byte_stream_holds_to_the_size_it_announced() -> None:
    """Writing past ``total_size`` is a ValueError (nothing sent); ending short of it is an
    error for both sides, never a short success."""
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.byte_streams("t") as incoming:
                async with a.local_participant.stream_bytes(topic="t", total_size=4) as writer:
                    await writer.write(b"abc")
                    with pytest.raises(ValueError, match="announced 4 bytes"):
                        await writer.write(b"de")
                    await writer.write(b"d")
                reader = await next_byte_reader(incoming)
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == b"abcd"
                with pytest.raises(rtc.StreamError, match="wrote 3 of the 4 bytes"):
                    async with a.local_participant.stream_bytes(topic="t", total_size=4) as writer:
                        await writer.write(b"abc")
                reader = await next_byte_reader(incoming)
                with trio.fail_after(BOUND), pytest.raises(rtc.StreamError):  # the native side
                    await reader.read_all()                                   # says it too

    run(main)


def test_a_cancelled_write_went_out_or_broke_the_stream() -> None:
    """A write cancelled before its request went out leaves the writer usable; one cancelled
    while waiting for the native side breaks it: the stream ends with an error, not short."""
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("t") as incoming:
                async with a.local_participant.stream_text(topic="t") as writer:
                    with trio.CancelScope() as early:
                        early.cancel()
                        await writer.write("never sent")
                    await writer.write("sent")
                reader = await next_reader(incoming)
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == "sent"

                with pytest.raises(rtc.StreamError, match="write was cancelled"):
                    async with a.local_participant.stream_text(topic="t") as writer:
                        async with trio.open_nursery() as nursery:
                            waiting = trio.CancelScope()

                            async def cancel_once_sent() -> None:
                                while not writer._writing:  # set once the request went out
                                    await trio.sleep(0)
                                waiting.cancel()

                            nursery.start_soon(cancel_once_sent)
                            with waiting:
                                await writer.write("x" * 1_000_000)
                        assert waiting.cancelled_caught
                        with pytest.raises(trio.BrokenResourceError):
                            await writer.write("more")
                reader = await next_reader(incoming)
                with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="write was cancelled"):
                    await reader.read_all()

    run(main)


def test_an_unread_reader_is_bounded_and_blocks_no_other() -> None:
    server = require_server()
    big = os.urandom(1024 * 1024)
    limit = 64 * 1024

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.byte_streams("x", buffer_bytes=limit) as incoming:
                async with a.local_participant.stream_bytes(topic="x") as writer:
                    await writer.write(big)  # chunked natively: 15 kB packets
                await a.local_participant.send_bytes(b"small", topic="x")
                unread = await next_byte_reader(incoming)
                second = await next_byte_reader(incoming)
                with trio.fail_after(BOUND):
                    assert await second.read_all() == b"small"  # not held up by the first
                kept = b""
                with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="fell behind"):
                    async for chunk in unread:
                        kept += chunk
                assert kept == big[:len(kept)]  # what it kept is the stream's start, in order
                assert len(kept) <= limit
            assert not _data_streams._inflows  # nothing routed any more

    run(main)


def test_readers_dropped_unread_are_released() -> None:
    """Readers taken and dropped without being read or closed are not held for the block's
    lifetime: their routes and buffered chunks go at the listener's next use."""
    server = require_server()
    streams = 30

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("t", capacity=64) as incoming:
                for i in range(streams):
                    await a.local_participant.send_text(f"{i}" + "x" * 20_000, topic="t")
                keys = []
                for _ in range(streams):
                    reader = await next_reader(incoming)  # taken, then ignored
                    keys.append(reader._key)
                del reader
                with pytest.raises(trio.WouldBlock):
                    incoming.receive_nowait()
                assert len(incoming._given) == 0
                assert not [key for key in keys if key in _router._routes]
                await a.local_participant.send_text("read", topic="t")  # the listener lives on
                with trio.fail_after(BOUND):
                    assert await (await next_reader(incoming)).read_all() == "read"

    run(main)


def test_waiting_readers_are_bounded_and_unheard_topics_released() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            baseline = rtc.live_handles()
            async with AsyncExitStack() as outliving:
                async with b.text_streams("busy", capacity=1) as incoming:
                    await a.local_participant.send_text("nobody listens", topic="elsewhere")
                    infos = [await a.local_participant.send_text(f"message {i}", topic="busy")
                             for i in range(3)]
                    await wait_until(lambda: incoming.dropped == 2)
                    reader = await next_reader(incoming)
                    assert reader.info.id == infos[-1].id  # the newest stayed
                    with trio.fail_after(BOUND):
                        assert await reader.read_all() == "message 2"
                    assert incoming.statistics() == rtc.IncomingStreamsStatistics(0, 1, 2)
                    # the stream on "elsewhere" opened before these: its reader was released
                    assert rtc.live_handles() == baseline

                    writer = await outliving.enter_async_context(
                        a.local_participant.stream_text(topic="busy"))
                    await writer.write("still running")
                    running = await next_reader(incoming)
                    with trio.fail_after(BOUND):
                        assert await running.receive() == "still running"
                # the block is over: the reader of a stream still running is closed with it
                with trio.fail_after(BOUND), pytest.raises(trio.ClosedResourceError):
                    await running.receive()
                assert not _data_streams._inflows

    run(main)


def test_the_sender_leaving_mid_stream_is_an_error_for_the_receiver() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name()
        async with rtc.connect(server.url, server.token("bob", name)) as b:
            async with b.text_streams("t") as incoming:
                with pytest.raises(trio.ClosedResourceError, match="room closed before"):
                    async with AsyncExitStack() as outliving:
                        async with rtc.connect(server.url, server.token("alice", name)) as a:
                            # bob must know alice: the server tells others of a non-publisher's
                            # join and leave in batches, and a stay inside one is never seen
                            await wait_until(lambda: "alice" in b.remote_participants)
                            writer = await outliving.enter_async_context(
                                a.local_participant.stream_text(topic="t"))
                            await writer.write("hello")
                            reader = await next_reader(incoming)
                            with trio.fail_after(BOUND):
                                assert await reader.receive() == "hello"
                        # alice left with her stream open
                        with trio.fail_after(BOUND), pytest.raises(rtc.StreamError, match="alice"):
                            await reader.receive()
                # the writer's handle went with its block, not with the writer (still referenced)
                assert not _handles.is_held(writer._handle.id)

    run(main)


def remove_participant(server: TestServer, room: str, identity: str) -> None:
    """RoomService.RemoveParticipant (blocking): the server disconnects ``identity``."""
    token = server.token("rtc-trio-tests-admin", room, room_admin=True)
    request = urllib.request.Request(
        f"{server.http_url}/twirp/livekit.RoomService/RemoveParticipant",
        data=json.dumps({"room": room, "identity": identity}).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the namespace only
    with opener.open(request, timeout=10):
        pass


def test_the_receiving_room_disconnected_fails_running_readers_and_ends_listening(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A running reader fails when the room disconnects, even when the native side never ends
    its stream (its end is held back here); a stream whose end was buffered stays a success."""
    server = require_server()
    held_back: set[int] = set()
    forward = _native._event_handlers["text_stream_reader_event"]

    def holding_back(event: Any) -> None:  # native threads
        if event.reader_handle not in held_back or event.WhichOneof("detail") == "chunk_received":
            forward(event)

    monkeypatch.setitem(_native._event_handlers, "text_stream_reader_event", holding_back)

    async def main() -> None:
        name = room_name()
        async with rtc.connect(server.url, server.token("alice", name)) as a, AsyncExitStack() as stack:
            async with rtc.connect(server.url, server.token("bob", name)) as b:
                await wait_until(lambda: "bob" in a.remote_participants)
                async with b.text_streams("t") as incoming:
                    await a.local_participant.send_text("complete", topic="t")
                    complete = await next_reader(incoming)
                    await wait_until(lambda: complete._key not in _data_streams._inflows)  # its end came
                    writer = await stack.enter_async_context(a.local_participant.stream_text(topic="t"))
                    await writer.write("hi")
                    reader = await next_reader(incoming)
                    held_back.add(reader._key)
                    with trio.fail_after(BOUND):
                        assert await reader.receive() == "hi"
                    await trio.to_thread.run_sync(remove_participant, server, name, "bob")
                    with trio.fail_after(BOUND):
                        with pytest.raises(rtc.StreamError, match="the room disconnected"):
                            await reader.receive()
                        with pytest.raises(trio.EndOfChannel):
                            await incoming.receive()
                        assert await complete.read_all() == "complete"

    run(main)


async def unblock_fifo(path: Path) -> None:
    """After BOUND, let an open of the FIFO ``path`` for reading return (a writer appears)."""
    await trio.sleep(BOUND)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def test_bad_input_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            lp = a.local_participant
            async with b.text_streams("t") as incoming, b.byte_streams("t") as byte_incoming:
                with pytest.raises(TypeError):
                    await lp.send_text(b"bytes", topic="t")  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await lp.send_bytes("text", topic="t")  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await lp.send_text("x", topic=5)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await lp.send_text("x", topic="t", attributes={"a": 1})  # type: ignore[dict-item]
                with pytest.raises(TypeError):
                    await lp.send_text("x", topic="t", destination_identities="bob")
                with pytest.raises(ValueError, match="nobody"):
                    await lp.send_text("x", topic="t", destination_identities=["bob", "nobody"])
                with pytest.raises(ValueError, match="nobody"):
                    lp.stream_text(topic="t", destination_identities=["nobody"])
                with pytest.raises(ValueError):
                    lp.stream_bytes(topic="t", total_size=-1)
                room = _data_streams.MAX_HEADER_BYTES - _data_streams._HEADER_FIXED
                for kwargs in ({"topic": "t" * room}, {"attributes": {"k": "v" * room}}):
                    with pytest.raises(ValueError, match="header"):
                        await lp.send_text("x", **kwargs)  # type: ignore[arg-type]
                with pytest.raises(ValueError, match="header"):
                    lp.stream_bytes(topic="t", name="n" * room)
                with pytest.raises(ValueError, match="header"):
                    lp.stream_text(topic="t", attributes={f"k{i}": "v" * 200 for i in range(100)})
                with trio.fail_after(BOUND):  # the largest header refused natively is not refused here
                    await lp.send_text("x", topic="u" * (room - 3))  # 3: the topic's tag and length
                with pytest.raises(ValueError, match="header"):
                    await lp.send_text("x", topic="u" * (room - 2))
                with pytest.raises(FileNotFoundError):
                    await lp.send_file(tmp_path / "missing", topic="t")
                with pytest.raises(IsADirectoryError):
                    await lp.send_file(tmp_path, topic="t")
                os.mkfifo(tmp_path / "fifo")
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(unblock_fifo, tmp_path / "fifo")  # should it block
                    with pytest.raises(ValueError, match="not a regular file"):
                        await lp.send_file(tmp_path / "fifo", topic="t")
                    nursery.cancel_scope.cancel()
                with pytest.raises(TypeError):
                    await lp.send_file(b"/etc/hostname", topic="t")  # type: ignore[arg-type]
                with trio.CancelScope() as cancelled:  # cancelled before it went out
                    cancelled.cancel()
                    await lp.send_text("cancelled", topic="t")
                async with lp.stream_text(topic="t") as writer:
                    with pytest.raises(TypeError):
                        await writer.write(b"bytes")  # type: ignore[arg-type]
                    await writer.write("good")
                with pytest.raises(trio.ClosedResourceError):
                    await writer.write("late")
                with pytest.raises(ValueError):
                    async with b.text_streams("u", capacity=0):
                        pass
                with pytest.raises(trio.BusyResourceError):
                    async with b.text_streams("t"):
                        pass
                # none of the refused streams went out: the first to arrive is the good one
                reader = await next_reader(incoming)
                with trio.fail_after(BOUND):
                    assert await reader.read_all() == "good"
                assert incoming.statistics().waiting == 0
                assert byte_incoming.statistics().waiting == 0
        with pytest.raises(trio.ClosedResourceError):
            await lp.send_text("after", topic="t")
        with pytest.raises(trio.ClosedResourceError):
            async with b.text_streams("t"):
                pass

    run(main)
