"""Capture completions belong to their source: no other source's captures, no cancelled wait
and no second waiting task can lose them.

Some tests hold a capture in flight for as long as they need: a source with a 10 s queue takes
one 10 s frame at once, and the native side holds a second back until there is room (or the
queue is cleared). A failure of it is fed as the native side sends it (through
``on_native_event``, from a thread); its real completion then finds nothing in flight and is
dropped.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from contextlib import AsyncExitStack

import numpy as np
import pytest
import trio
import trio.testing

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


STALL_QUEUE_MS = 10_000


async def _complete(async_id: int, error: str = "") -> None:
    """A capture's completion as the native side sends it: on a thread, to the C callback."""
    event = ffi_pb2.FfiEvent()
    event.capture_audio_frame.async_id = async_id
    event.capture_audio_frame.error = error
    data = event.SerializeToString()
    await trio.to_thread.run_sync(lib.on_native_event, data, len(data))


async def _stall(source: rtc.AudioSource) -> int:
    """Put a capture in flight that the native side holds back (~10 s); return its async id.

    ``source`` has a ``STALL_QUEUE_MS`` queue: the first 10 s frame fills it, the second waits
    natively for room. Both go beneath ``capture_frame``, so the source's playout clock
    (what ``wait_for_playout`` sleeps after the wait) does not count them.
    """
    ten_s = np.zeros(480_000, np.int16)
    handle = source._handle.id
    for _ in range(2):
        while lib.rtc_capture_wait(handle, 0) != lib.RTC_CAPTURE_IDLE:
            await trio.sleep(0.01)
        async_id = _native.next_async_id()
        sent = lib.rtc_capture_audio(handle, async_id, 0, ffi.from_buffer(ten_s), 1, 48000, 480_000)
        assert sent == lib.RTC_CAPTURE_SENT
    assert lib.rtc_capture_wait(handle, 0) == lib.RTC_CAPTURE_IN_FLIGHT
    return async_id


@pytest.mark.parametrize("then", ["capture_frame", "wait_for_playout"])
async def test_a_failure_is_raised_after_the_wait_for_its_capture_was_cancelled(then: str) -> None:
    # The failure used to go to Python once a wait had begun, and a cancelled waiter's
    # stale reply was skipped without reading its error: the failure was lost.
    async with rtc.open_audio_source(queue_size_ms=STALL_QUEUE_MS) as source:
        with trio.fail_after(20):
            stalled = await _stall(source)
            with trio.move_on_after(0.05) as waiting:
                await source.capture_frame(numbered_frame(0))  # waits for the stalled capture
            assert waiting.cancelled_caught
            await _complete(stalled, "injected failure")
            with pytest.raises(rtc.RtcError, match=r"capture_audio_frame failed .*: injected failure$"):
                if then == "capture_frame":
                    await source.capture_frame(numbered_frame(1))
                else:
                    await source.wait_for_playout()
            await source.wait_for_playout()  # reported once: nothing in flight, nothing raised
            assert lib.rtc_capture_wait(source._handle.id, 0) == lib.RTC_CAPTURE_IDLE


