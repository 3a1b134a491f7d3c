"""Bench workloads on the official `livekit` SDK (asyncio). Prints one JSON object.

Usage: python bench/side_livekit.py SCENARIO [--streams N --duration S --fps F ...]
(see bench/_measure.py parse_args). Run by bench/run.py, one fresh process per run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import traceback
import tracemalloc
import uuid
from typing import Any, Awaitable, Callable, Sequence

import numpy as np
from livekit import rtc

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
        await asyncio.sleep(0.01)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel consumer tasks and wait for them to finish."""
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _close(closers: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Close SDK objects; the SDK's stream close waits for an end-of-stream event, so bound it."""
    for close in closers:
        await asyncio.wait_for(close(), timeout=5.0)


async def audio(a: argparse.Namespace) -> dict[str, Any]:
    """N sources -> local tracks -> streams; unpaced (each capture awaited) or paced at ``a.fps``."""
    n, paced = a.streams, a.fps > 0
    period = 1.0 / a.fps if paced else 0.0
    log = FrameLog(n)
    misrouted = 0
    sources = [rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=0) for _ in range(n)]
    tracks = [rtc.LocalAudioTrack.create_audio_track(f"a{i}", s) for i, s in enumerate(sources)]
    streams = [
        rtc.AudioStream(t, sample_rate=SAMPLE_RATE, num_channels=1, capacity=a.capacity)
        for t in tracks
    ]

    async def consume(i: int, stream: rtc.AudioStream) -> None:
        nonlocal misrouted
        async for ev in stream:
            d = ev.frame.data
            if d[1] != i:
                misrouted += 1
            log.arrived(i, d[0], time.perf_counter())

    async def produce(i: int, src: rtc.AudioSource, t0: float, t_end: float) -> None:
        buf = bytearray(SAMPLES_PER_FRAME * 2)
        samples = np.frombuffer(buf, np.int16)
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
                await asyncio.sleep(t - now)
            samples[0] = k & 0x7FFF
            sent_at.append(t)
            await src.capture_frame(rtc.AudioFrame(buf, SAMPLE_RATE, 1, SAMPLES_PER_FRAME))
            k += 1

    # -- --pacer one (issue 10, sec. 2b): one task captures every frame due --
    async def pace_all(t0: float, t_end: float) -> None:
        bufs = [bytearray(SAMPLES_PER_FRAME * 2) for _ in range(n)]
        for i, buf in enumerate(bufs):
            np.frombuffer(buf, np.int16)[1] = i
            log.scheduled += due_frames(pace_start(t0, period, i, n), period, t_end)
        views = [np.frombuffer(buf, np.int16) for buf in bufs]
        for i, k, due in due_slots(t0, period, n, t_end):
            now = time.perf_counter()
            if now >= t_end:
                break  # a late pacer stops at the end too
            if due > now:
                await asyncio.sleep(max(due - now, PACER_TICK_S))
            views[i][0] = k & 0x7FFF
            log.sent_at[i].append(due)
            await sources[i].capture_frame(rtc.AudioFrame(bufs[i], SAMPLE_RATE, 1, SAMPLES_PER_FRAME))
    # -- end --pacer one --

    consumers = [asyncio.create_task(consume(i, s)) for i, s in enumerate(streams)]
    await asyncio.sleep(0.05)
    start = cpu_sample()
    t0 = time.perf_counter()
    t_end = t0 + a.duration
    try:
        if paced and a.pacer == "one":
            await pace_all(t0, t_end)
        else:
            await asyncio.gather(*(produce(i, s, t0, t_end) for i, s in enumerate(sources)))
        await _drain(lambda: log.received >= log.sent, lambda: log.last_arrival, t_end, a.drain)
    finally:
        await _cancel_all(consumers)
    end = cpu_sample()
    await _close([s.aclose for s in streams] + [s.aclose for s in sources])
    res = figures(start=start, end=end, sent=log.expected, received=log.received,
                  active_s=(log.last_arrival - t0) if log.received else 0.0, streams=n,
                  latencies_s=log.latencies_s, payload_bytes=SAMPLES_PER_FRAME * 2)
    res["misrouted"] = misrouted
    return res


