"""Audio through source -> local track -> stream, against the real native library."""

from __future__ import annotations

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from tests.helpers import audio_loopback, numbered_frame


async def _collect(stream: rtc.AudioStream, count: int) -> list[rtc.AudioFrame]:
    frames = []
    async for frame in stream:
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


@pytest.mark.parametrize("channels", [1, 2])
async def test_exact_round_trip_keeps_every_sample_in_order(channels: int) -> None:
    count = 400
    async with audio_loopback(channels=channels, capacity=count) as (source, _, stream):
        sent = [numbered_frame(i, channels=channels) for i in range(count)]
        async with trio.open_nursery() as nursery:
            received: list[rtc.AudioFrame] = []

            async def consume() -> None:
                received.extend(await _collect(stream, count))

            nursery.start_soon(consume)
            for frame in sent:
                await source.capture_frame(frame)
        assert stream.dropped == 0
        assert len(received) == count
        for want, got in zip(sent, received):
            assert got.data.dtype == np.int16
            assert got.data.shape == (480, channels)
            assert got.sample_rate == 48000 and got.num_channels == channels
            np.testing.assert_array_equal(got.data.reshape(-1), want.data.reshape(-1))


async def test_queued_source_splits_long_frames_into_exact_10ms_frames() -> None:
    async with audio_loopback(queue_size_ms=100, capacity=200) as (source, _, stream):
        sent = [numbered_frame(i, samples=1440) for i in range(10)]  # 30 ms each
        for frame in sent:
            await source.capture_frame(frame)
        received = await _collect(stream, 30 + 5)
    assert all(f.samples_per_channel == 480 for f in received)
    while not received[0].data.any():  # the source plays silence until its queue holds audio
        del received[0]
    received = received[:30]
    np.testing.assert_array_equal(
        np.concatenate([f.data.reshape(-1) for f in received]),
        np.concatenate([f.data for f in sent]),
    )


async def test_frame_size_ms_sets_received_frame_length() -> None:
    async with audio_loopback(frame_size_ms=20, capacity=100) as (source, _, stream):
        for i in range(20):
            await source.capture_frame(numbered_frame(i))
        received = await _collect(stream, 10)
    assert [f.samples_per_channel for f in received] == [960] * 10
    assert received[0].duration == pytest.approx(0.02)


async def test_full_buffer_drops_oldest_and_counts_it() -> None:
    async with audio_loopback(capacity=5) as (source, _, stream):
        for i in range(60):
            await source.capture_frame(numbered_frame(i))
        with trio.fail_after(5):
            while stream.dropped < 55:  # the last captures may still be on their way
                await trio.sleep(0.01)
        kept = await _collect(stream, 5)
    assert stream.dropped == 55
    np.testing.assert_array_equal(kept[-1].data.reshape(-1), numbered_frame(59).data)
    np.testing.assert_array_equal(kept[0].data.reshape(-1), numbered_frame(55).data)


async def test_closing_the_track_ends_iteration() -> None:
    async with audio_loopback() as (source, track, stream):
        await source.capture_frame(numbered_frame(0))
        with trio.fail_after(5):
            first = await stream.receive()  # the stream works before the track closes
        np.testing.assert_array_equal(first.data[:, 0], numbered_frame(0).data)
        await source.capture_frame(numbered_frame(1))
        track.close()
        with trio.fail_after(5):
            rest = [frame async for frame in stream]  # ends: does not wait for more
        with pytest.raises(trio.EndOfChannel):
            await stream.receive()
    # frame 1 may or may not have got through before the close; nothing else can come
    assert [f.data[:, 0].tolist() for f in rest] in ([], [numbered_frame(1).data.tolist()])


async def test_received_frames_are_views_of_native_memory_until_copied() -> None:
    async with audio_loopback() as (source, _, stream):
        await source.capture_frame(numbered_frame(3))
        frame = await stream.receive()
        assert not frame.data.flags.owndata  # a view: nothing was copied into Python
        owned = frame.copy()
        before = rtc.live_handles()
        del frame
        assert rtc.live_handles() == before - 1  # the view was the last owner of the buffer
    np.testing.assert_array_equal(owned.data.reshape(-1), numbered_frame(3).data)


async def test_wait_for_playout_waits_until_the_audio_was_played() -> None:
    async with audio_loopback(queue_size_ms=300, capacity=100) as (source, _, stream):
        start = trio.current_time()
        for i in range(2):
            await source.capture_frame(numbered_frame(i, samples=9600))  # 2 x 200 ms
        assert 0.2 < source.queued_duration <= 0.4
        with trio.fail_after(10):
            await source.wait_for_playout()
        # the native queue plays in real time: 400 ms of audio cannot be out any sooner
        # (a lower bound only: a loaded machine makes it later, never earlier)
        assert trio.current_time() - start >= 0.4 - 0.05  # (a late native tick catches up)
        assert source.queued_duration == 0.0
        received = []
        with trio.fail_after(5):
            async for frame in stream:  # and every sample of it reached the track
                if received or frame.data.any():  # after any silence played before it
                    received.append(frame.data[:, 0].copy())
                if len(received) == 40:
                    break
        np.testing.assert_array_equal(
            np.concatenate(received),
            np.concatenate([numbered_frame(i, samples=9600).data for i in range(2)]))


async def test_clear_queue_discards_queued_audio() -> None:
    async with audio_loopback(queue_size_ms=1000, capacity=200) as (source, _, stream):
        await source.capture_frame(numbered_frame(0, samples=48000))  # 1 s, no zero sample
        # the next capture is sent once that one completed, i.e. once it is queued natively
        await source.capture_frame(numbered_frame(1, samples=480))
        source.clear_queue()
        assert source.queued_duration == 0.0
        await trio.sleep(1.2)  # had it not been cleared, all of it would have played by now
        heard = 0
        with trio.fail_after(5):
            for _ in range(110):  # the track plays silence once its queue is empty
                heard += bool((await stream.receive()).data.any())
        assert stream.dropped == 0
    assert heard < 50  # what played before the clear, and the 10 ms frame: far from 100
async def test_mute_and_unmute_a_local_track() -> None:
    async with rtc.open_audio_source(48000, 1) as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            track.mute()
            assert track.muted
            track.unmute()
            assert not track.muted


@pytest.mark.parametrize("queue_size_ms", [0, 100])
async def test_a_native_capture_failure_is_raised_by_the_next_call(queue_size_ms: int) -> None:
    async with audio_loopback(queue_size_ms=queue_size_ms) as (source, _, _):
        source.sample_rate = 16000  # lie about the native source: its check refuses the frame
        await source.capture_frame(numbered_frame(0, samples=160, rate=16000))
        with pytest.raises(rtc.RtcError, match="sample_rate and num_channels don't match"):
            await source.capture_frame(numbered_frame(1, samples=160, rate=16000))
        source.sample_rate = 48000
        await source.capture_frame(numbered_frame(2))  # the source is still usable
        await source.wait_for_playout()
