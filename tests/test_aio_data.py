"""Data streams, RPC and the rest of a participant's API from asyncio (rtc_trio.aio), through a
real livekit-server: the same behaviour and error types as in trio, asyncio RPC handlers run as
asyncio tasks of the serve block, and Task.cancel() leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator, TypeVar

import numpy as np
import pytest
import trio

import rtc_trio
import rtc_trio.aio as rtc
from tests.helpers import living_tasks
from tests.server import TestServer, require_server
from tests.test_aio_room import eventually, next_event, play, run, settled_to
from tests.test_room_support import BOUND, RATE, room_name

T = TypeVar("T")


@contextlib.asynccontextmanager
async def two_rooms(server: TestServer, **options: object) -> AsyncIterator[tuple[rtc.Room, rtc.Room]]:
    """``alice`` and ``bob`` in one fresh room, from asyncio."""
    name = room_name("aio-data")
    async with rtc.connect(server.url, server.token("alice", name), **options) as a:  # type: ignore[arg-type]
        async with rtc.connect(server.url, server.token("bob", name), **options) as b:  # type: ignore[arg-type]
            await eventually(lambda: "bob" in a.remote_participants)
            yield a, b


async def bounded(awaitable: asyncio.Future[T] | asyncio.Task[T] | "asyncio.coroutines.Coroutine[object, object, T]") -> T:
    return await asyncio.wait_for(awaitable, BOUND)


def test_text_round_trip_with_sender_identity_and_a_writer() -> None:
    server = require_server()
    text = "héllo wörld, " * 5_000  # 70 kB of UTF-8: several packets

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.text_streams("chat") as chat:
                assert isinstance(chat, rtc.IncomingStreams)
                sent = await bounded(a.local_participant.send_text(
                    text, topic="chat", attributes={"lang": "fr"}, destination_identities=["bob"]))
                assert isinstance(sent, rtc.TextStreamInfo)
                reader = await bounded(chat.receive())
                assert isinstance(reader, rtc.TextStreamReader)
                assert (reader.info.id, reader.info.topic) == (sent.id, "chat")
                assert reader.info.sender_identity == "alice" == sent.sender_identity
                assert reader.info.attributes == {"lang": "fr"}
                assert await bounded(reader.read_all()) == text

                async with a.local_participant.stream_text(topic="chat") as writer:
                    assert isinstance(writer, rtc.TextStreamWriter)
                    for part in ("one ", "two ", "three"):
                        await bounded(writer.write(part))
                reader = await bounded(chat.receive())
                assert reader.info.id == writer.info.id
                assert "".join([c async for c in reader]) == "one two three"

                with pytest.raises(KeyError):  # the block ends by an exception: an error for bob
                    async with a.local_participant.stream_text(topic="chat") as writer:
                        await bounded(writer.write("half"))
                        raise KeyError("boom")
                reader = await bounded(chat.receive())
                with pytest.raises(rtc.StreamError):
                    await bounded(reader.read_all())

                started = asyncio.Event()

                async def write_and_hang() -> None:
                    async with a.local_participant.stream_text(topic="chat") as writer:
                        await writer.write("half")
                        started.set()
                        await asyncio.sleep(3600)

                writing = asyncio.create_task(write_and_hang())
                reader = await bounded(chat.receive())
                assert await bounded(reader.receive()) == "half"
                await bounded(started.wait())
                writing.cancel()  # the block ends by Task.cancel(): an error for bob too
                with pytest.raises(asyncio.CancelledError):
                    await bounded(writing)
                with pytest.raises(rtc.StreamError):
                    await bounded(reader.read_all())
                assert chat.statistics().waiting == 0

                with pytest.raises(ValueError, match="nobody"):
                    await a.local_participant.send_text("x", destination_identities=["nobody"])
                with pytest.raises(TypeError):
                    await a.local_participant.send_text(b"not text")  # type: ignore[arg-type]
                with pytest.raises(trio.BusyResourceError):
                    async with b.text_streams("chat"):
                        pytest.fail("one block per topic")
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.send_text("late")

    run(main)


def test_byte_stream_and_file_byte_exact(tmp_path: Path) -> None:
    server = require_server()
    blob = np.random.default_rng(3).integers(0, 256, 600_000, dtype=np.uint8).tobytes()
    path = tmp_path / "blob.bin"
    path.write_bytes(blob[:100_000])

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            async with b.byte_streams("files") as files:
                async with a.local_participant.stream_bytes(
                        topic="files", name="blob", total_size=len(blob)) as writer:
                    assert isinstance(writer, rtc.ByteStreamWriter)
                    for start in range(0, len(blob), 200_000):
                        await bounded(writer.write(blob[start:start + 200_000]))
                reader = await bounded(files.receive())
                assert isinstance(reader, rtc.ByteStreamReader)
                assert (reader.info.name, reader.info.total_size) == ("blob", len(blob))
                assert reader.info.sender_identity == "alice"
                assert await bounded(reader.read_all()) == blob

                info = await bounded(a.local_participant.send_file(path, topic="files"))
                assert isinstance(info, rtc.ByteStreamInfo)
                reader = await bounded(files.receive())
                assert reader.info.name == "blob.bin"
                assert await bounded(reader.read_all()) == blob[:100_000]
                with pytest.raises(FileNotFoundError):
                    await a.local_participant.send_file(tmp_path / "missing", topic="files")

    run(main)


def test_rpc_round_trip_and_errors_with_asyncio_handlers() -> None:
    server = require_server()

    async def main() -> None:
        seen: list[rtc.RpcInvocation] = []

        async def echo(call: rtc.RpcInvocation) -> str:
            await asyncio.sleep(0.01)  # asyncio code: works in an asyncio task only
            seen.append(call)
            return f"{call.caller_identity}:{call.payload[::-1]}"

        async def refuse(call: rtc.RpcInvocation) -> str:
            await asyncio.sleep(0)
            raise rtc.RpcError(4001, "unknown city")

        async def crash(call: rtc.RpcInvocation) -> str:
            await asyncio.sleep(0)
            raise ValueError("a bug")

        async def cancel_itself(call: rtc.RpcInvocation) -> str:
            raise asyncio.CancelledError  # its own, not the block's: an error like any other

        handlers = {"echo": echo, "refuse": refuse, "crash": crash, "cancel": cancel_itself}
        async with two_rooms(server) as (a, b):
            lp = b.local_participant
            async with a.local_participant.serve_rpc(handlers):
                answer = await bounded(lp.perform_rpc(
                    destination_identity="alice", method="echo", payload="héllo", response_timeout=8.0))
                assert answer == "bob:olléh"
                [call] = seen
                assert (call.method, call.caller_identity, call.payload) == ("echo", "bob", "héllo")
                for method, code in (("refuse", 4001), ("crash", rtc.RpcError.APPLICATION_ERROR),
                                     ("cancel", rtc.RpcError.APPLICATION_ERROR),
                                     ("nothing", rtc.RpcError.UNSUPPORTED_METHOD)):
                    with pytest.raises(rtc.RpcError) as failed:
                        await bounded(lp.perform_rpc(destination_identity="alice", method=method, payload="x"))
                    assert failed.value.code == code, (method, failed.value)
                assert failed.type is rtc_trio.RpcError
                assert await bounded(lp.perform_rpc(  # the room and the block live on
                    destination_identity="alice", method="echo", payload="ab")) == "bob:ba"
                with pytest.raises(ValueError):
                    async with a.local_participant.serve_rpc({"echo": echo}):
                        pytest.fail("a method is served by one block at a time")
            with pytest.raises(ValueError):
                await lp.perform_rpc(destination_identity="nobody", method="echo", payload="")
            with pytest.raises(ValueError):
                await lp.perform_rpc(destination_identity="alice", method="echo",
                                     payload="x" * (rtc.MAX_RPC_PAYLOAD + 1))
            with pytest.raises(TypeError):
                async with a.local_participant.serve_rpc({"echo": "not callable"}):  # type: ignore[dict-item]
                    pytest.fail("refused")

    run(main)


def test_serve_block_exit_cancels_a_running_asyncio_handler() -> None:
    server = require_server()

    async def main() -> None:
        started = asyncio.Event()
        cancelled: list[bool] = []

        async def stuck(call: rtc.RpcInvocation) -> str:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise
            return ""

        async with two_rooms(server) as (a, b):
            async def serve() -> None:
                async with a.local_participant.serve_rpc({"stuck": stuck}):
                    await started.wait()

            serving = asyncio.create_task(serve())
            with pytest.raises(rtc.RpcError) as ended:
                await bounded(b.local_participant.perform_rpc(
                    destination_identity="alice", method="stuck", payload=""))
            await bounded(serving)
            assert cancelled == [True]
            assert ended.value.code == rtc.RpcError.APPLICATION_ERROR
            assert "serve_rpc block ended" in ended.value.message

    run(main)


def test_dtmf_is_received_as_a_typed_event_and_stats() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server, auto_subscribe=False) as (a, b):
            events = b.events()
            await bounded(a.local_participant.publish_dtmf(code=11, digit="#"))
            got = await next_event(events, rtc.SipDtmfReceived)
            assert (got.code, got.digit, got.sender_identity) == (11, "#", "alice")
            assert got.participant is b.remote_participants["alice"]
            with pytest.raises(ValueError):
                await a.local_participant.publish_dtmf(code=16, digit="1")

            async with rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source:
                with rtc.LocalAudioTrack.create("tone", source) as track:
                    await bounded(a.local_participant.publish_track(
                        track, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE)))
                    player = asyncio.create_task(play(source, 440.0))
                    try:
                        published = await next_event(events, rtc_trio.TrackPublished)
                        assert not published.publication.subscribed  # a remote publication, by hand
                        published.publication.set_subscribed(True)
                        subscribed = await next_event(events, rtc_trio.TrackSubscribed)

                        async def counted() -> rtc.StatsReport:
                            while True:
                                stats = await rtc.track_stats(subscribed.track)
                                if any(s.packets > 0 for s in stats.inbound):
                                    return stats
                                await asyncio.sleep(0.2)

                        stats = await bounded(counted())
                        assert stats.inbound[0].codec == "audio/opus"
                        session = await bounded(a.get_stats())
                        assert isinstance(session, rtc.SessionStats)
                        assert any(s.kind == "audio" and s.packets > 0 for s in session.publisher.outbound)
                    finally:
                        player.cancel()

    run(main)


def test_task_cancel_mid_perform_rpc_and_mid_read_leaves_nothing_behind() -> None:
    server = require_server()

    async def main() -> None:
        baseline = rtc.live_handles()
        handler_cancelled: list[bool] = []
        started = asyncio.Event()

        async def slow(call: rtc.RpcInvocation) -> str:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                handler_cancelled.append(True)
                raise
            return ""

        async with two_rooms(server) as (a, b):
            async with a.local_participant.serve_rpc({"slow": slow}):
                calling = asyncio.create_task(b.local_participant.perform_rpc(
                    destination_identity="alice", method="slow", payload="", response_timeout=600))
                await bounded(started.wait())
                running = living_tasks()  # the call's trio task among them
                calling.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await bounded(calling)
                await eventually(lambda: living_tasks() == running - 1)  # the call was abandoned
                assert handler_cancelled == []  # the callee's handler runs on until its block ends
            assert handler_cancelled == [True]

            async with b.text_streams("chat") as chat:
                waiting = asyncio.create_task(chat.receive())  # nothing sent yet: waits
                await asyncio.sleep(0.05)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await bounded(waiting)
                async with a.local_participant.stream_text(topic="chat") as writer:
                    await bounded(writer.write("first"))
                    reader = await bounded(chat.receive())  # the channel still works
                    assert await bounded(reader.receive()) == "first"
                    reading = asyncio.create_task(reader.receive())  # waits for more
                    await asyncio.sleep(0.05)
                    reading.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await bounded(reading)
                    await bounded(writer.write("second"))
                assert await bounded(reader.read_all()) == "second"
        await eventually(settled_to(baseline))

    run(main)