async def video(a: argparse.Namespace) -> dict[str, Any]:
    """One RGBA video source -> track -> RGBA stream, unpaced or paced at ``a.fps``."""
    w, h, paced = a.width, a.height, a.fps > 0
    src = rtc.VideoSource(w, h)
    # a new source sends black keepalive frames until its first capture: end that first
    src.capture_frame(rtc.VideoFrame(w, h, RGBA, bytearray(w * h * 4)))
    track = rtc.LocalVideoTrack.create_video_track("v", src)
    stream = rtc.VideoStream(track, format=RGBA, capacity=a.capacity)
    c = Counter()

    async def consume() -> None:
        async for ev in stream:
            ev.frame.data[0]  # touch the payload
            c.arrived(time.perf_counter(), ev.timestamp_us)

    async def produce(t0: float, t_end: float) -> None:
        data = bytearray(w * h * 4)
        if paced:
            c.scheduled = due_frames(t0, 1.0 / a.fps, t_end)
        k = 0
        while (now := time.perf_counter()) < t_end:
            if paced:
                t = t0 + k / a.fps
                if t >= t_end:
                    break
                if t > now:
                    await asyncio.sleep(t - now)
            src.capture_frame(rtc.VideoFrame(w, h, RGBA, data))
            c.sent += 1
            k += 1
            if not paced:
                await asyncio.sleep(0)  # let the consumer run

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    c.counting = True
    start = cpu_sample()
    t0 = time.perf_counter()
    t_end = t0 + a.duration
    try:
        await produce(t0, t_end)
        await _drain(lambda: c.received >= c.sent, lambda: c.last_arrival, t_end, a.drain)
    finally:
        await _cancel_all([consumer])
    end = cpu_sample()
    await _close([stream.aclose, src.aclose])
    return figures(start=start, end=end, sent=c.expected, received=c.received,
                   active_s=(c.last_arrival - t0) if c.received else 0.0, streams=1,
                   latencies_s=c.latencies_s, payload_bytes=w * h * 4)


async def zero_copy(a: argparse.Namespace) -> dict[str, Any]:
    """Python-heap growth per received 720p RGBA frame, frames sent in lockstep under tracemalloc."""
    w, h = a.width, a.height
    src = rtc.VideoSource(w, h)
    # a new source sends black keepalive frames until its first capture: end that first
    src.capture_frame(rtc.VideoFrame(w, h, RGBA, bytearray(w * h * 4)))
    track = rtc.LocalVideoTrack.create_video_track("v", src)
    stream = rtc.VideoStream(track, format=RGBA, capacity=a.capacity)
    c = Counter()
    heap = HeapProbe()
    got = asyncio.Event()

    async def consume() -> None:
        held: object = None
        heap.arm()
        async for ev in stream:
            ev.frame.data[0]
            heap.frame()
            c.arrived(time.perf_counter(), ev.timestamp_us)
            held = ev  # keeps this frame alive while the next one arrives
            heap.arm()
            got.set()

    data = bytearray(w * h * 4)
    tracemalloc.start()
    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    c.counting = True
    start = cpu_sample()
    t0 = time.perf_counter()
    try:
        for _ in range(a.frames):
            got.clear()
            src.capture_frame(rtc.VideoFrame(w, h, RGBA, data))
            c.sent += 1
            try:
                await asyncio.wait_for(got.wait(), timeout=a.drain)
            except asyncio.TimeoutError:
                pass
    finally:
        await _cancel_all([consumer])
    end = cpu_sample()
    tracemalloc.stop()
    await _close([stream.aclose, src.aclose])
    allocated, retained = heap.per_frame()
    return figures(start=start, end=end, sent=c.sent, received=c.received,
                   active_s=(c.last_arrival - t0) if c.received else 0.0, streams=1,
                   latencies_s=c.latencies_s, py_heap_bytes_per_frame=allocated,
                   py_heap_retained_bytes_per_frame=retained,
                   payload_bytes=w * h * 4)


