"""Bench workloads on rtc_trio (trio). Prints one JSON object.

Usage: python bench/side_rtc_trio.py SCENARIO [--streams N --duration S --fps F ...]
(see bench/_measure.py parse_args). Run by bench/run.py, one fresh process per run.
The workloads mirror bench/side_livekit.py step for step.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import traceback
import tracemalloc
import uuid
from typing import Any, Callable

import numpy as np
import trio

import rtc_trio as rtc
from _measure import (
    ECHO_DELAY_MS,
    PACER_TICK_S,
    QUIET_S,
    ROOM_WARMUP_S,
    RoomAudioLog,
    Window,
    RoomVideoLog,
    room_figures,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    TEXT_SIZES,
    VOICE_CHUNK,
    VOICE_RATE,
    Counter,
    FrameLog,
    HeapProbe,
    cpu_sample,
    describe,
    due_frames,
    echo_attenuation_db,
    echo_scene,
    due_slots,
    emit,
    figures,
    pace_start,
    parse_args,
    room_tokens,
    text_counts,
    text_figures,
    text_message_index,
    text_messages,
    spectrum_db,
    voice_figures,
    voice_tone,
)
from _server import named, token

RGBA = rtc.VideoBufferType.RGBA


async def _drain(done: Callable[[], bool], last: Callable[[], float], t_end: float,
                 limit_s: float) -> None:
    """After capture ends at ``t_end``: wait for every frame, at most ``limit_s``,
    and stop early once nothing arrived for QUIET_S."""
    while not done():
        now = time.perf_counter()
        if now > t_end + limit_s or now - max(last(), t_end) > QUIET_S:
            return
        await trio.sleep(0.01)


async def audio(a: argparse.Namespace) -> dict[str, Any]:
    """N sources -> local tracks -> streams; unpaced (each capture awaited) or paced at ``a.fps``."""
    n, paced = a.streams, a.fps > 0
    period = 1.0 / a.fps if paced else 0.0
    log = FrameLog(n)
    misrouted = 0

    async def consume(i: int, stream: rtc.AudioStream) -> None:
        nonlocal misrouted
        async for frame in stream:
            d = frame.data
            if d[1, 0] != i:
                misrouted += 1
            log.arrived(i, int(d[0, 0]), time.perf_counter())

    async def produce(i: int, src: rtc.AudioSource, t0: float, t_end: float) -> None:
        samples = np.zeros(SAMPLES_PER_FRAME, np.int16)
        samples[1] = i
        sent_at = log.sent_at[i]
        if paced:
            t0 = pace_start(t0, period, i, n)
            log.scheduled += due_frames(t0, period, t_end)
        k = 0
        while (now := time.perf_counter()) < t_end:  # a late producer stops at the end too
            t = t0 + k * period if paced else now
            if t >= t_end:
                break
            if t > now:
                await trio.sleep(t - now)
            samples[0] = k & 0x7FFF
            sent_at.append(t)
            await src.capture_frame(rtc.AudioFrame(samples, sample_rate=SAMPLE_RATE))
            k += 1

    # -- --pacer one (issue 10, sec. 2b): one task captures every frame due --
    async def pace_all(sources: list[rtc.AudioSource], t0: float, t_end: float) -> None:
        frames = [np.zeros(SAMPLES_PER_FRAME, np.int16) for _ in range(n)]
        for i, samples in enumerate(frames):
            samples[1] = i
            log.scheduled += due_frames(pace_start(t0, period, i, n), period, t_end)
        for i, k, due in due_slots(t0, period, n, t_end):
            now = time.perf_counter()
            if now >= t_end:
                break  # a late pacer stops at the end too
            if due > now:
                await trio.sleep(max(due - now, PACER_TICK_S))
            samples = frames[i]
            samples[0] = k & 0x7FFF
            log.sent_at[i].append(due)
            await sources[i].capture_frame(rtc.AudioFrame(samples, sample_rate=SAMPLE_RATE))
    # -- end --pacer one --

    async with contextlib.AsyncExitStack() as stack:
        sources: list[rtc.AudioSource] = []
        streams: list[rtc.AudioStream] = []
        for i in range(n):
            src = await stack.enter_async_context(
                rtc.open_audio_source(sample_rate=SAMPLE_RATE, num_channels=1, queue_size_ms=0))
            track = stack.enter_context(rtc.LocalAudioTrack.create(f"a{i}", src))
            streams.append(await stack.enter_async_context(rtc.open_audio_stream(
                track, sample_rate=SAMPLE_RATE, num_channels=1, capacity=a.capacity)))
            sources.append(src)
        async with trio.open_nursery() as consumers:
            for i, stream in enumerate(streams):
                consumers.start_soon(consume, i, stream)
            await trio.sleep(0.05)
            start = cpu_sample()
            t0 = time.perf_counter()
            t_end = t0 + a.duration
            async with trio.open_nursery() as producers:
                if paced and a.pacer == "one":
                    producers.start_soon(pace_all, sources, t0, t_end)
                else:
                    for i, src in enumerate(sources):
                        producers.start_soon(produce, i, src, t0, t_end)
            await _drain(lambda: log.received >= log.sent, lambda: log.last_arrival, t_end, a.drain)
            consumers.cancel_scope.cancel()
        end = cpu_sample()
        stream_dropped = sum(s.dropped for s in streams)
    res = figures(start=start, end=end, sent=log.expected, received=log.received,
                  active_s=(log.last_arrival - t0) if log.received else 0.0, streams=n,
                  latencies_s=log.latencies_s, stream_dropped=stream_dropped,
                  payload_bytes=SAMPLES_PER_FRAME * 2)
    res["misrouted"] = misrouted
    return res


async def video(a: argparse.Namespace) -> dict[str, Any]:
    """One RGBA video source -> track -> RGBA stream, unpaced or paced at ``a.fps``."""
    w, h, paced = a.width, a.height, a.fps > 0
    c = Counter()

    async def consume(stream: rtc.VideoStream) -> None:
        async for frame in stream:
            frame.data.flat[0]  # touch the payload
            c.arrived(time.perf_counter(), frame.timestamp_us)

    async def produce(src: rtc.VideoSource, t0: float, t_end: float) -> None:
        data = np.zeros(w * h * 4, np.uint8)
        if paced:
            c.scheduled = due_frames(t0, 1.0 / a.fps, t_end)
        k = 0
        while (now := time.perf_counter()) < t_end:
            if paced:
                t = t0 + k / a.fps
                if t >= t_end:
                    break
                if t > now:
                    await trio.sleep(t - now)
            src.capture_frame(rtc.VideoFrame(w, h, RGBA, data), timestamp_us=0)
            c.sent += 1
            k += 1
            if not paced:
                await trio.sleep(0)  # let the consumer run

    async with rtc.open_video_source(w, h) as src:
        # a new source sends black keepalive frames until its first capture: end that first
        src.capture_frame(rtc.VideoFrame(w, h, RGBA, np.zeros(w * h * 4, np.uint8)))
        with rtc.LocalVideoTrack.create("v", src) as track:
            async with rtc.open_video_stream(track, format=RGBA, capacity=a.capacity) as stream:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(consume, stream)
                    await trio.sleep(0.05)
                    c.counting = True
                    start = cpu_sample()
                    t0 = time.perf_counter()
                    t_end = t0 + a.duration
                    await produce(src, t0, t_end)
                    await _drain(lambda: c.received >= c.sent, lambda: c.last_arrival, t_end, a.drain)
                    nursery.cancel_scope.cancel()
                end = cpu_sample()
                stream_dropped = stream.dropped
    return figures(start=start, end=end, sent=c.expected, received=c.received,
                   active_s=(c.last_arrival - t0) if c.received else 0.0, streams=1,
                   latencies_s=c.latencies_s, stream_dropped=stream_dropped,
                   payload_bytes=w * h * 4)


async def zero_copy(a: argparse.Namespace) -> dict[str, Any]:
    """Python-heap growth per received 720p RGBA frame, frames sent in lockstep under tracemalloc."""
    w, h = a.width, a.height
    c = Counter()
    heap = HeapProbe()
    got = [trio.Event()]  # replaced per frame: trio events are one-shot

    async def consume(stream: rtc.VideoStream) -> None:
        held: object = None
        heap.arm()
        async for frame in stream:
            frame.data.flat[0]
            heap.frame()
            c.arrived(time.perf_counter(), frame.timestamp_us)
            held = frame  # keeps this frame alive while the next one arrives
            heap.arm()
            got[0].set()

    data = np.zeros(w * h * 4, np.uint8)
    async with rtc.open_video_source(w, h) as src:
        # a new source sends black keepalive frames until its first capture: end that first
        src.capture_frame(rtc.VideoFrame(w, h, RGBA, np.zeros(w * h * 4, np.uint8)))
        with rtc.LocalVideoTrack.create("v", src) as track:
            async with rtc.open_video_stream(track, format=RGBA, capacity=a.capacity) as stream:
                tracemalloc.start()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(consume, stream)
                    await trio.sleep(0.05)
                    c.counting = True
                    start = cpu_sample()
                    t0 = time.perf_counter()
                    for _ in range(a.frames):
                        got[0] = trio.Event()
                        src.capture_frame(rtc.VideoFrame(w, h, RGBA, data), timestamp_us=0)
                        c.sent += 1
                        with trio.move_on_after(a.drain):
                            await got[0].wait()
                    nursery.cancel_scope.cancel()
                end = cpu_sample()
                tracemalloc.stop()
                stream_dropped = stream.dropped
    allocated, retained = heap.per_frame()
    return figures(start=start, end=end, sent=c.sent, received=c.received,
                   active_s=(c.last_arrival - t0) if c.received else 0.0, streams=1,
                   latencies_s=c.latencies_s, stream_dropped=stream_dropped,
                   py_heap_bytes_per_frame=allocated,
                   py_heap_retained_bytes_per_frame=retained, payload_bytes=w * h * 4)


async def data_rpc(a: argparse.Namespace) -> dict[str, Any]:
    """Two participants in one room of the server the environment names: text streams
    (and RPC) between them."""
    url, (token_a, token_b) = room_tokens()
    async with rtc.connect(url, token_a) as alice, rtc.connect(url, token_b) as bob:
        while "bob" not in alice.remote_participants:
            await trio.sleep(0.01)
        result = await text_streams(a, alice, bob)
    return result | await rpc(a)


# -- data-rpc: text streams (text_mb_per_s_1k, text_mb_per_s_1m) ----------------------------

async def text_streams(a: argparse.Namespace, alice: rtc.Room, bob: rtc.Room) -> dict[str, Any]:
    """alice sends 1 KB, then 1 MB, text messages one after another; bob reads each whole
    (after a warm-up of 20 1 KB ones, not counted)."""
    await _text_throughput(alice, bob, "1k", 20, a.drain)  # warm-up: the data channel's start
    result: dict[str, Any] = {}
    for label, count in text_counts(a.messages).items():
        result |= await _text_throughput(alice, bob, label, count, a.drain)
    return result


async def _text_throughput(alice: rtc.Room, bob: rtc.Room, label: str, count: int,
                           drain: float) -> dict[str, Any]:
    size = TEXT_SIZES[label]
    messages = text_messages(count, size)
    received = 0
    last = 0.0
    everything = trio.Event()

    async def read(reader: rtc.TextStreamReader) -> None:
        nonlocal received, last
        text = await reader.read_all()
        index = text_message_index(text)
        if 0 <= index < count and text == messages[index]:
            received += 1
            last = time.perf_counter()
            if received == count:
                everything.set()

    async with bob.text_streams(f"bench-{label}", capacity=1024) as incoming:
        async with trio.open_nursery() as nursery:

            async def accept() -> None:
                async for reader in incoming:
                    nursery.start_soon(read, reader)

            nursery.start_soon(accept)
            start = cpu_sample()
            for message in messages:
                await alice.local_participant.send_text(message, topic=f"bench-{label}")
            with trio.move_on_after(drain):
                await everything.wait()
            end = cpu_sample()
            nursery.cancel_scope.cancel()
    return text_figures(label, size=size, sent=count, received=received, start=start, end=end,
                        last_arrival=last)


# --- voice toolkit: mixer (issue 8) ---------------------------------------------------------

MIXER_FRAMES = 5000  # frames per input: 50 s of 10 ms frames, mixed as fast as they come


async def mixer(a: argparse.Namespace) -> dict[str, Any]:
    """``a.streams`` inputs of 10 ms frames (constant, distinct levels) mixed into 10 ms
    frames, unpaced; CPU per output frame. Every output sample is checked: the exact sum."""
    n, frames = a.streams, MIXER_FRAMES

    async def source(level: int) -> Any:
        frame = rtc.AudioFrame(np.full(SAMPLES_PER_FRAME, level, np.int16), SAMPLE_RATE)
        for _ in range(frames):
            yield frame

    want = sum(100 * (i + 1) for i in range(n))
    wrong = received = 0
    async with rtc.open_audio_mixer(SAMPLE_RATE, 1, blocksize=SAMPLES_PER_FRAME) as mix:
        start = cpu_sample()
        t0 = time.perf_counter()
        for i in range(n):
            mix.add_stream(source(100 * (i + 1)))
        mix.end_input()
        async for out in mix:
            received += 1
            wrong += int((out.data != want).any())
        t1 = time.perf_counter()
        end = cpu_sample()
    res = figures(start=start, end=end, sent=frames, received=received, active_s=t1 - t0,
                  streams=n, payload_bytes=SAMPLES_PER_FRAME * 2)
    res["wrong_frames"] = wrong
    return res


# ---- data-rpc: RPC round trips (issue 9) ----

async def rpc(a: argparse.Namespace) -> dict[str, Any]:
    """Two participants of one room in this process: ``a.streams`` callers' calls in flight to
    an echo method the other serves, for ``a.duration`` seconds after a warm-up."""
    from _measure import RPC_PAYLOAD, call_figures
    from _server import NO_SERVER, from_env, token

    server = from_env()
    if server is None:
        raise RuntimeError(NO_SERVER)
    room = f"bench-rpc-{uuid.uuid4().hex[:10]}"
    latencies: list[float] = []
    calls = errors = 0

    async def echo(invocation: rtc.RpcInvocation) -> str:
        return invocation.payload

    async with rtc.connect(server.url, token("callee", room)) as callee, \
            rtc.connect(server.url, token("caller", room)) as caller:
        while "callee" not in caller.remote_participants:
            await trio.sleep(0.01)
        call = caller.local_participant.perform_rpc

        async def worker(t_end: float, counted: bool) -> None:
            nonlocal calls, errors
            while (t := time.perf_counter()) < t_end:
                try:
                    await call(destination_identity="callee", method="echo", payload=RPC_PAYLOAD)
                except rtc.RpcError:
                    errors += counted
                    continue
                if counted:
                    latencies.append(time.perf_counter() - t)
                    calls += 1

        async with callee.local_participant.serve_rpc({"echo": echo}):
            for counted, seconds in ((False, 0.5), (True, a.duration)):  # warm-up, then measured
                start = cpu_sample()
                async with trio.open_nursery() as nursery:
                    for _ in range(a.streams):
                        nursery.start_soon(worker, start.wall_s + seconds, counted)
                end = cpu_sample()
    return call_figures(start=start, end=end, calls=calls, errors=errors,
                        latencies_s=latencies, in_flight=a.streams)
# ---- voice toolkit scenarios (resample-48k-16k, apm-aec) --------------------------------

async def resample(a: argparse.Namespace) -> dict[str, Any]:
    """``a.duration`` s of 48 kHz audio pushed in 10 ms frames through a 48 k -> 16 k resampler."""
    signal = voice_tone(a.duration)
    out: list[Any] = []
    start = cpu_sample()
    with rtc.AudioResampler(VOICE_RATE, 16000, quality=rtc.AudioResamplerQuality.MEDIUM) as r:
        for i in range(0, len(signal), VOICE_CHUNK):
            for frame in r.push(rtc.AudioFrame(signal[i:i + VOICE_CHUNK], VOICE_RATE)):
                out.append(frame.data)
        out += [frame.data for frame in r.flush()]
    end = cpu_sample()
    output = np.concatenate(out)
    return voice_figures(start, end, len(signal) // VOICE_CHUNK, output_samples=len(output),
                         spectrum_db=spectrum_db(output, 16000))


async def apm_aec(a: argparse.Namespace) -> dict[str, Any]:
    """The echo scene through the APM (echo cancellation and noise suppression), 10 ms at a
    time: the far end's frame, then the near end's."""
    far, near, echo = echo_scene(a.duration)
    out = np.empty_like(near)
    start = cpu_sample()
    with rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True) as apm:
        apm.set_stream_delay_ms(ECHO_DELAY_MS)
        for i in range(0, len(near), VOICE_CHUNK):
            apm.process_reverse_stream(rtc.AudioFrame(far[i:i + VOICE_CHUNK], VOICE_RATE))
            frame = rtc.AudioFrame(near[i:i + VOICE_CHUNK].copy(), VOICE_RATE)
            apm.process_stream(frame)
            out[i:i + VOICE_CHUNK] = frame.data
    end = cpu_sample()
    return voice_figures(start, end, len(near) // VOICE_CHUNK,
                         echo_attenuation_db=echo_attenuation_db(out, echo),
                         spectrum_db=spectrum_db(out[2 * VOICE_RATE:], VOICE_RATE))


VOICE_WORKLOADS = {"resample-48k-16k": resample, "apm-aec": apm_aec}
# ---- room-* scenarios (issue 10): remote tracks from bench/room_publisher.py ----


async def _subscribed(events: rtc.RoomEvents, kind: type[Any], n: int) -> list[Any]:
    """The first ``n`` subscribed remote tracks of class ``kind``."""
    tracks: list[Any] = []
    async for event in events:
        if isinstance(event, rtc.TrackSubscribed) and isinstance(event.track, kind):
            tracks.append(event.track)
            if len(tracks) == n:
                return tracks
    raise RuntimeError(f"the room ended with {len(tracks)} of {n} tracks subscribed")


async def _until(ready: Callable[[], bool]) -> None:
    """Wait until ``ready()`` (the caller's deadline bounds it)."""
    while not ready():
        await trio.sleep(0.02)


async def room_audio(a: argparse.Namespace) -> dict[str, Any]:
    """Subscribe to the N remote audio tracks of the room; measure a window of their frames."""
    window = Window()
    n = a.streams
    log = RoomAudioLog(n, frames=int(a.duration * 120) + 100)

    async def consume(i: int, stream: rtc.AudioStream) -> None:
        async for frame in stream:
            log.arrived(i, frame.data[:, 0])

    async with rtc.connect(named().url, token("sub", a.room)) as room:
        tracks = await _subscribed(room.events(capacity=4096), rtc.RemoteAudioTrack, n)
        async with contextlib.AsyncExitStack() as stack:
            streams = [await stack.enter_async_context(rtc.open_audio_stream(
                t, sample_rate=SAMPLE_RATE, num_channels=1, capacity=a.capacity)) for t in tracks]
            async with trio.open_nursery() as nursery:
                for i, stream in enumerate(streams):
                    nursery.start_soon(consume, i, stream)
                await _until(lambda: min(log.seen) > 0)
                await trio.sleep(ROOM_WARMUP_S)
                dropped = sum(s.dropped for s in streams)
                window.open()
                log.on = True
                await trio.sleep(a.duration)
                log.on = False
                window.close()
                dropped = sum(s.dropped for s in streams) - dropped
                nursery.cancel_scope.cancel()
    extra = log.figures(SAMPLES_PER_FRAME / SAMPLE_RATE) | {"stream_dropped": dropped}
    return room_figures(window, received=extra["received"], streams=n, extra=extra)


async def room_echo(a: argparse.Namespace) -> dict[str, Any]:
    """Republish every frame of the one remote audio track; the publisher times the trip."""
    window = Window()
    state = {"on": False, "received": 0, "seen": 0}

    async def echo(stream: rtc.AudioStream, src: rtc.AudioSource) -> None:
        async for frame in stream:
            state["seen"] += 1
            if state["on"]:
                state["received"] += 1
            await src.capture_frame(frame)

    async with rtc.connect(named().url, token("sub", a.room)) as room:
        [track] = await _subscribed(room.events(capacity=4096), rtc.RemoteAudioTrack, 1)
        async with rtc.open_audio_source(SAMPLE_RATE, 1, queue_size_ms=0) as src:
            with rtc.LocalAudioTrack.create("echo", src) as local:
                await room.local_participant.publish_track(
                    local, rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE))
                async with rtc.open_audio_stream(track, sample_rate=SAMPLE_RATE, num_channels=1,
                                                 capacity=a.capacity) as stream:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(echo, stream, src)
                        await _until(lambda: state["seen"] > 0)
                        await trio.sleep(ROOM_WARMUP_S)
                        window.open()
                        state["on"] = True
                        await trio.sleep(a.duration)
                        state["on"] = False
                        window.close()
                        nursery.cancel_scope.cancel()
    return room_figures(window, received=state["received"], streams=1, extra={})


