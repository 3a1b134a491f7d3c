"""Seed corpus for tests/c/harness.c: real FfiEvent bytes made with livekit's protobuf modules.

Usage: python tests/c/make_seeds.py OUT_DIR. Writes OUT_DIR/*.bin (one event each) and
OUT_DIR/fields ("capture_event audio_stream_event capture_request" field numbers). The
stream handles (1..16) and async ids (1001..1008) are those of the rings and captures the
harness keeps open, so unmutated seeds reach them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def _proto() -> Any:
    """livekit's generated protobuf modules (the official package's import runs its SDK
    too, which costs a moment and needs no compiled rtc_trio)."""
    from livekit.rtc._proto import ffi_pb2

    return ffi_pb2


def events(ffi_pb2: Any) -> list[Any]:
    out = []

    def frame(stream: int, handle: int, ptr: int, channels: int, rate: int, samples: int) -> Any:
        event = ffi_pb2.FfiEvent()
        received = event.audio_stream_event
        received.stream_handle = stream
        owned = received.frame_received.frame
        owned.handle.id = handle
        owned.info.data_ptr, owned.info.num_channels = ptr, channels
        owned.info.sample_rate, owned.info.samples_per_channel = rate, samples
        return event

    for i, (channels, rate, samples) in enumerate(
        [(1, 48000, 480), (2, 48000, 960), (1, 16000, 160), (32, 384000, 3840000), (1, 1, 1), (2, 44100, 441)]
    ):
        out.append(frame(1 + i % 16, 500 + i, 0x7F0000001000 + i * 4096, channels, rate, samples))
    eos = ffi_pb2.FfiEvent()
    eos.audio_stream_event.stream_handle = 3
    eos.audio_stream_event.eos.SetInParent()
    out.append(eos)
    for i in range(8):
        done = ffi_pb2.FfiEvent()
        done.capture_audio_frame.async_id = 1001 + i
        if i % 3 == 1:
            done.capture_audio_frame.error = "an RtcError occurred: InvalidState - " + "x" * (40 * i)
        out.append(done)
    panic = ffi_pb2.FfiEvent()
    panic.panic.message = "boom"
    out.append(panic)
    logs = ffi_pb2.FfiEvent()
    record = logs.logs.records.add()
    record.level, record.target, record.message = ffi_pb2.LogLevel.LOG_INFO, "livekit", "hello"
    out.append(logs)
    video = ffi_pb2.FfiEvent()
    video.video_stream_event.stream_handle = 2
    video.video_stream_event.eos.SetInParent()
    out.append(video)
    return out


def main(out_dir: str) -> None:
    ffi_pb2 = _proto()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for i, event in enumerate(events(ffi_pb2)):
        (out / f"{i:03d}.bin").write_bytes(event.SerializeToString())
    numbers = ffi_pb2.FfiEvent.DESCRIPTOR.fields_by_name
    request = ffi_pb2.FfiRequest.DESCRIPTOR.fields_by_name["capture_audio_frame"].number
    (out / "fields").write_text(
        f"{numbers['capture_audio_frame'].number} {numbers['audio_stream_event'].number} {request}\n"
    )


if __name__ == "__main__":
    main(sys.argv[1])