async def data_rpc(a: argparse.Namespace) -> dict[str, Any]:
    """Two participants in one room of the server the environment names: text streams
    (and RPC) between them."""
    url, (token_a, token_b) = room_tokens()
    alice, bob = rtc.Room(), rtc.Room()
    await alice.connect(url, token_a)
    try:
        await bob.connect(url, token_b)
        try:
            while "bob" not in alice.remote_participants:
                await asyncio.sleep(0.01)
            result = await text_streams(a, alice, bob)
        finally:
            await bob.disconnect()
    finally:
        await alice.disconnect()
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
    everything = asyncio.Event()
    readers: list[asyncio.Task[None]] = []

    async def read(reader: rtc.TextStreamReader) -> None:
        nonlocal received, last
        text = await reader.read_all()
        index = text_message_index(text)
        if 0 <= index < count and text == messages[index]:
            received += 1
            last = time.perf_counter()
            if received == count:
                everything.set()

    def opened(reader: rtc.TextStreamReader, identity: str) -> None:
        readers.append(asyncio.create_task(read(reader)))

    topic = f"bench-{label}"
    bob.register_text_stream_handler(topic, opened)
    try:
        start = cpu_sample()
        for message in messages:
            await alice.local_participant.send_text(message, topic=topic)
        try:
            await asyncio.wait_for(everything.wait(), drain)
        except asyncio.TimeoutError:
            pass
        end = cpu_sample()
    finally:
        bob.unregister_text_stream_handler(topic)
        await _cancel_all(readers)
    return text_figures(label, size=size, sent=count, received=received, start=start, end=end,
                        last_arrival=last)


# --- voice toolkit: mixer (issue 8) ---------------------------------------------------------

MIXER_FRAMES = 5000  # frames per input: 50 s of 10 ms frames, mixed as fast as they come


async def mixer(a: argparse.Namespace) -> dict[str, Any]:
    """The same as bench/side_rtc_trio.py's mixer, on livekit.rtc.AudioMixer."""
    n, frames = a.streams, MIXER_FRAMES

    async def source(level: int) -> Any:
        frame = rtc.AudioFrame(np.full(SAMPLES_PER_FRAME, level, np.int16).tobytes(), SAMPLE_RATE, 1,
                               SAMPLES_PER_FRAME)
        for _ in range(frames):
            yield frame

    want = sum(100 * (i + 1) for i in range(n))
    wrong = received = 0
    mix = rtc.AudioMixer(SAMPLE_RATE, 1, blocksize=SAMPLES_PER_FRAME)
    try:
        start = cpu_sample()
        t0 = time.perf_counter()
        for i in range(n):
            mix.add_stream(source(100 * (i + 1)))
        mix.end_input()
        async for out in mix:
            received += 1
            wrong += int((np.frombuffer(out.data, np.int16) != want).any())
        t1 = time.perf_counter()
        end = cpu_sample()
    finally:
        await mix.aclose()
    res = figures(start=start, end=end, sent=frames, received=received, active_s=t1 - t0,
                  streams=n, payload_bytes=SAMPLES_PER_FRAME * 2)
    res["wrong_frames"] = wrong
    return res


# ---- data-rpc: RPC round trips (issue 9) ----

async def rpc(a: argparse.Namespace) -> dict[str, Any]:
    """The same as side_rtc_trio.rpc on the official SDK."""
    from _measure import RPC_PAYLOAD, call_figures
    from _server import NO_SERVER, from_env, token

    server = from_env()
    if server is None:
        raise RuntimeError(NO_SERVER)
    room = f"bench-rpc-{uuid.uuid4().hex[:10]}"
    latencies: list[float] = []
    calls = errors = 0

    async def echo(data: rtc.RpcInvocationData) -> str:
        return data.payload

    callee, caller = rtc.Room(), rtc.Room()
    await callee.connect(server.url, token("callee", room))
    await caller.connect(server.url, token("caller", room))
    try:
        while "callee" not in caller.remote_participants:
            await asyncio.sleep(0.01)
        callee.local_participant.register_rpc_method("echo", echo)
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

        for counted, seconds in ((False, 0.5), (True, a.duration)):  # warm-up, then measured
            start = cpu_sample()
            await asyncio.gather(*(worker(start.wall_s + seconds, counted) for _ in range(a.streams)))
            end = cpu_sample()
    finally:
        await caller.disconnect()
        await callee.disconnect()
    return call_figures(start=start, end=end, calls=calls, errors=errors,
                        latencies_s=latencies, in_flight=a.streams)
# ---- voice toolkit scenarios (resample-48k-16k, apm-aec) --------------------------------

