"""The voice toolkit from asyncio (rtc_trio.aio): resampling, audio processing, the mixer and
speak, fed by asyncio async generators (which must run as asyncio code), scoped the same way."""

from __future__ import annotations

import asyncio
import math
from typing import AsyncIterator

import numpy as np
import pytest
import trio

import rtc_trio
import rtc_trio.aio as rtc
from tests.helpers import numbered_frame
from tests.test_aio_room import eventually, run
from tests.test_resampler import dominant, sine_fit, tone

BOUND = 10.0


async def asyncio_frames(samples: np.ndarray, rate: int, closed: list[str], name: str = "gen",
                         block: int | None = None) -> AsyncIterator[rtc.AudioFrame]:
    """``samples`` in 10 ms frames, from asyncio code: each step awaits an asyncio sleep
    (which only works in an asyncio task) and records being closed."""
    step = block or rate // 100
    try:
        for start in range(0, len(samples), step):
            await asyncio.sleep(0)
            assert asyncio.current_task() is not None
            yield rtc.AudioFrame(samples[start:start + step], rate)
    finally:
        closed.append(name)


async def constant(value: int, closed: list[str], name: str) -> AsyncIterator[rtc.AudioFrame]:
    """10 ms frames of ``value`` forever, from asyncio code."""
    try:
        while True:
            await asyncio.sleep(0)
            yield rtc.AudioFrame(np.full(480, value, np.int16), 48000)
    finally:
        closed.append(name)


def test_the_sync_objects_are_rtc_trios() -> None:
    assert rtc.AudioResampler is rtc_trio.AudioResampler
    assert rtc.AudioResamplerQuality is rtc_trio.AudioResamplerQuality
    assert rtc.AudioProcessingModule is rtc_trio.AudioProcessingModule


def test_resampler_round_trip_through_asyncio_generators() -> None:
    """48 k -> 16 k -> 48 k of a 1 kHz tone: the first stage reads an asyncio generator, the
    second the first stage's asyncio channel; the tone keeps its frequency, level and SNR."""
    closed: list[str] = []

    async def main() -> np.ndarray:
        source = asyncio_frames(tone(48000, 2.0), 48000, closed)
        async with rtc.open_resampled(source, 16000) as down:
            async with rtc.open_resampled(down, 48000, quality=rtc.AudioResamplerQuality.MEDIUM) as up:
                assert isinstance(up, rtc.ResampledFrames)
                out = await asyncio.wait_for(_collect(up), BOUND)
            with pytest.raises(trio.EndOfChannel):
                await down.receive()  # read to its end, and left open: it is no async generator
        assert closed == ["gen"]  # the generator was run to its end and closed
        return np.concatenate(out)

    back = run(main)
    assert len(back) == 96000
    core = back[9600:-9600]
    amplitude, snr = sine_fit(core, 48000, 1000.0)
    print(f"\naio 48k->16k->48k: SNR {snr:.1f} dB")
    assert abs(dominant(core, 48000) - 1000.0) < 1.0
    assert abs(20 * math.log10(amplitude / (0.5 * 32767))) < 0.5
    assert snr >= 60


async def _collect(frames: rtc.ResampledFrames) -> list[np.ndarray]:
    return [frame.data async for frame in frames]


def test_leaving_the_resampled_block_early_closes_the_asyncio_generator() -> None:
    closed: list[str] = []

    async def main() -> None:
        source = asyncio_frames(tone(48000, 2.0), 48000, closed)
        async with rtc.open_resampled(source, 16000) as frames:
            await asyncio.wait_for(frames.receive(), BOUND)
            assert closed == []
        assert closed == ["gen"]

    run(main)


