"""Rooms end to end through a real livekit-server: state, audio, video, data, participant streams."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from tests.server import require_server
from tests.test_room_support import (
    BOUND, RATE, dominant_frequency, publishing_tone, room_name, run, two_rooms, wait_for_event,
    wait_until,
)


def test_connect_state_and_disconnect() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name()
        async with rtc.connect(server.url, server.token("alice", name, can_update_own_metadata=True)) as a:
            assert a.name == name
            assert a.connection_state == rtc.ConnectionState.CONNECTED
            assert a.local_participant.identity == "alice"
            events = a.events()
            async with rtc.connect(server.url, server.token("bob", name, can_update_own_metadata=True)) as b:
                joined = await wait_for_event(events, rtc.ParticipantConnected)
                assert joined.participant.identity == "bob"
                assert a.remote_participants["bob"] is joined.participant
                assert list(b.remote_participants) == ["alice"]
                await wait_until(lambda: bool(a.sid) and a.sid == b.sid)
            left = await wait_for_event(events, rtc.ParticipantDisconnected)
            assert left.participant.identity == "bob"
            assert not left.participant.connected
            assert "bob" not in a.remote_participants
        assert a.connection_state == rtc.ConnectionState.DISCONNECTED
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.set_metadata("late")

    run(main)


def test_events_iterator_ends_with_the_room() -> None:
    server = require_server()

    async def main() -> None:
        seen: list[rtc.RoomEvent] = []
        async with trio.open_nursery() as nursery:
            async with rtc.connect(server.url, server.token("solo", room_name(), can_update_own_metadata=True)) as room:
                events = room.events(capacity=8)
                probe = room.events()

                async def read() -> None:
                    async for event in events:
                        seen.append(event)

                nursery.start_soon(read)
                await room.local_participant.set_metadata("m1")
                await wait_for_event(probe, rtc.ParticipantMetadataChanged)
            # leaving the block ended the iterator: the reader finishes, so does the nursery
        changed = [e for e in seen if isinstance(e, rtc.ParticipantMetadataChanged)]
        assert [(e.participant.identity, e.metadata) for e in changed] == [("solo", "m1")]
        assert events.dropped == 0
        with pytest.raises(trio.EndOfChannel):
            events.receive_nowait()

    run(main)


def test_audio_tone_through_the_server() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events()
            async with publishing_tone(a, 440.0) as publication:
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                assert subscribed.participant.identity == "alice"
                assert subscribed.publication.sid == publication.sid
                assert subscribed.publication.source == rtc.TrackSource.MICROPHONE
                assert isinstance(subscribed.track, rtc.RemoteAudioTrack)
                chunks: list[np.ndarray] = []
                async with rtc.open_audio_stream(subscribed.track, sample_rate=24000,
                                                 num_channels=2) as stream:
                    with trio.fail_after(BOUND):
                        async for frame in stream:
                            assert frame.sample_rate == 24000 and frame.num_channels == 2
                            chunks.append(frame.data.copy())
                            if len(chunks) == 150:  # 1.5 s
                                break
                audio = np.concatenate(chunks[50:])  # skip the codec's start-up
                assert audio.shape[1] == 2
                heard = dominant_frequency(audio[:, 0], 24000)
                assert abs(heard - 440.0) < 15, heard
                assert np.abs(audio).max() > 2000  # really a tone, not silence

    run(main)


COLOUR = (200, 60, 30)


async def play_colour(source: rtc.VideoSource, width: int, height: int) -> None:
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[...] = (*COLOUR, 255)
    frame = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, rgba)
    index = 0
    while True:
        source.capture_frame(frame, timestamp_us=index * 33_333)
        index += 1
        await trio.sleep(1 / 30)


def test_video_colour_and_size_through_the_server() -> None:
    server = require_server()
    width, height = 320, 240

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events()
            async with rtc.open_video_source(width, height) as source:
                with rtc.LocalVideoTrack.create("cam", source) as track:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(play_colour, source, width, height)
                        await a.local_participant.publish_track(
                            track, rtc.TrackPublishOptions(source=rtc.TrackSource.CAMERA))
                        subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                        assert isinstance(subscribed.track, rtc.RemoteVideoTrack)
                        seen = 0
                        async with rtc.open_video_stream(subscribed.track,
                                                         format=rtc.VideoBufferType.RGBA) as stream:
                            with trio.fail_after(BOUND):
                                async for frame in stream:
                                    if (frame.width, frame.height) != (width, height):
                                        continue  # the encoder may start smaller
                                    seen += 1
                                    if seen == 10:
                                        pixels = frame.data.reshape(height, width, 4)
                                        break
                        nursery.cancel_scope.cancel()
            mean = pixels[..., :3].reshape(-1, 3).mean(axis=0)
            assert np.all(np.abs(mean - np.array(COLOUR)) < 25), mean

    run(main)


def test_data_round_trip_topic_sender_and_bad_destination() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events()
            await a.local_participant.publish_data(b"hello", topic="greetings")
            got = await wait_for_event(events, rtc.DataReceived)
            assert (got.payload, got.topic, got.sender_identity) == (b"hello", "greetings", "alice")
            assert got.participant is b.remote_participants["alice"]
            assert got.reliable
            await a.local_participant.publish_data("only bob", reliable=False,
                                                   destination_identities=["bob"])
            got = await wait_for_event(events, rtc.DataReceived)
            assert (got.payload, got.topic, got.reliable) == (b"only bob", "", False)
            with pytest.raises(ValueError, match="nobody"):
                await a.local_participant.publish_data(b"x", destination_identities=["nobody"])
            with pytest.raises(TypeError):
                await a.local_participant.publish_data(123)  # type: ignore[arg-type]
            with pytest.raises(TypeError):
                await a.local_participant.publish_data(b"x", destination_identities="bob")

    run(main)


def test_metadata_name_attributes_and_unpublish() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events()
            await a.local_participant.set_metadata("meta")
            await a.local_participant.set_name("Alice")
            await a.local_participant.set_attributes({"role": "speaker"})
            alice = b.remote_participants["alice"]
            await wait_until(lambda: (alice.metadata, alice.name, alice.attributes)
                             == ("meta", "Alice", {"role": "speaker"}))
            changed = await wait_for_event(events, rtc.ParticipantAttributesChanged)
            assert changed.changed == {"role": "speaker"}
            async with publishing_tone(a, 300.0) as publication:
                assert a.local_participant.track_publications[publication.sid] is publication
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                track = subscribed.track
                async with rtc.open_audio_stream(track) as stream:
                    await a.local_participant.unpublish_track(publication)
                    assert publication.sid not in a.local_participant.track_publications
                    with trio.fail_after(BOUND):
                        async for _ in stream:
                            pass  # ends once the track goes (natively, or as B applies it)
                gone = await wait_for_event(events, rtc.TrackUnpublished)
                assert gone.publication.sid == publication.sid
                assert publication.sid not in alice.track_publications
                assert track.closed  # B applied its unsubscription before the unpublication
                with pytest.raises(trio.ClosedResourceError):
                    async with rtc.open_audio_stream(track):
                        pass
            with pytest.raises(ValueError):
                await a.local_participant.unpublish_track("TR_nope")

    run(main)


def test_participant_stream_follows_republish_and_ends_when_they_leave() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name()
        async with rtc.connect(server.url, server.token("bob", name)) as b:
            events = b.events()
            async with rtc.connect(server.url, server.token("alice", name)) as a:
                alice = (await wait_for_event(events, rtc.ParticipantConnected)).participant
                async with rtc.open_audio_stream(participant=alice,
                                                 track_source=rtc.TrackSource.MICROPHONE) as stream:
                    for frequency in (440.0, 880.0):  # publish, unpublish, publish again
                        async with publishing_tone(a, frequency) as publication:
                            chunks = []
                            with trio.fail_after(BOUND):
                                async for frame in stream:
                                    chunks.append(frame.data[:, 0].copy())
                                    if len(chunks) == 150:
                                        break
                            heard = dominant_frequency(np.concatenate(chunks[75:]), RATE)
                            assert abs(heard - frequency) < 20, (frequency, heard)
                            await a.local_participant.unpublish_track(publication)
            await wait_for_event(events, rtc.ParticipantDisconnected)
            assert not alice.connected
            with pytest.raises(trio.ClosedResourceError):
                async with rtc.open_audio_stream(participant=alice,
                                                 track_source=rtc.TrackSource.MICROPHONE):
                    pass

    run(main)


def test_stream_ends_when_the_remote_leaves() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name()
        async with rtc.connect(server.url, server.token("bob", name)) as b:
            events = b.events()
            async with trio.open_nursery() as nursery:
                alice_gone = trio.Event()

                async def alice() -> None:
                    async with rtc.connect(server.url, server.token("alice", name)) as a:
                        async with publishing_tone(a, 500.0):
                            await alice_gone.wait()

                nursery.start_soon(alice)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                async with rtc.open_audio_stream(subscribed.track) as t_stream, \
                        rtc.open_audio_stream(participant=subscribed.participant,
                                              track_source=rtc.TrackSource.MICROPHONE) as p_stream:
                    await t_stream.receive()
                    alice_gone.set()
                    with trio.fail_after(BOUND):
                        async for _ in t_stream:
                            pass
                        async for _ in p_stream:
                            pass
            # The streams end with the track (natively, or as the room applies the
            # unsubscription); the room applies alice's departure from its own event.
            left = await wait_for_event(events, rtc.ParticipantDisconnected)
            assert left.participant is subscribed.participant and not left.participant.connected
            assert "alice" not in b.remote_participants

    run(main)


def test_bad_arguments_fail_before_anything_native() -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            async with rtc.connect(b"ws://x", "t"):  # type: ignore[arg-type]
                pass
        with pytest.raises(ValueError):
            async with rtc.connect("ftp://x", "t"):
                pass
        with pytest.raises(ValueError):
            async with rtc.connect("ws://x", ""):
                pass
        with pytest.raises(ValueError):
            async with rtc.connect("ws://x", "t", timeout=0):
                pass
        with pytest.raises(TypeError):
            async with rtc.connect("ws://x", "t", auto_subscribe=1):  # type: ignore[arg-type]
                pass
        with pytest.raises(TypeError):
            async with rtc.open_audio_stream():
                pass
        with pytest.raises(TypeError):
            async with rtc.open_audio_stream(participant=object()):  # type: ignore[arg-type]
                pass
        with pytest.raises(TypeError):
            async with rtc.open_video_stream(participant=None, track_source=rtc.TrackSource.CAMERA):
                pass
        with pytest.raises(TypeError):
            rtc.TrackPublishOptions(source=2)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            rtc.TrackPublishOptions(audio_max_bitrate=0)

    before = rtc.live_handles()
    run(main)
    assert rtc.live_handles() == before


def test_demo_room_mode_hears_the_others() -> None:
    server = require_server()

    async def main() -> None:
        name = room_name("demo")
        async with rtc.connect(server.url, server.token("tester", name)) as room:
            events = room.events()
            async with publishing_tone(room, 660.0):
                command = [sys.executable, "-m", "rtc_trio", "--url", server.url,
                           "--token", server.token("demo", name), "--seconds", "4",
                           "--frequency", "330"]
                async with trio.open_nursery() as nursery:
                    demo = await nursery.start(partial(trio.run_process, command,
                                                       stdout=subprocess.PIPE, check=False))
                    heard = await wait_for_event(events, rtc.TrackSubscribed)
                    assert heard.participant.identity == "demo"
                    output = b""
                    assert demo.stdout is not None
                    with trio.fail_after(BOUND):
                        async for chunk in demo.stdout:
                            output += chunk
                        await demo.wait()
        text = output.decode()
        assert demo.returncode == 0, text
        assert "joined room" in text and "subscribed to tester's microphone" in text, text
        pitches = [float(m) for m in re.findall(r"dominant\s+([\d.]+) Hz", text)]
        assert pitches and abs(pitches[-1] - 660.0) < 20, text

    run(main)


def test_manual_subscription() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server, auto_subscribe=False) as (a, b):
            events = b.events()
            async with publishing_tone(a, 440.0):
                published = await wait_for_event(events, rtc.TrackPublished)
                assert not published.publication.subscribed
                published.publication.set_subscribed(True)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                assert subscribed.publication is published.publication
                assert published.publication.subscribed
                published.publication.set_subscribed(False)
                await wait_for_event(events, rtc.TrackUnsubscribed)
                assert subscribed.track.closed and not published.publication.subscribed

    run(main)