def _frame(samples: Any) -> rtc.AudioFrame:
    """A mono 48 kHz frame of the official SDK from int16 samples."""
    return rtc.AudioFrame(samples.tobytes(), VOICE_RATE, 1, len(samples))


async def resample(a: argparse.Namespace) -> dict[str, Any]:
    """``a.duration`` s of 48 kHz audio pushed in 10 ms frames through a 48 k -> 16 k resampler."""
    signal = voice_tone(a.duration)
    out: list[Any] = []
    start = cpu_sample()
    r = rtc.AudioResampler(VOICE_RATE, 16000, quality=rtc.AudioResamplerQuality.MEDIUM)
    for i in range(0, len(signal), VOICE_CHUNK):
        for frame in r.push(_frame(signal[i:i + VOICE_CHUNK])):
            out.append(np.frombuffer(frame.data, np.int16))
    out += [np.frombuffer(frame.data, np.int16) for frame in r.flush()]
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
    apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True)
    apm.set_stream_delay_ms(ECHO_DELAY_MS)
    for i in range(0, len(near), VOICE_CHUNK):
        apm.process_reverse_stream(_frame(far[i:i + VOICE_CHUNK]))
        frame = _frame(near[i:i + VOICE_CHUNK])
        apm.process_stream(frame)
        out[i:i + VOICE_CHUNK] = np.frombuffer(frame.data, np.int16)
    end = cpu_sample()
    return voice_figures(start, end, len(near) // VOICE_CHUNK,
                         echo_attenuation_db=echo_attenuation_db(out, echo),
                         spectrum_db=spectrum_db(out[2 * VOICE_RATE:], VOICE_RATE))


VOICE_WORKLOADS = {"resample-48k-16k": resample, "apm-aec": apm_aec}
# ---- room-* scenarios (issue 10): remote tracks from bench/room_publisher.py ----


async def _subscribed(room: rtc.Room, kind: type[Any], n: int, connect: Awaitable[None]) -> list[Any]:
    """Connect (``connect``) and return the first ``n`` subscribed remote tracks of ``kind``."""
    tracks: list[Any] = []
    done = asyncio.Event()

    def on_subscribed(track: rtc.Track, *_: Any) -> None:
        if isinstance(track, kind) and len(tracks) < n:
            tracks.append(track)
            if len(tracks) == n:
                done.set()

    room.on("track_subscribed", on_subscribed)
    await connect
    await done.wait()
    return tracks


async def _close_room(room: rtc.Room, closers: Sequence[Callable[[], Awaitable[None]]],
                      res: dict[str, Any]) -> dict[str, Any]:
    """Close the streams together, then disconnect, each bounded (5 s); the figures are taken
    already, so a close that hangs is noted in ``close_timeouts`` instead of failing the run
    (seen: with 50 streams the SDK's stream close waits for an end-of-stream event that does
    not come, and so does its disconnect)."""
    hung = 0
    for step in (lambda: asyncio.gather(*(close() for close in closers)), room.disconnect):
        try:
            await asyncio.wait_for(step(), timeout=5.0)
        except asyncio.TimeoutError:
            hung += 1
    if hung:
        res["close_timeouts"] = hung
    return res


async def _until(ready: Callable[[], bool]) -> None:
    """Wait until ``ready()`` (the caller's deadline bounds it)."""
    while not ready():
        await asyncio.sleep(0.02)


async def room_audio(a: argparse.Namespace) -> dict[str, Any]:
    """Subscribe to the N remote audio tracks of the room; measure a window of their frames."""
    window = Window()
    n = a.streams
    log = RoomAudioLog(n, frames=int(a.duration * 120) + 100)

    async def consume(i: int, stream: rtc.AudioStream) -> None:
        async for ev in stream:
            log.arrived(i, np.frombuffer(ev.frame.data, np.int16))

    room = rtc.Room()
    try:
        tracks = await _subscribed(room, rtc.RemoteAudioTrack, n,
                                   room.connect(named().url, token("sub", a.room)))
        streams = [rtc.AudioStream(t, sample_rate=SAMPLE_RATE, num_channels=1, capacity=a.capacity)
                   for t in tracks]
        consumers = [asyncio.create_task(consume(i, s)) for i, s in enumerate(streams)]
        try:
            await _until(lambda: min(log.seen) > 0)
            await asyncio.sleep(ROOM_WARMUP_S)
            window.open()
            log.on = True
            await asyncio.sleep(a.duration)
            log.on = False
            window.close()
        finally:
            await _cancel_all(consumers)
        extra = log.figures(SAMPLES_PER_FRAME / SAMPLE_RATE)
        res = room_figures(window, received=extra["received"], streams=n, extra=extra)
        return await _close_room(room, [s.aclose for s in streams], res)
    except BaseException:
        with contextlib.suppress(asyncio.TimeoutError):  # the first error is the one to see
            await asyncio.wait_for(room.disconnect(), 5.0)
        raise


