"""Small builders shared by the tests."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import numpy as np
import numpy.typing as npt
import trio

import rtc_trio as rtc


def numbered_frame(index: int, samples: int = 480, channels: int = 1, rate: int = 48000) -> rtc.AudioFrame:
    """A frame whose every sample encodes (frame index, position): exact round trips show."""
    base = np.arange(samples * channels, dtype=np.int32) + index * 7
    data: npt.NDArray[np.int16] = ((base % 65536) - 32768).astype(np.int16)
    if channels > 1:
        data = data.reshape(samples, channels)
    return rtc.AudioFrame(data, sample_rate=rate)


@contextlib.asynccontextmanager
async def audio_loopback(
    rate: int = 48000, channels: int = 1, queue_size_ms: int = 0, **stream_args: object
) -> AsyncIterator[tuple[rtc.AudioSource, rtc.LocalAudioTrack, rtc.AudioStream]]:
    """source -> local track -> stream, all scoped to the block."""
    async with rtc.open_audio_source(rate, channels, queue_size_ms=queue_size_ms) as source:
        with rtc.LocalAudioTrack.create("mic", source) as track:
            async with rtc.open_audio_stream(
                track, sample_rate=rate, num_channels=channels, **stream_args  # type: ignore[arg-type]
            ) as stream:
                yield source, track, stream


def living_tasks() -> int:
    """Tasks alive in this trio run, counted from the root down."""
    return len(_walk(trio.lowlevel.current_root_task()))


def _walk(task: trio.lowlevel.Task) -> "list[trio.lowlevel.Task]":
    found = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            found.extend(_walk(child))
    return found
