"""Bench workloads on rtc_trio (trio). Prints one JSON object.

Usage: python bench/side_rtc_trio.py SCENARIO [--streams N --duration S --fps F ...]
(see bench/_measure.py parse_args). Run by bench/run.py, one fresh process per run.
The workloads mirror bench/side_livekit.py step for step.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import tracemalloc
from typing import Any, Callable

import numpy as np
import trio

import rtc_trio as rtc
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
    work = zero_copy if a.scenario == "zero-copy" else video if a.scenario.startswith("video") else audio

    async def run() -> dict[str, Any]:
        with trio.fail_after(a.deadline):
            return await work(a)

    try:
        res = trio.run(run)
    except Exception as e:  # reported, not raised: run.py shows it in the table
        emit({"error": describe(e)})
        raise SystemExit(1)
    emit(res)


if __name__ == "__main__":
    main()
