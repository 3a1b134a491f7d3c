"""Every bound of the media layer: the value at it works, the value just past it is refused.

Both reach for the native side (a value past a bound would, were its check broken, and
several of them abort the process), so every case runs through tests/fuzz_api.py in worker
subprocesses: an abort is a failure naming the input, not a dead test run. All cases run in
one go (a module fixture); each bound is its own test. The support tables themselves are
checked whole: every conversion and every capture into every stream format.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np
import pytest
import trio

import rtc_trio as rtc
from rtc_trio import _handles, _native
from rtc_trio._ffi import lib
from rtc_trio._proto import ffi_pb2
from tests import fuzz_api
from tests.fuzz_api import CONVERSIONS, STREAM_FORMATS, TYPES, Case, np_value

ROOT = Path(__file__).resolve().parent.parent
OK, VALUE, TYPE = "ok", "ValueError", "TypeError"


def audio(rate: Any = 48000, channels: Any = 1, queue: Any = 0, stream: dict[str, Any] | None = None,
          samples: int | None = None, count: int = 3) -> Case:
    """A source (and a stream) of these arguments; with a stream, captures until a frame comes."""
    case: Case = {"op": "audio", "source": {"rate": rate, "channels": channels, "queue_ms": queue}}
    if stream is not None:
        case["stream"] = stream
        if isinstance(rate, int) and isinstance(channels, int):
            case["capture"] = {"samples": samples or max(rate // 100, 1), "channels": channels,
                               "count": count}
    return case


def video(w: Any = 16, h: Any = 16, kind: Any = "RGBA", fmt: Any = "RGBA", source: tuple[Any, Any] | None = None,
          **extra: Any) -> Case:
    """A source, a frame captured into it, and a stream of ``fmt`` (None: no stream) reading it."""
    sw, sh = source or (w, h)
    case: Case = {"op": "video", "source": {"w": sw, "h": sh},
                  "capture": {"w": w, "h": h, "type": kind, **extra.pop("capture", {})}}
    then = extra.pop("then", None)
    if then is not None:  # the received frame is converted to it
        case["then"] = then
    if fmt is not None:
        case["stream"] = {"format": fmt, **extra}
    return case


BOUNDS: list[tuple[str, Case, str, str]] = [
    # (test id, case, expected outcome, words the refusal names)
    # -- audio formats: sources
    ("source-rate-8000", audio(8000), OK, ""),
    ("source-rate-7999", audio(7999, queue=100), VALUE, "sample_rate"),
    ("source-rate-384000", audio(384000, 2), OK, ""),
    ("source-rate-384001", audio(384001, queue=100), VALUE, "sample_rate"),
    ("source-rate-1", audio(1), VALUE, "sample_rate"),
    ("source-rate-99-queued", audio(99, queue=100), VALUE, "sample_rate"),
    ("source-rate-bool", audio(True), TYPE, "sample_rate"),
    ("source-rate-float", audio(48000.0), TYPE, "sample_rate"),
    ("source-rate-numpy", audio(np_value("int32", 16000)), OK, ""),
    ("source-channels-16", audio(48000, 16), OK, ""),
    ("source-channels-17", audio(8000, 17), VALUE, "num_channels"),
    ("source-channels-0", audio(48000, 0), VALUE, "num_channels"),
    ("source-96000x8", audio(96000, 8), OK, ""),
    ("source-96000x9", audio(96000, 9), VALUE, "samples a second"),
    ("source-384000x3", audio(384000, 3), VALUE, "samples a second"),
    ("source-direct-rate-not-x100", audio(22050, queue=0), VALUE, "multiple of 100"),
    ("source-queued-22050", audio(22050, queue=100), OK, ""),
    ("source-queue-60000", audio(queue=60_000), OK, ""),
    ("source-queue-60010", audio(queue=60_010), VALUE, "multiple of 10"),
    ("source-queue-numpy", audio(queue=np_value("int64", 100)), OK, ""),
    # -- audio formats: streams, resampling and remixing to and from the edges
    ("stream-rate-8000", audio(48000, 2, stream={"rate": 8000, "channels": 2}), OK, ""),
    ("stream-rate-7999", audio(stream={"rate": 7999}), VALUE, "sample_rate"),
    ("stream-rate-99", audio(stream={"rate": 99}), VALUE, "sample_rate"),
    ("stream-rate-384000", audio(8000, 1, stream={"rate": 384000, "channels": 2}), OK, ""),
    ("stream-rate-384001", audio(stream={"rate": 384001}), VALUE, "sample_rate"),
    ("stream-8000x16-to-48000x16", audio(8000, 16, stream={"rate": 48000, "channels": 16}), OK, ""),
    ("stream-48000x16-to-11025x16", audio(48000, 16, stream={"rate": 11025, "channels": 16}), OK, ""),
    ("stream-192000x4-to-8000x4", audio(192000, 4, stream={"rate": 8000, "channels": 4}), OK, ""),
    ("stream-8000x16-to-48000x17", audio(8000, 16, stream={"rate": 48000, "channels": 17}), VALUE, "num_channels"),
    ("stream-to-192000x5", audio(48000, 4, stream={"rate": 192000, "channels": 5}), VALUE, "samples a second"),
    ("stream-frame-1ms", audio(stream={"frame_ms": 1}), OK, ""),
    ("stream-frame-10000ms", audio(stream={"frame_ms": 10_000}, count=1001), OK, ""),
    ("stream-frame-10001ms", audio(stream={"frame_ms": 10_001}), VALUE, "frame_size_ms"),
    ("stream-frame-0ms", audio(stream={"frame_ms": 0}), VALUE, "frame_size_ms"),
    # -- capacities: memory bounds (the example first: it made the native side abort)
    ("audio-capacity-2**31", audio(stream={"capacity": 2**31}), VALUE, "128 MiB"),
    ("audio-capacity-at-limit", {"op": "audio", "source": {"rate": 48000, "channels": 1, "queue_ms": 0},
                                 "stream": {"capacity": 139_810}}, OK, ""),
    ("audio-capacity-past-limit", audio(stream={"capacity": 139_811}), VALUE, "between 1 and 139810"),
    ("audio-capacity-long-frames", audio(384000, 2, stream={"rate": 384000, "channels": 2, "frame_ms": 10_000,
                                                            "capacity": 8}, count=1001), OK, ""),
    ("audio-capacity-long-frames-past", audio(384000, 2, stream={"rate": 384000, "channels": 2,
                                                                 "frame_ms": 10_000, "capacity": 9}),
     VALUE, "between 1 and 8"),
    ("audio-capacity-0", audio(stream={"capacity": 0}), VALUE, "capacity"),
    ("audio-capacity-bool", audio(stream={"capacity": True}), TYPE, "capacity"),
    ("video-capacity-30", video(capacity=30), OK, ""),
    ("video-capacity-31", video(capacity=31), VALUE, "between 1 and 30"),
    ("video-capacity-2**31", video(capacity=2**31), VALUE, "capacity"),
    # -- video sizes
    ("source-4x4-with-stream", video(4, 4), OK, ""),
    ("source-3x4", video(4, 4, source=(3, 4)), VALUE, "width"),
    ("source-4x3", video(4, 4, source=(4, 3)), VALUE, "height"),
    ("source-2x2", video(4, 4, source=(2, 2)), VALUE, "width"),
    ("capture-3x4", video(3, 4, source=(16, 16)), VALUE, "at least 4x4"),
    ("capture-4x3", video(4, 3, source=(16, 16)), VALUE, "at least 4x4"),
    ("capture-17x3", video(17, 3, source=(16, 16)), VALUE, "at least 4x4"),
    ("capture-odd-5x7", video(5, 7), OK, ""),
    ("capture-16384x16", video(16384, 16, "I420", "I420"), OK, ""),
    ("capture-16385x16", video(16385, 16, source=(16, 16)), VALUE, "width"),
    ("capture-4096x4096", video(4096, 4096, "I420", "I420"), OK, ""),
    ("source-4096x4097", video(16, 16, source=(4096, 4097)), VALUE, "pixels"),
    ("frame-4097x4096", {"op": "video_frame", "w": 4097, "h": 4096, "type": "I420"}, VALUE, "pixels"),
    ("frame-1x1", {"op": "video_frame", "w": 1, "h": 1, "type": "NV12"}, OK, ""),
    ("frame-numpy-size", {"op": "video_frame", "w": np_value("int16", 6), "h": np_value("uint64", 2),
                          "type": "I010"}, OK, ""),
    ("frame-width-bool", {"op": "video_frame", "w": True, "h": 2, "type": "RGBA"}, TYPE, "width"),
    ("capture-changed-after-made", video(16, 16, capture={"set": {"width": 4096}}), VALUE, "bytes"),
    ("capture-timestamp-past", video(capture={"timestamp_us": 2**63}), VALUE, "timestamp_us"),
    ("capture-timestamp-negative", video(capture={"timestamp_us": -1}), VALUE, "negative"),
    ("capture-rotation-45", video(capture={"rotation": 45}), VALUE, "rotation"),
    ("capture-rotation-str", video(capture={"rotation": "90"}), TYPE, "rotation"),
    ("capture-rotation-270", video(capture={"rotation": 270}), OK, ""),
    ("convert-flip-int", {"op": "convert", "w": 4, "h": 4, "type": "RGBA", "dst": "I420", "flip": 1},
     TYPE, "flip_y"),
]
# stream formats: the six a stream delivers, and the five it would not
BOUNDS += [(f"stream-format-{f}", video(17, 9, "RGBA", f), OK if f in STREAM_FORMATS else VALUE,
            "" if f in STREAM_FORMATS else "delivers") for f in TYPES]
# conversions: the table, both ways of flip_y, at sizes down to 1x1; every other pair refused
BOUNDS += [(f"convert-{src}-{dst}-{'flip' if flip else 'plain'}-{w}x{h}",
            {"op": "convert", "w": w, "h": h, "type": src, "dst": dst, "flip": flip}, OK, "")
           for src in TYPES for dst in [src, *CONVERSIONS[src]] for flip in (False, True)
           for w, h in [(1, 1), (17, 3)]]
BOUNDS += [(f"convert-{src}-{dst}", {"op": "convert", "w": 6, "h": 2, "type": src, "dst": dst, "flip": False},
            VALUE, "converts to") for src in TYPES for dst in TYPES if dst != src and dst not in CONVERSIONS[src]]
# captures of every type into a stream of every format it delivers, at an odd size
BOUNDS += [(f"capture-{kind}-into-{fmt}", video(17, 9, kind, fmt, then=kind if kind in (fmt, *CONVERSIONS[fmt]) else None),
            OK, "") for kind in TYPES for fmt in STREAM_FORMATS]


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, str]]:
    """Every case of BOUNDS run once, in worker subprocesses running this checkout."""
    env = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env) if p)
    try:
        results, _ = fuzz_api.run_cases([case for _, case, _, _ in BOUNDS], jobs=2, batch=40)
    finally:
        os.environ["PYTHONPATH"] = env
    by_case = {fuzz_api.show(r.case): r.outcome for r in results}
    yield {name: by_case[fuzz_api.show(case)] for name, case, _, _ in BOUNDS}


@pytest.mark.parametrize("name, case, expected, words", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_bound(outcomes: dict[str, str], name: str, case: Case, expected: str, words: str) -> None:
    outcome = outcomes[name]
    assert outcome.startswith(expected), f"{fuzz_api.show(case)} -> {outcome}"
    assert words in outcome, outcome
    assert "leaked" not in outcome


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_converted_pixels_are_right() -> None:
    # in a subprocess: the I010 and ABGR conversions aborted the process before their fixes
    result = _run(
        """
        import numpy as np, rtc_trio as rtc
        T = rtc.VideoBufferType
        w, h = 6, 4
        y = (np.arange(w * h, dtype=np.uint16).reshape(h, w) * 40 + 64)  # 10-bit values
        u = np.full((h // 2, w // 2), 512, np.uint16)
        i010 = rtc.VideoFrame(w, h, T.I010, np.concatenate([y.ravel(), u.ravel(), u.ravel()]).view(np.uint8))
        i420 = i010.convert(T.I420)
        print("i010", np.abs(i420.planes()[0].astype(int) - (y >> 2)).max(), i420.planes()[1].max())
        rgba = np.random.default_rng(1).integers(0, 256, (h, w, 4), dtype=np.uint8)
        abgr = rtc.VideoFrame(w, h, T.ABGR, rgba[..., ::-1].copy())
        print("abgr", np.array_equal(abgr.convert(T.RGBA).data, rgba),
              np.array_equal(abgr.convert(T.I420).data, rtc.VideoFrame(w, h, T.RGBA, rgba).convert(T.I420).data),
              np.array_equal(abgr.convert(T.RGBA, flip_y=True).data, rgba[::-1]))
        nv12 = rtc.VideoFrame(5, 3, T.NV12, np.arange(15 + 6 * 2, dtype=np.uint8))
        flipped = nv12.convert(T.NV12, flip_y=True).planes()
        print("nv12", [np.array_equal(a[::-1], b) for a, b in zip(nv12.planes(), flipped)])
        """
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "i010 0 128" in result.stdout  # 10-bit samples >> 2, read with the right strides
    assert "abgr True True True" in result.stdout
    assert "nv12 [True, True]" in result.stdout


# -- received frames that cannot be read release their native buffer (issue 12, item 7) ------

def _native_i420() -> Any:
    """A real native frame buffer (its handle not yet owned by anyone): RGBA converted to I420."""
    req = ffi_pb2.FfiRequest()
    rgba = rtc.VideoFrame(16, 16, rtc.VideoBufferType.RGBA, np.zeros(16 * 16 * 4, np.uint8))
    req.video_convert.dst_type = rtc.VideoBufferType.I420.value  # type: ignore[assignment]
    rgba._buffer_info(req.video_convert.buffer)
    return _native.request(req).video_convert.buffer


def test_a_video_frame_of_unknown_type_releases_its_handle() -> None:
    # A newer protocol may add a buffer type: building the view of a real native buffer
    # described as type 11 must raise an RtcError and release the buffer (it leaked).
    owned = _native_i420()
    info = SimpleNamespace(**{f.name: getattr(owned.info, f.name) for f in owned.info.DESCRIPTOR.fields})
    info.type = 11
    before = rtc.live_handles()
    with pytest.raises(rtc.RtcError, match="unknown type 11"):
        rtc.VideoFrame._view(info, _handles.acquire(owned.handle.id), 0)  # type: ignore[arg-type]
    assert rtc.live_handles() == before


async def test_a_received_video_frame_that_cannot_be_read_is_an_rtc_error() -> None:
    # Fed through the real callback entry point: a frame whose description does not fit its
    # buffer (an RGBA row stride of 1 byte) cannot be viewed; the reader gets an RtcError and
    # nothing stays held.
    async with rtc.open_video_source(16, 16) as source:
        with rtc.LocalVideoTrack.create("cam", source) as track:
            async with rtc.open_video_stream(track, format=rtc.VideoBufferType.I420) as stream:
                owned = _native_i420()
                event = ffi_pb2.FfiEvent()
                event.video_stream_event.stream_handle = stream._handle.id
                received = event.video_stream_event.frame_received
                received.timestamp_us, received.rotation = 0, 0  # type: ignore[assignment]
                received.buffer.handle.id = owned.handle.id
                received.buffer.info.CopyFrom(owned.info)
                received.buffer.info.type = rtc.VideoBufferType.RGBA.value  # type: ignore[assignment]
                received.buffer.info.stride = 1
                del received.buffer.info.components[:]
                data = event.SerializeToString()
                await trio.to_thread.run_sync(lib.rtc_on_event, data, len(data))
                with trio.fail_after(5):
                    while True:  # black keepalive frames of the new source may come first
                        try:
                            await stream.receive()
                        except rtc.RtcError as error:
                            assert "cannot read a video frame" in str(error)
                            break
                # the frame's own handle, not a count: a keepalive frame may be buffered now
                assert not _handles.is_held(owned.handle.id)


def test_an_audio_frame_that_cannot_be_read_releases_its_handle() -> None:
    resampler = ffi_pb2.FfiRequest()
    resampler.new_audio_resampler.SetInParent()
    resampler_id = _native.request(resampler).new_audio_resampler.resampler.handle.id
    try:
        samples = np.zeros(480, np.int16)
        req = ffi_pb2.FfiRequest()
        req.remix_and_resample.resampler_handle = resampler_id
        info = req.remix_and_resample.buffer
        info.data_ptr, info.num_channels = samples.ctypes.data, 1
        info.sample_rate, info.samples_per_channel = 48000, 480
        req.remix_and_resample.num_channels, req.remix_and_resample.sample_rate = 1, 48000
        owned = _native.request(req).remix_and_resample.buffer
    finally:
        lib.rtc_drop_handle(resampler_id)

    class Unreadable:  # a description whose fields cannot be read
        data_ptr = owned.info.data_ptr
        num_channels = sample_rate = 1
        samples_per_channel = "?"

    before = rtc.live_handles()
    with pytest.raises(rtc.RtcError, match="cannot read an audio frame"):
        rtc.AudioFrame._view(Unreadable(), _handles.acquire(owned.handle.id))  # type: ignore[arg-type]
    assert rtc.live_handles() == before
