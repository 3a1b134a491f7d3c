"""A small asyncio "voice app" on rtc_trio.aio: a tone goes source -> track -> stream.

One asyncio task speaks (a 220 Hz tone whose loudness swells like syllables), another
listens and prints the level every 100 ms. The code is plain asyncio; trio-asyncio runs it.

    python examples/aio_voice.py
"""

from __future__ import annotations

import asyncio

import numpy as np
import trio_asyncio  # type: ignore[import-untyped]

import rtc_trio.aio as rtc

RATE = 48000
FRAME = RATE // 100  # 10 ms
SECONDS = 2.0


def tone(index: int) -> rtc.AudioFrame:
    """The 10 ms frame number ``index`` of the tone."""
    t = (np.arange(FRAME) + index * FRAME) / RATE
    loudness = np.abs(np.sin(np.pi * 1.5 * t)) ** 2  # 1.5 "syllables" a second
    return rtc.AudioFrame((12000 * loudness * np.sin(2 * np.pi * 220 * t)).astype(np.int16), RATE)


def dbfs(frame: rtc.AudioFrame) -> float:
    rms = float(np.sqrt(np.mean(frame.data.astype(np.float64) ** 2)))
    return 20 * float(np.log10(max(rms, 1.0) / 32768))


async def speak(source: rtc.AudioSource) -> None:
    for i in range(int(SECONDS * 100)):
        await source.capture_frame(tone(i))  # the 100 ms native queue paces this at real time
    await source.wait_for_playout()


async def listen(stream: rtc.AudioStream, count: int) -> None:
    async for frame in stream:  # 100 ms frames (frame_size_ms=100)
        level = dbfs(frame)
        print(f"{level:6.1f} dBFS |{'#' * max(0, int(level + 60))}")
        count -= 1
        if count == 0:
            return


async def main() -> None:
    async with rtc.open_audio_source(RATE, 1, queue_size_ms=100) as source:
        with rtc.LocalAudioTrack.create("voice", source) as track:
            async with rtc.open_audio_stream(track, sample_rate=RATE, frame_size_ms=100) as stream:
                await asyncio.wait_for(asyncio.gather(speak(source), listen(stream, int(SECONDS * 10))),
                                       SECONDS + 5)
                print(f"dropped: {stream.dropped}")
    print(f"native handles left: {rtc.live_handles()}")


if __name__ == "__main__":
    trio_asyncio.run(trio_asyncio.aio_as_trio(main))
