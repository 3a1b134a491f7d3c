"""Bench workloads on the official `livekit` SDK (asyncio). Prints one JSON object.

Usage: python bench/side_livekit.py SCENARIO [--streams N --duration S --fps F ...]
(see bench/_measure.py parse_args). Run by bench/run.py, one fresh process per run.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from typing import Any, Awaitable, Callable, Sequence

import numpy as np
from livekit import rtc

from _measure import (
    PACER_TICK_S,
    QUIET_S,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    Counter,
    FrameLog,
    HeapProbe,
    cpu_sample,
    describe,
    due_frames,
    due_slots,
    emit,
    figures,
    pace_start,
    parse_args,
)

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


def main() -> None:
    """Run the scenario named on argv inside a hard deadline and print its figures."""
    a = parse_args()
    work = zero_copy if a.scenario == "zero-copy" else video if a.scenario.startswith("video") else audio

    async def run() -> dict[str, Any]:
        return await asyncio.wait_for(work(a), timeout=a.deadline)

    try:
        res = asyncio.run(run())
    except Exception as e:  # reported, not raised: run.py shows it in the table
        emit({"error": describe(e)})
        raise SystemExit(1)
    emit(res)


if __name__ == "__main__":
    main()
