"""Capture completions belong to their source: no other source's captures can lose them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from contextlib import AsyncExitStack

import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _native, _router
from rtc_trio._ffi import ffi, lib
from rtc_trio._proto import ffi_pb2
from tests.helpers import numbered_frame

OLD_TABLE = 4096  # completions used to share a table of this many slots, indexed by async id


async def test_a_quiet_source_still_completes_after_another_captured_a_table_full() -> None:
    frame = numbered_frame(0)
    async with rtc.open_audio_source(queue_size_ms=0) as quiet, rtc.open_audio_source(queue_size_ms=0) as busy:
        with trio.fail_after(20):
            await quiet.capture_frame(frame)
            for _ in range(OLD_TABLE):
                await busy.capture_frame(frame)
            await quiet.capture_frame(frame)
            await quiet.wait_for_playout()


async def test_interleaved_sources_with_random_pauses_every_capture_returns() -> None:
    rng = random.Random(20240612)
    frame = numbered_frame(1)
    captured = [0]  # by all sources so far
    first_id = _native.next_async_id()

    async def busy(source: rtc.AudioSource, count: int) -> None:
        while count:
            burst = min(count, rng.randint(1, 3000))
            for _ in range(burst):
                await source.capture_frame(frame)
                captured[0] += 1
            count -= burst
            await trio.sleep(rng.uniform(0, 0.02))

    async def quiet_for(captures: int) -> None:
        """Until the others captured more than the old table held."""
        mark = captured[0]
        while captured[0] < mark + captures:
            await trio.sleep(0.002)

    async def quiet(source: rtc.AudioSource, rounds: int) -> None:
        for _ in range(rounds):
            await source.capture_frame(frame)
            captured[0] += 1
            await quiet_for(OLD_TABLE + 100)
        await source.wait_for_playout()  # its last capture completed long ago

    async with AsyncExitStack() as stack:
        sources = [await stack.enter_async_context(rtc.open_audio_source(queue_size_ms=0)) for _ in range(5)]
        queued = await stack.enter_async_context(rtc.open_audio_source(queue_size_ms=100))
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for source, count in zip(sources[:4], (9000, 7000, 5000, 3000)):
                    nursery.start_soon(busy, source, count)
                nursery.start_soon(quiet, sources[4], 4)
                nursery.start_soon(quiet, queued, 3)
    assert captured[0] == 24_000 + 7
    assert _native.next_async_id() - first_id > 5 * OLD_TABLE


def test_a_failed_capture_of_a_quiet_source_is_raised_however_long_it_waited() -> None:
    # A native failure used to reach the source only through the router, which drops what
    # waits unclaimed for longer than PARK_SECONDS: a quiet source then hung. The failure is
    # made real here (a frame whose rate the source does not take, sent beneath the Python
    # check), in a subprocess since it is handed to the native library unvalidated.
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(
        """
        import numpy as np, trio, rtc_trio as rtc
        from rtc_trio import _native, _router
        from rtc_trio._ffi import ffi, lib
        from tests.helpers import numbered_frame

        async def main():
            async with rtc.open_audio_source(queue_size_ms=0) as source:
                samples = np.zeros(160, np.int16)
                async_id = _native.next_async_id()
                sent = lib.rtc_capture_audio(source._handle.id, async_id, 0, ffi.from_buffer(samples), 1, 16000, 160)
                assert sent == lib.RTC_CAPTURE_SENT
                await trio.sleep(0.5)  # the failure arrives while nobody waits for it
                _router.sweep_parked(0)  # as happens PARK_SECONDS later
                with trio.fail_after(10):
                    try:
                        await source.capture_frame(numbered_frame(0))
                    except rtc.RtcError as error:
                        print("raised:", error)
                    await source.capture_frame(numbered_frame(1))  # reported once, then usable
                    await source.wait_for_playout()
                print("went on")

        trio.run(main)
        """)],
        capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)),
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "raised: capture_audio_frame failed (previous frame): " in result.stdout
    assert "sample_rate and num_channels don't match" in result.stdout
    assert "went on" in result.stdout


async def test_a_completion_after_its_source_closed_is_harmless() -> None:
    async with rtc.open_audio_source(queue_size_ms=0) as source:
        late = _native.next_async_id()
        samples = ffi.from_buffer(numbered_frame(0).data)
        assert lib.rtc_capture_audio(source._handle.id, late, 0, samples, 1, 48000, 480) == lib.RTC_CAPTURE_SENT
    for error in ("", "failed late"):
        event = ffi_pb2.FfiEvent()
        event.capture_audio_frame.async_id = late
        event.capture_audio_frame.error = error
        data = event.SerializeToString()
        await trio.to_thread.run_sync(lib.on_native_event, data, len(data))
    assert late not in _router._parked and late not in _router._once
    async with rtc.open_audio_source(queue_size_ms=0) as source:
        with trio.fail_after(10):
            for i in range(3):
                await source.capture_frame(numbered_frame(i))
            await source.wait_for_playout()


async def test_a_closed_source_has_no_capture_record() -> None:
    async with rtc.open_audio_source(queue_size_ms=0) as source:
        handle = source._handle.id
        assert lib.rtc_capture_wait(handle, 0) == lib.RTC_CAPTURE_IDLE
    assert lib.rtc_capture_wait(handle, 0) == lib.RTC_CAPTURE_CLOSED
    samples = ffi.new("int16_t[]", 480)
    sent = lib.rtc_capture_audio(handle, _native.next_async_id(), 0, samples, 1, 48000, 480)
    assert sent == lib.RTC_CAPTURE_CLOSED  # nothing reaches the native side