async def room_video(a: argparse.Namespace) -> dict[str, Any]:
    """Subscribe to the one remote 720p video track as RGBA; measure a window of its frames."""
    window = Window()
    log = RoomVideoLog()

    async def consume(stream: rtc.VideoStream) -> None:
        async for frame in stream:
            log.arrived(frame.data, frame.width, frame.height)

    async with rtc.connect(named().url, token("sub", a.room)) as room:
        [track] = await _subscribed(room.events(capacity=4096), rtc.RemoteVideoTrack, 1)
        async with rtc.open_video_stream(track, format=RGBA, capacity=a.capacity) as stream:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume, stream)
                await _until(lambda: log.seen > 0)
                await trio.sleep(ROOM_WARMUP_S)
                dropped = stream.dropped
                window.open()
                log.on = True
                await trio.sleep(a.duration)
                log.on = False
                window.close()
                dropped = stream.dropped - dropped
                nursery.cancel_scope.cancel()
    extra = log.figures(1 / 30) | {"stream_dropped": dropped}
    return room_figures(window, received=extra["received"], streams=1, extra=extra)


ROOM_WORK = {"room-echo": room_echo, "room-video-720p": room_video}
# -- aio-audio-N: the audio workload as asyncio code through rtc_trio.aio (issue 10, sec. 2) --

