"""The C layer through its real entry points: crafted native events, ring and capture records.

Events are fed to ``on_native_event``, the callback livekit_ffi's threads call, from a thread
as the native side would. Frame handles in crafted events are real native handles (audio
sources made for the purpose), so whether rtc_trio dropped one shows natively: dropping it
again then fails.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator

import numpy as np
import pytest
import trio

from rtc_trio import _native, _router
from rtc_trio._audio_frame import valid_buffer_info
from rtc_trio._audio_stream import AudioStream
from rtc_trio._ffi import ffi, lib
from rtc_trio._handles import NativeHandle
from rtc_trio._proto import audio_frame_pb2, ffi_pb2
from tests.helpers import audio_loopback

FAKE_ID = (1 << 61) + 4242  # no native object has this handle


def _spare_handle() -> int:
    """A real native handle nobody holds (an audio source): a crafted frame's handle."""
    req = ffi_pb2.FfiRequest()
    req.new_audio_source.type = audio_frame_pb2.AudioSourceType.AUDIO_SOURCE_NATIVE
    req.new_audio_source.sample_rate = 48000
    req.new_audio_source.num_channels = 1
    return int(_native.request(req).new_audio_source.source.handle.id)


def _frame_event(stream: int, handle: int | None, **info: int) -> bytes:
    event = ffi_pb2.FfiEvent()
    event.audio_stream_event.stream_handle = stream
    owned = event.audio_stream_event.frame_received.frame
    if handle is not None:
        owned.handle.id = handle
    owned.info.SetInParent()
    for name, value in info.items():
        setattr(owned.info, name, value)
    return event.SerializePartialToString()  # fields the protocol requires may be missing


async def _feed(data: bytes) -> None:
    await trio.to_thread.run_sync(lib.on_native_event, data, len(data))


@pytest.fixture
async def quiet_stream() -> AsyncIterator[AudioStream]:
    """A stream whose track nobody captures into: only crafted frames arrive."""
    async with audio_loopback(capacity=8) as (_, _, stream):
        yield stream


def _nothing_buffered(stream: AudioStream) -> bool:
    slot = ffi.new("rtc_audio_frame *")
    return not stream._sub._items and not lib.rtc_ring_pop(stream._handle.id, slot)


GOOD = dict(num_channels=1, sample_rate=48000, samples_per_channel=480)
MALFORMED = {
    "no sample_rate": dict(num_channels=1, samples_per_channel=480),
    "no num_channels": dict(sample_rate=48000, samples_per_channel=480),
    "no samples_per_channel": dict(num_channels=1, sample_rate=48000),
    "zero channels": dict(GOOD, num_channels=0),
    "33 channels": dict(GOOD, num_channels=33),
    "rate above 384 kHz": dict(GOOD, sample_rate=384_001),
    "over 10 s long": dict(GOOD, samples_per_channel=480_001),
    "2**32 - 1 samples": dict(GOOD, samples_per_channel=2**32 - 1),
    "no data_ptr": dict(GOOD, data_ptr=0),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_frame_is_dropped_with_its_handle_before_any_view(
    case: str, quiet_stream: AudioStream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rtc_trio")
    buffer = np.arange(480, dtype=np.int16)
    info = {"data_ptr": int(ffi.cast("uintptr_t", ffi.from_buffer(buffer))), **MALFORMED[case]}
    handle = _spare_handle()
    await _feed(_frame_event(quiet_stream._handle.id, handle, **info))
    # neither the native ring (C checks it) nor the router (Python's handler does) has it
    assert _nothing_buffered(quiet_stream)
    assert not lib.rtc_drop_handle(handle), "its handle was not dropped"
    assert "dropped a malformed audio frame event" in caplog.text
    assert quiet_stream.dropped == 0


async def test_a_frame_without_a_handle_is_dropped(quiet_stream: AudioStream) -> None:
    buffer = np.arange(480, dtype=np.int16)
    ptr = int(ffi.cast("uintptr_t", ffi.from_buffer(buffer)))
    await _feed(_frame_event(quiet_stream._handle.id, None, data_ptr=ptr, **GOOD))
    assert _nothing_buffered(quiet_stream)


async def test_a_crafted_valid_frame_arrives_whole(quiet_stream: AudioStream) -> None:
    # the positive control of the cases above: the same path delivers a well-formed frame
    buffer = np.arange(960, dtype=np.int16)
    ptr = int(ffi.cast("uintptr_t", ffi.from_buffer(buffer)))
    await _feed(_frame_event(quiet_stream._handle.id, _spare_handle(), data_ptr=ptr,
                             num_channels=2, sample_rate=48000, samples_per_channel=480))
    with trio.fail_after(5):
        frame = await quiet_stream.receive()
    assert frame.data.shape == (480, 2) and frame.sample_rate == 48000
    np.testing.assert_array_equal(frame.data.reshape(-1), buffer)
    del frame  # its view releases the handle


async def test_frames_at_the_bounds_are_accepted_natively(quiet_stream: AudioStream) -> None:
    # the largest frame C accepts is one Python's check accepts too (no view is built here)
    slot = ffi.new("rtc_audio_frame *")
    for info in (dict(num_channels=16, sample_rate=384_000, samples_per_channel=3_840_000),
                 dict(num_channels=1, sample_rate=1, samples_per_channel=1)):
        handle = _spare_handle()
        await _feed(_frame_event(quiet_stream._handle.id, handle, data_ptr=1 << 40, **info))
        assert lib.rtc_ring_pop(quiet_stream._handle.id, slot)
        assert (slot.handle, slot.num_channels, slot.sample_rate, slot.samples_per_channel) == (
            handle, info["num_channels"], info["sample_rate"], info["samples_per_channel"])
        assert valid_buffer_info(slot)
        assert lib.rtc_drop_handle(handle)


async def test_a_second_ring_for_a_stream_is_refused_as_such() -> None:
    assert lib.rtc_ring_open(FAKE_ID, 4, -1) == lib.RTC_OPENED
    try:
        assert lib.rtc_ring_open(FAKE_ID, 4, -1) == lib.RTC_EXISTS
        with pytest.raises(RuntimeError, match="already has a frame ring"):
            AudioStream(_router.Subscription(4), NativeHandle(FAKE_ID), 48000, 1)
    finally:
        lib.rtc_ring_close(FAKE_ID)
    assert lib.rtc_ring_open(FAKE_ID, 0, -1) == lib.RTC_BAD_CAPACITY


def test_a_second_capture_record_for_a_source_is_refused() -> None:
    assert lib.rtc_capture_open(FAKE_ID, -1) == lib.RTC_OPENED
    try:
        assert lib.rtc_capture_open(FAKE_ID, -1) == lib.RTC_EXISTS
    finally:
        lib.rtc_capture_close(FAKE_ID)
    lib.rtc_capture_close(FAKE_ID)  # a second close finds nothing
    assert lib.rtc_capture_wait(FAKE_ID, 0) == lib.RTC_CAPTURE_CLOSED