async def room_echo(a: argparse.Namespace) -> dict[str, Any]:
    """Republish every frame of the one remote audio track; the publisher times the trip."""
    window = Window()
    state = {"on": False, "received": 0, "seen": 0}
    room = rtc.Room()
    try:
        [track] = await _subscribed(room, rtc.RemoteAudioTrack, 1,
                                    room.connect(named().url, token("sub", a.room)))
        src = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=0)
        local = rtc.LocalAudioTrack.create_audio_track("echo", src)
        await room.local_participant.publish_track(
            local, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1,
                                 capacity=a.capacity)

        async def echo() -> None:
            async for ev in stream:
                state["seen"] += 1
                if state["on"]:
                    state["received"] += 1
                await src.capture_frame(ev.frame)

        task = asyncio.create_task(echo())
        try:
            await _until(lambda: state["seen"] > 0)
            await asyncio.sleep(ROOM_WARMUP_S)
            window.open()
            state["on"] = True
            await asyncio.sleep(a.duration)
            state["on"] = False
            window.close()
        finally:
            await _cancel_all([task])
        res = room_figures(window, received=state["received"], streams=1, extra={})
        return await _close_room(room, [stream.aclose, src.aclose], res)
    except BaseException:
        with contextlib.suppress(asyncio.TimeoutError):  # the first error is the one to see
            await asyncio.wait_for(room.disconnect(), 5.0)
        raise


async def room_video(a: argparse.Namespace) -> dict[str, Any]:
    """Subscribe to the one remote 720p video track as RGBA; measure a window of its frames."""
    window = Window()
    log = RoomVideoLog()
    room = rtc.Room()
    try:
        [track] = await _subscribed(room, rtc.RemoteVideoTrack, 1,
                                    room.connect(named().url, token("sub", a.room)))
        stream = rtc.VideoStream(track, format=RGBA, capacity=a.capacity)

        async def consume() -> None:
            async for ev in stream:
                f = ev.frame
                log.arrived(np.frombuffer(f.data, np.uint8), f.width, f.height)

        task = asyncio.create_task(consume())
        try:
            await _until(lambda: log.seen > 0)
            await asyncio.sleep(ROOM_WARMUP_S)
            window.open()
            log.on = True
            await asyncio.sleep(a.duration)
            log.on = False
            window.close()
        finally:
            await _cancel_all([task])
        extra = log.figures(1 / 30)
        res = room_figures(window, received=extra["received"], streams=1, extra=extra)
        return await _close_room(room, [stream.aclose], res)
    except BaseException:
        with contextlib.suppress(asyncio.TimeoutError):  # the first error is the one to see
            await asyncio.wait_for(room.disconnect(), 5.0)
        raise


ROOM_WORK = {"room-echo": room_echo, "room-video-720p": room_video}


def main() -> None:
    """Run the scenario named on argv inside a hard deadline and print its figures."""
    a = parse_args()
    named = {"zero-copy": zero_copy, "data-rpc": data_rpc, "mixer-4": mixer, **VOICE_WORKLOADS}
    work = named.get(a.scenario) or (
        rpc if a.scenario.startswith("rpc") else video if a.scenario.startswith("video") else audio)
    if a.scenario.startswith("room-"):  # room-audio-N and room-capacity: room_audio
        work = ROOM_WORK.get(a.scenario, room_audio)

    async def run() -> dict[str, Any]:
        return await asyncio.wait_for(work(a), timeout=a.deadline)

    try:
        res = asyncio.run(run())
    except Exception as e:  # reported, not raised: run.py shows it in the table
        emit({"error": describe(e)})
        traceback.print_exc()  # run.py keeps the tail of stderr
        raise SystemExit(1)
    emit(res)


if __name__ == "__main__":
    main()