@pytest.mark.parametrize("error", ["", "injected failure"], ids=["completes", "fails"])
@pytest.mark.parametrize("first", ["capture_frame", "wait_for_playout"])
async def test_capture_frame_and_wait_for_playout_wait_for_one_capture_from_two_tasks(
    first: str, error: str
) -> None:
    # Both used to park on the source's one reply subscription: the second task got
    # BusyResourceError. Now the second waits its turn; a failure is raised in one of them.
    results: dict[str, str] = {}

    async def producer(source: rtc.AudioSource) -> None:
        try:
            await source.capture_frame(numbered_frame(0))
            results["capture_frame"] = "ok"
        except rtc.RtcError as e:
            results["capture_frame"] = f"RtcError: {e}"

    async def waiter(source: rtc.AudioSource) -> None:
        try:
            await source.wait_for_playout()
            results["wait_for_playout"] = "ok"
        except rtc.RtcError as e:
            results["wait_for_playout"] = f"RtcError: {e}"

    async with rtc.open_audio_source(queue_size_ms=STALL_QUEUE_MS) as source:
        with trio.fail_after(20):
            stalled = await _stall(source)
            tasks = {"capture_frame": producer, "wait_for_playout": waiter}
            second = "wait_for_playout" if first == "capture_frame" else "capture_frame"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(tasks[first], source)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(tasks[second], source)
                await trio.testing.wait_all_tasks_blocked()
                assert results == {}, "a task did not wait for the capture in flight"
                assert lib.rtc_capture_wait(source._handle.id, 0) == lib.RTC_CAPTURE_IN_FLIGHT
                if error:
                    await _complete(stalled, error)
                source.clear_queue()  # the native side lets the stalled capture, and those after it, complete
    outcomes = sorted(results.values())
    if error:
        assert outcomes == ["RtcError: capture_audio_frame failed (previous frame): injected failure", "ok"]
    else:
        assert outcomes == ["ok", "ok"]


def _eventfd_id(fd: int) -> str | None:
    """The kernel's id of the eventfd open as ``fd`` (None: nothing, or no eventfd, is open
    there); a number reused for a new eventfd gets a new id."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            return next((line.split()[1] for line in info if line.startswith("eventfd-id:")), None)
    except FileNotFoundError:
        return None


@pytest.mark.parametrize("cancelled", ["the source's block", "both tasks"])
async def test_a_blocked_wait_for_playout_ends_with_its_source(cancelled: str) -> None:
    outcome: list[str] = []

    async def wait(source: rtc.AudioSource) -> None:
        try:
            await source.wait_for_playout()
            outcome.append("returned")
        except trio.ClosedResourceError:
            outcome.append("closed")
        except trio.Cancelled:
            outcome.append("cancelled")
            raise

    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as block:
                async with rtc.open_audio_source(queue_size_ms=STALL_QUEUE_MS) as source:
                    wake_fd = source._wake_fd
                    wake_id = _eventfd_id(wake_fd)
                    assert wake_id is not None
                    await _stall(source)
                    nursery.start_soon(wait, source)
                    await trio.testing.wait_all_tasks_blocked()
                    assert not outcome and lib.rtc_capture_wait(source._handle.id, 0) == lib.RTC_CAPTURE_IN_FLIGHT
                    (block if cancelled == "the source's block" else nursery.cancel_scope).cancel()
                    await trio.sleep_forever()
    assert outcome == (["closed"] if cancelled == "the source's block" else ["cancelled"])
    with pytest.raises(trio.ClosedResourceError):
        await source.wait_for_playout()
    # the source's eventfd was closed (its number may be reused, not by the same eventfd;
    # counting all fds raced native fds of earlier tests that close on native threads)
    assert _eventfd_id(wake_fd) != wake_id


def test_a_native_panic_wakes_a_task_waiting_for_a_capture() -> None:
    # No completion may come after a panic: the waiter is woken and gets the panic's error.
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(
        """
        import trio, trio.testing, rtc_trio as rtc
        from rtc_trio._ffi import lib
        from rtc_trio._proto import ffi_pb2
        from tests.test_capture_sources import STALL_QUEUE_MS, _stall

        async def main():
            async with rtc.open_audio_source(queue_size_ms=STALL_QUEUE_MS) as source:
                with trio.fail_after(20):
                    await _stall(source)
                    async with trio.open_nursery() as nursery:
                        async def wait():
                            try:
                                await source.wait_for_playout()
                            except rtc.RtcError as error:
                                print("waiter:", error)
                        nursery.start_soon(wait)
                        await trio.testing.wait_all_tasks_blocked()
                        event = ffi_pb2.FfiEvent()
                        event.panic.message = "boom"
                        data = event.SerializeToString()
                        await trio.to_thread.run_sync(lib.rtc_on_event, data, len(data))

        trio.run(main)
        """)],
        capture_output=True, text=True, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)),
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "waiter: the native LiveKit library panicked: boom" in result.stdout