def aio_audio(a: argparse.Namespace) -> dict[str, Any]:
    """``audio`` written for asyncio (tasks, gather), on rtc_trio.aio under trio-asyncio:
    the same steps as bench/side_livekit.py's ``audio``, which runs for the official side."""
    import asyncio

    import trio_asyncio  # type: ignore[import-untyped]

    import rtc_trio.aio as aio

    n, paced = a.streams, a.fps > 0
    period = 1.0 / a.fps if paced else 0.0
    log = FrameLog(n)
    misrouted = 0

    async def consume(i: int, stream: aio.AudioStream) -> None:
        nonlocal misrouted
        async for frame in stream:
            d = frame.data
            if d[1, 0] != i:
                misrouted += 1
            log.arrived(i, int(d[0, 0]), time.perf_counter())

    async def produce(i: int, src: aio.AudioSource, t0: float, t_end: float) -> None:
        samples = np.zeros(SAMPLES_PER_FRAME, np.int16)
        samples[1] = i
        sent_at = log.sent_at[i]
        if paced:
            t0 = pace_start(t0, period, i, n)
            log.scheduled += due_frames(t0, period, t_end)
        k = 0
        while (now := time.perf_counter()) < t_end:
            t = t0 + k * period if paced else now
            if t >= t_end:
                break
            if t > now:
                await asyncio.sleep(t - now)
            samples[0] = k & 0x7FFF
            sent_at.append(t)
            await src.capture_frame(aio.AudioFrame(samples, sample_rate=SAMPLE_RATE))
            k += 1

    async def drain(t_end: float) -> None:
        while log.received < log.sent:
            now = time.perf_counter()
            if now > t_end + a.drain or now - max(log.last_arrival, t_end) > QUIET_S:
                return
            await asyncio.sleep(0.01)

    async def work() -> dict[str, Any]:
        async with contextlib.AsyncExitStack() as stack:
            sources: list[aio.AudioSource] = []
            streams: list[aio.AudioStream] = []
            for i in range(n):
                src = await stack.enter_async_context(
                    aio.open_audio_source(sample_rate=SAMPLE_RATE, num_channels=1, queue_size_ms=0))
                track = stack.enter_context(aio.LocalAudioTrack.create(f"a{i}", src))
                streams.append(await stack.enter_async_context(aio.open_audio_stream(
                    track, sample_rate=SAMPLE_RATE, num_channels=1, capacity=a.capacity)))
                sources.append(src)
            consumers = [asyncio.create_task(consume(i, s)) for i, s in enumerate(streams)]
            await asyncio.sleep(0.05)
            start = cpu_sample()
            t0 = time.perf_counter()
            t_end = t0 + a.duration
            try:
                await asyncio.gather(*(produce(i, s, t0, t_end) for i, s in enumerate(sources)))
                await drain(t_end)
            finally:
                for task in consumers:
                    task.cancel()
                await asyncio.gather(*consumers, return_exceptions=True)
            end = cpu_sample()
            stream_dropped = sum(s.dropped for s in streams)
        res = figures(start=start, end=end, sent=log.expected, received=log.received,
                      active_s=(log.last_arrival - t0) if log.received else 0.0, streams=n,
                      latencies_s=log.latencies_s, stream_dropped=stream_dropped,
                      payload_bytes=SAMPLES_PER_FRAME * 2)
        res["misrouted"] = misrouted
        return res

    async def run() -> dict[str, Any]:
        with trio.fail_after(a.deadline):
            async with trio_asyncio.open_loop():
                return await trio_asyncio.aio_as_trio(work)()  # type: ignore[no-any-return]

    return trio.run(run)

# -- end of aio-audio-N --


def main() -> None:
    """Run the scenario named on argv inside a hard deadline and print its figures."""
    a = parse_args()
    if a.scenario.startswith("aio-audio"):  # aio-audio-N: its own trio-asyncio run
        try:
            emit(aio_audio(a))
        except Exception as e:
            emit({"error": describe(e)})
            raise SystemExit(1)
        return
    named = {"zero-copy": zero_copy, "data-rpc": data_rpc, "mixer-4": mixer, **VOICE_WORKLOADS}
    work = named.get(a.scenario) or (
        rpc if a.scenario.startswith("rpc") else video if a.scenario.startswith("video") else audio)
    if a.scenario.startswith("room-"):  # room-audio-N and room-capacity: room_audio
        work = ROOM_WORK.get(a.scenario, room_audio)

    async def run() -> dict[str, Any]:
        with trio.fail_after(a.deadline):
            return await work(a)

    try:
        res = trio.run(run)
    except Exception as e:  # reported, not raised: run.py shows it in the table
        emit({"error": describe(e)})
        traceback.print_exc()  # run.py keeps the tail of stderr
        raise SystemExit(1)
    emit(res)


if __name__ == "__main__":
    main()
