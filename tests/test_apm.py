"""The audio processing module against libwebrtc's, with real signals.

Echo: the far end talks (noise) 1 s and pauses 1 s; the near end hears it 50 ms later at
half level, plus its own 440 Hz tone from 0.5 s to 1.5 s of every 2 s. So each cycle has
far end alone (echo attenuation measured), double talk (the near tone's loss reported, not
promised), and near end alone (the tone must stay within 3 dB). Measured here: 51-53 dB of
echo attenuation after the first cycle, the tone within 0.3 dB alone and within 0.3-1.8 dB
in double talk. Noise: stationary white noise with a 1 kHz tone 0.5 s of every second:
the noise falls by 14.8 dB at 48 kHz, the tone stays within 0.5 dB after the first second.
"""

from __future__ import annotations

import math
from typing import AsyncIterator, Iterable

import numpy as np
import numpy.typing as npt
import pytest
import trio
import trio.testing

import rtc_trio as rtc

RATE = 48000
CHUNK = RATE // 100
DELAY_MS = 50


class EchoScene:
    """The far end's signal, the echo the near end hears, and the near end's own tone."""

    def __init__(self, seconds: float = 6.0) -> None:
        n = int(seconds * RATE)
        t = np.arange(n) / RATE
        phase = t % 2.0
        noise = np.random.default_rng(1).standard_normal(n) * 0.1 * 32767 * (phase < 1.0)
        self.far = np.convolve(noise, np.ones(4) / 4, mode="same")
        delay = DELAY_MS * RATE // 1000
        self.echo = np.zeros(n)
        self.echo[delay:] = 0.5 * self.far[:-delay]
        self.tone = 0.1 * 32767 * np.sin(2 * np.pi * 440 * t) * ((phase >= 0.5) & (phase < 1.5))
        self.far16 = pcm(self.far)
        self.near16 = pcm(self.echo + self.tone)
        self.cycles = int(seconds // 2)

    def span(self, cycle: int, start: float, end: float) -> slice:
        return slice(int((2 * cycle + start) * RATE), int((2 * cycle + end) * RATE))

    def figures(self, out: npt.NDArray[np.int16], cycle: int) -> tuple[float, float, float]:
        """(echo attenuation, near tone alone, near tone in double talk), in dB."""
        far_alone, double, near_alone = self.span(cycle, 0.1, 0.5), self.span(cycle, 0.6, 1.0), \
            self.span(cycle, 1.1, 1.5)
        attenuation = db(power(self.echo[far_alone]) / power(out[far_alone]))
        return (attenuation, db(band(out[near_alone]) / band(self.tone[near_alone])),
                db(band(out[double]) / band(self.tone[double])))


def pcm(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def power(x: npt.NDArray[np.generic]) -> float:
    return float(np.sum(np.asarray(x, np.float64) ** 2)) or 1e-9


def db(ratio: float) -> float:
    return 10 * math.log10(ratio)


def band(x: npt.NDArray[np.generic], frequency: float = 440.0, width: float = 40.0) -> float:
    """Power of ``x`` within ``width`` Hz of ``frequency`` (Hann window)."""
    spectrum = np.fft.rfft(np.asarray(x, np.float64) * np.hanning(len(x)))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(np.sum(np.abs(spectrum[np.abs(freqs - frequency) <= width]) ** 2))


def frames(samples: npt.NDArray[np.int16], size: int = CHUNK) -> list[rtc.AudioFrame]:
    return [rtc.AudioFrame(samples[i:i + size].copy(), RATE) for i in range(0, len(samples), size)]


def cancel_echo(scene: EchoScene, *, reverse: bool = True) -> npt.NDArray[np.int16]:
    out = []
    with rtc.AudioProcessingModule(echo_cancellation=True) as apm:
        apm.set_stream_delay_ms(DELAY_MS)
        for far, near in zip(frames(scene.far16), frames(scene.near16)):
            if reverse:
                apm.process_reverse_stream(far)
            apm.process_stream(near)
            out.append(near.data)
    return np.concatenate(out)


def test_echo_is_cancelled_and_the_near_end_kept() -> None:
    scene = EchoScene()
    out = cancel_echo(scene)
    for cycle in range(1, scene.cycles):  # the first cycle is convergence
        attenuation, alone, double_talk = scene.figures(out, cycle)
        print(f"cycle {cycle}: echo -{attenuation:.1f} dB, near tone alone {alone:+.2f} dB, "
              f"in double talk {double_talk:+.2f} dB")
        assert attenuation >= 20
        assert abs(alone) <= 3


def test_noise_is_suppressed_and_an_intermittent_tone_kept() -> None:
    n = 6 * RATE
    t = np.arange(n) / RATE
    noise = np.random.default_rng(2).standard_normal(n) * 0.02 * 32767
    tone = 0.2 * 32767 * np.sin(2 * np.pi * 1000 * t) * ((t % 1.0) < 0.5)
    out = []
    with rtc.AudioProcessingModule(noise_suppression=True) as apm:
        for frame in frames(pcm(noise + tone)):
            apm.process_stream(frame)
            out.append(frame.data)
    cleaned = np.concatenate(out)
    for second in range(1, 6):  # the first second is convergence
        quiet = slice(int((second + 0.6) * RATE), int((second + 0.95) * RATE))
        loud = slice(int((second + 0.1) * RATE), int((second + 0.45) * RATE))
        reduction = db(power(noise[quiet]) / power(cleaned[quiet]))
        kept = db(band(cleaned[loud], 1000, 50) / band(tone[loud], 1000, 50))
        print(f"second {second}: noise -{reduction:.1f} dB, tone {kept:+.2f} dB")
        assert reduction >= 10
        assert abs(kept) <= 3


def test_frames_of_several_chunks_are_processed_in_place() -> None:
    # a 30 ms frame is three 10 ms chunks: the same output as three 10 ms frames
    samples = pcm(np.random.default_rng(3).standard_normal(3 * CHUNK) * 3000)
    whole = rtc.AudioFrame(samples.copy(), RATE)
    parts = frames(samples)
    with rtc.AudioProcessingModule(high_pass_filter=True) as a, \
            rtc.AudioProcessingModule(high_pass_filter=True) as b:
        a.process_stream(whole)
        for part in parts:
            b.process_stream(part)
    assert not np.array_equal(whole.data, samples)  # changed in place
    assert np.array_equal(whole.data, np.concatenate([p.data for p in parts]))


def test_closed_module_raises_and_releases_once() -> None:
    before = rtc.live_handles()
    with rtc.AudioProcessingModule(echo_cancellation=True) as apm:
        assert rtc.live_handles() == before + 1
    assert rtc.live_handles() == before and apm.closed
    frame = rtc.AudioFrame(np.zeros(CHUNK, np.int16), RATE)
    for call in (apm.process_stream, apm.process_reverse_stream):
        with pytest.raises(trio.ClosedResourceError):
            call(frame)
    with pytest.raises(trio.ClosedResourceError):
        apm.set_stream_delay_ms(10)
    apm.close()
    assert rtc.live_handles() == before


# -- open_audio_processor: far and near streams, aligned by sample count -----------------

async def stream_of(items: Iterable[rtc.AudioFrame], log: list[str] | None = None) -> AsyncIterator[rtc.AudioFrame]:
    try:
        for frame in items:
            await trio.sleep(0)
            yield frame
    finally:
        if log is not None:
            log.append("closed")


async def collect(near: AsyncIterator[rtc.AudioFrame], far: AsyncIterator[rtc.AudioFrame] | None,
                  **options: object) -> npt.NDArray[np.int16]:
    out = []
    async with rtc.open_audio_processor(near, far, **options) as cleaned:  # type: ignore[arg-type]
        with trio.fail_after(30):
            async for frame in cleaned:
                out.append(frame.data)
    return np.concatenate(out)


async def test_processor_feeds_each_far_chunk_before_its_near_chunk() -> None:
    # exactly what the synchronous loop does (far 10 ms, then near 10 ms), so the same output
    scene = EchoScene(4.0)
    expected = cancel_echo(scene)
    got = await collect(stream_of(frames(scene.near16)), stream_of(frames(scene.far16)),
                        noise_suppression=False, stream_delay_ms=DELAY_MS)
    assert np.array_equal(got, expected)
    assert scene.figures(got, 1)[0] >= 20


async def test_processor_aligns_frames_of_other_sizes_by_sample_count() -> None:
    # far in 30 ms frames, near in 10 ms: the echo is still cancelled
    scene = EchoScene(4.0)
    got = await collect(stream_of(frames(scene.near16)), stream_of(frames(scene.far16, 3 * CHUNK)),
                        noise_suppression=False, stream_delay_ms=DELAY_MS)
    attenuation, alone, _ = scene.figures(got, 1)
    assert attenuation >= 20 and abs(alone) <= 3


async def test_processor_goes_on_when_the_far_end_ends() -> None:
    scene = EchoScene(2.0)
    log: list[str] = []
    got = await collect(stream_of(frames(scene.near16)), stream_of(frames(scene.far16)[:10], log))
    assert len(got) == len(scene.near16) and log == ["closed"]


async def test_processor_leaving_early_closes_both_generators_and_the_module() -> None:
    scene = EchoScene(2.0)
    log: list[str] = []
    before = rtc.live_handles()
    async with rtc.open_audio_processor(stream_of(frames(scene.near16), log),
                                        stream_of(frames(scene.far16), log)) as cleaned:
        with trio.fail_after(10):
            await cleaned.receive()
        assert rtc.live_handles() == before + 1
    assert log == ["closed", "closed"] and rtc.live_handles() == before
    with pytest.raises(trio.ClosedResourceError):
        await cleaned.receive()


async def test_processor_refuses_a_frame_of_a_broken_chunk() -> None:
    near = [rtc.AudioFrame(np.zeros(CHUNK, np.int16), RATE), rtc.AudioFrame(np.zeros(479, np.int16), RATE)]
    async with rtc.open_audio_processor(stream_of(near)) as cleaned:
        await cleaned.receive()
        with pytest.raises(ValueError, match="10 ms"):
            await cleaned.receive()
    with pytest.raises(ValueError, match="stream_delay_ms"):
        async with rtc.open_audio_processor(stream_of(near), stream_delay_ms=501):
            pass


async def test_processor_cancelled_while_the_far_end_waits_keeps_the_near_frame() -> None:
    near = frames(np.zeros(3 * CHUNK, np.int16))
    send, far = trio.open_memory_channel[rtc.AudioFrame](4)
    async with rtc.open_audio_processor(stream_of(near), far) as cleaned:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cleaned.receive)  # takes near[0], then waits for the far end
            with trio.fail_after(5):
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        await send.send(rtc.AudioFrame(np.zeros(CHUNK, np.int16), RATE))
        with trio.fail_after(5):
            assert await cleaned.receive() is near[0]  # processed in place, not lost
