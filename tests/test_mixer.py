"""The mixer: exact sums, saturation, stalled and removed inputs, re-blocking, scoping.

No native library is involved: the mixer is numpy and trio. Time is trio's autojump clock
(``autojump_clock`` fixture), so timeouts are measured on virtual time, exactly.
"""

from __future__ import annotations

from typing import AsyncIterator

import numpy as np
import pytest
import trio
import trio.testing

import rtc_trio as rtc
from tests.helpers import living_tasks

RATE = 48000
BLOCK = 480


def frame(value: int, samples: int = BLOCK, channels: int = 1) -> rtc.AudioFrame:
    return rtc.AudioFrame(np.full((samples, channels), value, np.int16), RATE)


async def constant(value: int, count: int, samples: int = BLOCK, channels: int = 1) -> AsyncIterator[rtc.AudioFrame]:
    for _ in range(count):
        yield frame(value, samples, channels)


LOADED_HOST_MS = 10_000
"""The stall timeout of the tests whose sums are exact: an input must not count as stalled
because a loaded host kept this thread away for 100 ms (the default timeout)."""


async def ramp(count: int, samples: int) -> AsyncIterator[rtc.AudioFrame]:
    """Frames of ``samples`` whose values count up from 0 (modulo 30000): the order of every sample shows."""
    for i in range(count):
        yield rtc.AudioFrame((np.arange(i * samples, (i + 1) * samples) % 30000).astype(np.int16), RATE)


async def collect(mixer: rtc.AudioMixer) -> list[rtc.AudioFrame]:
    return [f async for f in mixer]


async def test_two_constant_inputs_sum_exactly() -> None:
    async with rtc.open_audio_mixer(RATE, 2, stream_timeout_ms=LOADED_HOST_MS) as mixer:
        mixer.add_stream(constant(1000, 5, channels=2))
        mixer.add_stream(constant(-3, 5, channels=2))
        mixer.end_input()
        with trio.fail_after(5):
            frames = await collect(mixer)
    assert len(frames) == 5
    for f in frames:
        assert f.sample_rate == RATE and f.num_channels == 2 and f.data.shape == (BLOCK, 2)
        assert (f.data == 997).all()


@pytest.mark.parametrize("value, limit", [(20000, 32767), (-20000, -32768)])
async def test_the_sum_saturates_at_the_int16_limits(value: int, limit: int) -> None:
    async with rtc.open_audio_mixer(RATE, 1, stream_timeout_ms=LOADED_HOST_MS) as mixer:
        for _ in range(3):  # 60000 (or -60000) would wrap around to -5536 (5536) in int16
            mixer.add_stream(constant(value, 2))
        mixer.end_input()
        with trio.fail_after(5):
            frames = await collect(mixer)
    assert len(frames) == 2
    assert all((f.data == limit).all() for f in frames)


async def test_a_stalled_input_delays_the_output_by_its_timeout_only(autojump_clock: trio.testing.MockClock) -> None:
    async def stalls() -> AsyncIterator[rtc.AudioFrame]:
        yield frame(7)
        await trio.sleep_forever()
        yield frame(7)  # never

    timeout = 0.25
    async with rtc.open_audio_mixer(RATE, 1, stream_timeout_ms=timeout * 1000) as mixer:
        start = trio.current_time()
        mixer.add_stream(stalls())
        mixer.add_stream(constant(100, 20))
        times, frames = [], []
        async for f in mixer:
            times.append(trio.current_time() - start)
            frames.append(f.data[:, 0].copy())
            if len(frames) == 20:
                break
    assert (frames[0] == 107).all()  # both had the first block
    assert times[0] == 0
    assert (frames[1] == 100).all() and times[1] == timeout  # waited for the stalled input once
    assert all((f == 100).all() for f in frames[2:])  # it contributes silence...
    assert times[-1] == timeout  # ...and is not waited for again


async def test_a_stalled_input_is_waited_for_again_once_it_delivers(autojump_clock: trio.testing.MockClock) -> None:
    async def late() -> AsyncIterator[rtc.AudioFrame]:
        yield frame(1)
        await trio.sleep(1)
        for _ in range(3):
            yield frame(2)
        await trio.sleep_forever()

    async def paced() -> AsyncIterator[rtc.AudioFrame]:
        while True:
            yield frame(100)
            await trio.sleep(0.01)

    mixed: list[tuple[float, int]] = []
    async with rtc.open_audio_mixer(RATE, 1, stream_timeout_ms=100) as mixer:
        mixer.add_stream(late())
        mixer.add_stream(paced())
        async for f in mixer:
            assert (f.data == f.data[0, 0]).all()
            mixed.append((trio.current_time(), int(f.data[0, 0])))
            if trio.current_time() > 1.5:
                break
    values = [v for _, v in mixed]
    assert values[0] == 101 and set(values) == {100, 101, 102}
    first = values.index(102)
    assert values[first:first + 3] == [102, 102, 102] and values.count(102) == 3
    assert 1.0 <= mixed[first][0] < 1.0 + 0.1  # mixed as soon as it came back


