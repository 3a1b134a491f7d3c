"""What a frame costs through rtc_trio.aio (asyncio on trio-asyncio) against rtc_trio on trio.

Same workload both ways, in one process and one trio-asyncio run, alternating:
10 ms mono 48 kHz int16 frames, a source with queue_size_ms=0 (unpaced), every capture
awaited by a producer task while a consumer task receives them through a stream.

    python examples/aio_cost.py [frames] [rounds]

Prints CPU per frame: the whole process (os.times) and the Python thread alone
(time.thread_time; the rest is the native library's threads).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from typing import Awaitable, Callable

import numpy as np
import trio
import trio_asyncio  # type: ignore[import-untyped]

import rtc_trio
import rtc_trio.aio as aio

FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 4000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5


def frames() -> list[rtc_trio.AudioFrame]:
    return [rtc_trio.AudioFrame(np.full(480, i % 30000, np.int16), 48000) for i in range(FRAMES)]


async def trio_path(sent: list[rtc_trio.AudioFrame]) -> int:
    async with rtc_trio.open_audio_source(48000, 1, queue_size_ms=0) as source:
        with rtc_trio.LocalAudioTrack.create("mic", source) as track:
            async with rtc_trio.open_audio_stream(track, capacity=FRAMES) as stream:
                received = 0

                async def consume() -> None:
                    nonlocal received
                    async for frame in stream:
                        received += 1
                        if received == FRAMES:
                            return

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(consume)
                    for frame in sent:
                        await source.capture_frame(frame)
                return received


async def aio_path(sent: list[rtc_trio.AudioFrame]) -> int:
    async with aio.open_audio_source(48000, 1, queue_size_ms=0) as source:
        with aio.LocalAudioTrack.create("mic", source) as track:
            async with aio.open_audio_stream(track, capacity=FRAMES) as stream:
                received = 0

                async def consume() -> None:
                    nonlocal received
                    async for frame in stream:
                        received += 1
                        if received == FRAMES:
                            return

                async def produce() -> None:
                    for frame in sent:
                        await source.capture_frame(frame)

                await asyncio.gather(consume(), produce())
                return received


async def measure(run: Callable[[list[rtc_trio.AudioFrame]], Awaitable[int]]) -> tuple[float, float, float]:
    """(process CPU, Python thread CPU, wall) in µs per frame."""
    sent = frames()
    t0, c0, w0 = os.times(), time.thread_time(), time.perf_counter()
    received = await run(sent)
    t1, c1, w1 = os.times(), time.thread_time(), time.perf_counter()
    if received != FRAMES:
        raise RuntimeError(f"received {received} of {FRAMES} frames")
    scale = 1e6 / FRAMES
    cpu = (t1.user + t1.system - t0.user - t0.system) * scale
    return cpu, (c1 - c0) * scale, (w1 - w0) * scale


async def main() -> None:
    run_aio = trio_asyncio.aio_as_trio(aio_path)
    results: dict[str, list[tuple[float, float, float]]] = {"trio": [], "aio": []}
    await measure(trio_path)  # warm up both paths
    await measure(run_aio)
    for _ in range(ROUNDS):
        results["trio"].append(await measure(trio_path))
        results["aio"].append(await measure(run_aio))
    print(f"{FRAMES} frames x {ROUNDS} rounds, median µs per 10 ms frame (capture + receive):")
    print(f"{'path':6}{'process CPU':>14}{'Python thread':>16}{'native threads':>16}{'wall':>10}")
    medians = {}
    for name, rows in results.items():
        cpu, py, wall = (statistics.median(column) for column in zip(*rows))
        medians[name] = (cpu, py)
        print(f"{name:6}{cpu:14.1f}{py:16.1f}{cpu - py:16.1f}{wall:10.1f}")
    extra_cpu = medians["aio"][0] - medians["trio"][0]
    extra_py = medians["aio"][1] - medians["trio"][1]
    print(f"bridge: +{extra_cpu:.1f} µs process CPU per frame ({medians['aio'][0] / medians['trio'][0]:.2f}x), "
          f"+{extra_py:.1f} µs in the Python thread")


if __name__ == "__main__":
    trio_asyncio.run(main)