def test_audio_processor_reads_two_asyncio_generators() -> None:
    closed: list[str] = []

    async def main() -> None:
        rng = np.random.default_rng(1)
        noise = rng.integers(-3000, 3000, 48000, dtype=np.int16)
        near = asyncio_frames(noise.copy(), 48000, closed, "near")
        far = asyncio_frames(np.zeros(24000, np.int16), 48000, closed, "far")
        async with rtc.open_audio_processor(near, far, echo_cancellation=True,
                                            noise_suppression=True) as cleaned:
            assert isinstance(cleaned, rtc.ProcessedFrames)
            out = await asyncio.wait_for(_collect(cleaned), BOUND)
        assert sorted(closed) == ["far", "near"]  # far ended first (then silence), near at the end
        assert len(out) == 100 and all(len(f) == 480 for f in out)
        cleaned_level = np.sqrt(np.mean(np.concatenate(out[50:]).astype(np.float64) ** 2))
        print(f"\nnoise {np.sqrt(np.mean(noise.astype(np.float64) ** 2)):.0f} rms -> {cleaned_level:.0f}")
        assert cleaned_level < np.sqrt(np.mean(noise.astype(np.float64) ** 2))

    run(main)


def test_mixer_with_asyncio_generator_inputs() -> None:
    """Two asyncio generators sum exactly; remove_stream closes one at once, the end of the
    block the other; refusals are rtc_trio's."""
    closed: list[str] = []

    async def main() -> None:
        a, b = constant(1000, closed, "a"), constant(2000, closed, "b")
        # a long timeout: a loaded host must not make an input stalled (the sums are exact)
        async with rtc.open_audio_mixer(48000, 1, capacity=2, stream_timeout_ms=10_000) as mixer:
            assert isinstance(mixer, rtc.AudioMixer) and mixer.blocksize == 480
            mixer.add_stream(a)
            mixer.add_stream(b)
            with pytest.raises(ValueError, match="already"):
                mixer.add_stream(a)
            with pytest.raises(TypeError):
                mixer.add_stream([numbered_frame(0)])  # type: ignore[arg-type]
            first = [await asyncio.wait_for(mixer.receive(), BOUND) for _ in range(10)]
            assert all(np.all(f.data == 3000) for f in first)

            mixer.remove_stream(a)
            await eventually(lambda: closed == ["a"])
            for _ in range(20):  # the mix already made (capacity 2, plus one in hand) drains
                frame = await asyncio.wait_for(mixer.receive(), BOUND)
                if np.all(frame.data == 2000):
                    break
            else:
                pytest.fail("the removed input is still mixed")
            mixer.end_input()
            with pytest.raises(trio.ClosedResourceError):
                mixer.add_stream(constant(1, closed, "late"))
        assert closed == ["a", "b"]  # the block ended: b's task was cancelled and b closed
        with pytest.raises(trio.ClosedResourceError):
            await mixer.receive()

    run(main)


def test_mixer_ends_once_its_asyncio_inputs_end() -> None:
    closed: list[str] = []

    async def main() -> None:
        async with rtc.open_audio_mixer(48000, 1) as mixer:
            mixer.add_stream(asyncio_frames(np.full(4800, 7, np.int16), 48000, closed, block=960))
            mixer.end_input()
            frames = await asyncio.wait_for(_mixed(mixer), BOUND)
        assert closed == ["gen"]
        assert len(frames) == 10 and all(np.all(f.data == 7) for f in frames)

    run(main)


async def _mixed(mixer: rtc.AudioMixer) -> list[rtc.AudioFrame]:
    return [frame async for frame in mixer]


def test_speak_cancelled_leaves_the_source_empty() -> None:
    closed: list[str] = []

    async def main() -> None:
        async with rtc.open_audio_source(48000, 1, queue_size_ms=1000) as source:
            speaking = asyncio.create_task(source.speak(
                asyncio_frames(tone(48000, 3.0), 48000, closed)))
            await eventually(lambda: source.queued_duration > 0.2)
            speaking.cancel()  # barge-in
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(speaking, BOUND)
            assert source.queued_duration == 0.0
            assert closed == ["gen"]

            await asyncio.wait_for(source.speak(  # to its end: returns after the playout
                asyncio_frames(tone(48000, 0.1), 48000, closed, "short")), BOUND)
            assert source.queued_duration == 0.0 and closed == ["gen", "short"]
            with pytest.raises(TypeError):
                await source.speak([numbered_frame(0)])  # type: ignore[arg-type]

    run(main)
