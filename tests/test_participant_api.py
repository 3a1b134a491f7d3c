"""The rest of a participant's API through a real livekit-server: DTMF, transcriptions,
subscribing by hand, and statistics."""

from __future__ import annotations

import pytest
import trio

import rtc_trio as rtc
from tests.server import require_server
from tests.test_room_support import (
    BOUND, publishing_tone, room_name, run, two_rooms, wait_for_event,
)


def test_dtmf_is_received_with_its_fields() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            events = b.events()
            with trio.fail_after(BOUND):
                await a.local_participant.publish_dtmf(code=11, digit="#")
            got = await wait_for_event(events, rtc.SipDtmfReceived)
            assert (got.code, got.digit, got.sender_identity) == (11, "#", "alice")
            assert got.participant is b.remote_participants["alice"]
            with trio.fail_after(BOUND):
                await a.local_participant.publish_dtmf(code=12)  # the digit comes from the code
            got = await wait_for_event(events, rtc.SipDtmfReceived)
            assert (got.code, got.digit) == (12, "A")

    run(main)


def test_transcription_is_received_with_its_segments() -> None:
    server = require_server()

    async def main() -> None:
        segments = [rtc.TranscriptionSegment("s1", "hello", 0, 480, True, "en"),
                    rtc.TranscriptionSegment("s2", "wor", 480, 700, False, "en")]
        name = room_name()  # livekit-server forwards transcriptions from agents only
        async with rtc.connect(server.url, server.token("alice", name, agent=True)) as a, \
                rtc.connect(server.url, server.token("bob", name)) as b:
            events = b.events()
            async with publishing_tone(a, 300.0) as publication:
                await wait_for_event(events, rtc.TrackSubscribed)
                with trio.fail_after(BOUND):
                    await a.local_participant.publish_transcription(
                        track_sid=publication.sid, segments=segments)
                got = await wait_for_event(events, rtc.TranscriptionReceived)
        assert got.segments == tuple(segments)
        assert (got.participant_identity, got.track_sid) == ("alice", publication.sid)
        assert got.participant is not None and got.participant.identity == "alice"
        assert got.publication is not None and got.publication.sid == publication.sid

    run(main)


def test_set_subscribed_and_the_stats_of_a_live_track() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server, auto_subscribe=False) as (a, b):
            events = b.events()
            async with publishing_tone(a, 440.0) as local_publication:
                published = await wait_for_event(events, rtc.TrackPublished)
                publication = published.publication
                assert not publication.subscribed
                publication.set_subscribed(True)
                subscribed = await wait_for_event(events, rtc.TrackSubscribed)
                assert subscribed.publication is publication and publication.subscribed
                track = subscribed.track
                with trio.fail_after(BOUND):  # packets flow: the receiving side counts them
                    while True:
                        stats = await track.get_stats()
                        if any(s.packets > 0 for s in stats.inbound):
                            break
                        await trio.sleep(0.2)
                [inbound] = stats.inbound
                assert (inbound.kind, inbound.codec) == ("audio", "audio/opus")
                assert stats.raw and inbound.bytes > 0
                local_track = local_publication.track
                assert local_track is not None
                with trio.fail_after(BOUND):
                    sent = await local_track.get_stats()
                    session = await a.get_stats()
                assert any(s.packets > 0 for s in sent.outbound)
                assert any(s.kind == "audio" and s.packets > 0 for s in session.publisher.outbound)

                publication.set_subscribed(False)
                gone = await wait_for_event(events, rtc.TrackUnsubscribed)
                assert gone.track is track and track.closed and not publication.subscribed
                with pytest.raises(trio.ClosedResourceError):
                    await track.get_stats()
                publication.set_subscribed(True)
                again = await wait_for_event(events, rtc.TrackSubscribed)
                assert again.publication is publication and again.track is not track

    run(main)


def test_bad_input_and_closed_rooms() -> None:
    server = require_server()

    async def main() -> None:
        async with two_rooms(server) as (a, b):
            lp = a.local_participant
            for kwargs, error in (({"code": 16, "digit": "1"}, ValueError),
                                  ({"code": -1, "digit": "1"}, ValueError),
                                  ({"code": "1", "digit": "1"}, TypeError),
                                  ({"code": True, "digit": "1"}, TypeError),
                                  ({"code": 1, "digit": "12"}, ValueError),
                                  ({"code": 1, "digit": ""}, ValueError),
                                  ({"code": 1, "digit": "2"}, ValueError),  # code 1 is "1"
                                  ({"code": 11, "digit": "*"}, ValueError),
                                  ({"code": 1, "digit": 1}, TypeError)):
                with pytest.raises(error):
                    await lp.publish_dtmf(**kwargs)  # type: ignore[arg-type]
            for kwargs, error in (({"track_sid": 1, "segments": []}, TypeError),
                                  ({"track_sid": "", "segments": "text"}, TypeError),
                                  ({"track_sid": "", "segments": [("id", "text")]}, TypeError),
                                  ({"track_sid": "", "segments": [], "participant_identity": 3}, TypeError),
                                  ({"track_sid": "", "segments": [], "participant_identity": "nobody"},
                                   ValueError)):
                with pytest.raises(error):
                    await lp.publish_transcription(**kwargs)  # type: ignore[arg-type]
            for args, error in ((("id", "t", -1), ValueError), ((1, "t"), TypeError),
                                (("id", "t", 0, 0, 1), TypeError), (("id", None), TypeError)):
                with pytest.raises(error):
                    rtc.TranscriptionSegment(*args)  # type: ignore[arg-type]
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.publish_dtmf(code=1, digit="1")
        with pytest.raises(trio.ClosedResourceError):
            await a.local_participant.publish_transcription(track_sid="", segments=[])
        with pytest.raises(trio.ClosedResourceError):
            await a.get_stats()

    run(main)