async def test_removing_an_input_mid_stream() -> None:
    endless = constant(5, 10**9)
    async with rtc.open_audio_mixer(RATE, 1, stream_timeout_ms=LOADED_HOST_MS) as mixer:
        mixer.add_stream(endless)
        mixer.add_stream(constant(1, 10))
        sums = []
        with trio.fail_after(5):
            async for f in mixer:
                sums.append(int(f.data[0, 0]))
                if len(sums) == 3:
                    mixer.remove_stream(endless)
                    mixer.remove_stream(endless)  # again: nothing
                    await trio.testing.wait_all_tasks_blocked()
                    assert endless.ag_frame is None  # its task ended and finalized it, now
                    mixer.end_input()
    assert sums[:3] == [6, 6, 6]
    assert sums[3:] and set(sums[3:]) <= {6, 1} and sums[-1] == 1
    assert len(sums) == 10  # the other input's ten blocks, no more


@pytest.mark.parametrize("sizes", [(160, 480), (1000, 333), (4800, 7)])
async def test_inputs_of_different_frame_sizes_are_reblocked(sizes: tuple[int, int]) -> None:
    total = 4800
    a, b = sizes
    async with rtc.open_audio_mixer(RATE, 1, blocksize=441, stream_timeout_ms=LOADED_HOST_MS) as mixer:
        mixer.add_stream(ramp(total // a, a))
        mixer.add_stream(constant(1, total // b, samples=b))
        mixer.end_input()
        with trio.fail_after(5):
            frames = await collect(mixer)
    assert all(f.samples_per_channel == 441 for f in frames)
    mixed = np.concatenate([f.data[:, 0] for f in frames]).astype(np.int64)
    want = np.zeros(len(mixed), np.int64)
    ramp_len, ones_len = total // a * a, total // b * b
    want[:ramp_len] += np.arange(ramp_len) % 30000
    want[:ones_len] += 1
    assert len(mixed) == -(-max(ramp_len, ones_len) // 441) * 441  # the last block padded with silence
    np.testing.assert_array_equal(mixed, want)


async def test_no_input_task_outlives_the_block() -> None:
    before = living_tasks()

    async def forever() -> AsyncIterator[rtc.AudioFrame]:
        while True:
            yield frame(1)

    finalized = []

    async def watched() -> AsyncIterator[rtc.AudioFrame]:
        try:
            while True:
                yield frame(2)
                await trio.sleep(0.001)
        finally:
            finalized.append(True)

    with trio.fail_after(5):
        async with rtc.open_audio_mixer(RATE, 1) as mixer:
            mixer.add_stream(forever())
            mixer.add_stream(watched())
            await trio.testing.wait_all_tasks_blocked()
            assert living_tasks() == before + 3  # the mixing task and one per input
    assert living_tasks() == before
    assert finalized == [True]
    with trio.fail_after(5):
        async with rtc.open_audio_mixer(RATE, 1):
            await trio.testing.wait_all_tasks_blocked()  # an idle mixer: its task waits for inputs
    assert living_tasks() == before
    with pytest.raises(trio.ClosedResourceError):
        mixer.add_stream(forever())
    with pytest.raises(trio.ClosedResourceError):
        await mixer.receive()


async def test_cancellation_leaves_nothing() -> None:
    before = living_tasks()
    with trio.move_on_after(0.05) as scope:
        async with rtc.open_audio_mixer(RATE, 1, capacity=2) as mixer:
            mixer.add_stream(constant(1, 10**9))
            async for _ in mixer:
                await trio.sleep(0.01)
    assert scope.cancelled_caught
    assert living_tasks() == before


async def test_a_slow_consumer_pushes_back_nothing_is_dropped() -> None:
    read = []

    async def counted() -> AsyncIterator[rtc.AudioFrame]:
        async for f in ramp(100, BLOCK):
            read.append(1)
            yield f

    async with rtc.open_audio_mixer(RATE, 1, blocksize=BLOCK, capacity=3, stream_timeout_ms=LOADED_HOST_MS) as mixer:
        mixer.add_stream(counted())
        await trio.testing.wait_all_tasks_blocked()
        assert mixer.queued == 3  # mixing paused at the capacity...
        assert 3 + 1 < len(read) <= 3 + 1 + 4  # ...and reading: a block being sent, at most four buffered
        mixer.end_input()
        got = np.concatenate([f.data[:, 0] async for f in mixer])
    np.testing.assert_array_equal(got, (np.arange(100 * BLOCK) % 30000).astype(np.int16))


async def test_an_input_of_another_format_ends_the_block_with_a_clear_error() -> None:
    async def wrong() -> AsyncIterator[rtc.AudioFrame]:
        yield rtc.AudioFrame(np.zeros(160, np.int16), 16000)

    with pytest.RaisesGroup(pytest.RaisesExc(ValueError, match="this mixer takes 48000 Hz, 1 channel")):
        async with rtc.open_audio_mixer(RATE, 1) as mixer:
            mixer.add_stream(wrong())
            await trio.sleep_forever()


async def test_the_body_exception_comes_out_as_raised() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with rtc.open_audio_mixer(RATE, 1) as mixer:
            mixer.add_stream(constant(1, 10**9))
            raise KeyError("mine")


async def test_closed_mixer_refuses() -> None:
    async with rtc.open_audio_mixer(RATE, 1) as mixer:
        mixer.add_stream(constant(1, 10**9))
        await mixer.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await mixer.receive()
        with pytest.raises(trio.ClosedResourceError):
            mixer.add_stream(constant(1, 1))
    async with rtc.open_audio_mixer(RATE, 1) as mixer:
        mixer.end_input()
        with pytest.raises(trio.ClosedResourceError):
            mixer.add_stream(constant(1, 1))
        with pytest.raises(trio.EndOfChannel):
            await mixer.receive()


@pytest.mark.parametrize(
    "args, error",
    [
        ((0, 1), ValueError), ((48000, 0), ValueError), ((48000, 17), ValueError), ((48000.0, 1), TypeError),
        ((48000, 1, {"blocksize": 0}), ValueError), ((48000, 1, {"blocksize": 480001}), ValueError),
        ((48000, 1, {"stream_timeout_ms": 0}), ValueError), ((48000, 1, {"stream_timeout_ms": float("nan")}), ValueError),
        ((48000, 1, {"stream_timeout_ms": "1"}), TypeError), ((48000, 1, {"capacity": 0}), ValueError),
        ((48000, 1, {"capacity": True}), TypeError),
    ],
)
async def test_bad_arguments_are_refused(args: tuple[object, ...], error: type[Exception]) -> None:
    kwargs = args[2] if len(args) == 3 else {}
    with pytest.raises(error):
        async with rtc.open_audio_mixer(*args[:2], **kwargs):  # type: ignore[arg-type]
            pass


async def test_bad_inputs_are_refused_at_add_time() -> None:
    async with rtc.open_audio_mixer(RATE, 1) as mixer:
        with pytest.raises(TypeError):
            mixer.add_stream([frame(1)])  # type: ignore[arg-type]
        source = constant(1, 1)
        mixer.add_stream(source)
        with pytest.raises(ValueError, match="already"):
            mixer.add_stream(source)


async def test_a_removed_async_generator_is_refused_if_added_again(autojump_clock: trio.testing.MockClock) -> None:
    # Its reader, cancelled, closes it: added again it used to crash the block with
    # "aclose(): asynchronous generator is already running".
    async def voice(value: int) -> AsyncIterator[rtc.AudioFrame]:
        while True:
            await trio.sleep(0.01)
            yield frame(value)

    paused = voice(100)
    async with rtc.open_audio_mixer(RATE, 1) as mixer:
        mixer.add_stream(paused)
        sums = [int((await mixer.receive()).data[0, 0]) for _ in range(3)]
        mixer.remove_stream(paused)
        with pytest.raises(ValueError, match="closed"):
            mixer.add_stream(paused)  # its reader is still ending
        await trio.testing.wait_all_tasks_blocked()
        assert paused.ag_frame is None
        with pytest.raises(ValueError, match="closed"):
            mixer.add_stream(paused)  # closed
        mixer.add_stream(voice(7))  # a new one resumes the voice
        sums += [int((await mixer.receive()).data[0, 0]) for _ in range(3)]
    assert sums == [100] * 3 + [7] * 3


class OneReader:
    """An async iterable over a channel that, like an AudioStream, takes one reader at a time."""

    def __init__(self, receive: trio.MemoryReceiveChannel[rtc.AudioFrame]) -> None:
        self.receive = receive
        self.reading = False

    def __aiter__(self) -> OneReader:
        return self

    async def __anext__(self) -> rtc.AudioFrame:
        if self.reading:
            raise trio.BusyResourceError("two readers at once")
        self.reading = True
        try:
            return await self.receive.receive()
        finally:
            self.reading = False


async def test_a_removed_iterable_added_again_is_read_once_its_old_reader_ended() -> None:
    send, receive = trio.open_memory_channel[rtc.AudioFrame](10)
    voice = OneReader(receive)
    async with rtc.open_audio_mixer(RATE, 1) as mixer:
        with trio.fail_after(5):
            for value in range(1, 20):
                mixer.add_stream(voice)
                await send.send(frame(value))
                assert int((await mixer.receive()).data[0, 0]) == value
                mixer.remove_stream(voice)  # its reader waits in __anext__: cancelled
