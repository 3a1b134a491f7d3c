"""Compares what the C layer read from the events it kept from Python with protobuf's decoder.

Input (a file named on the command line): the KEPT list of `harness fuzz`, one line per event
the C fast path settled itself: "F <event hex> stream handle data_ptr channels rate samples"
for a received frame, "C <event hex> async_id <error hex or ->" for a capture completion.
Python never sees those events, so C must read them exactly as protobuf would: any event
protobuf rejects, or reads otherwise, fails the check (exit 1, naming the event).
"""

from __future__ import annotations

import sys

from make_seeds import _proto


def read_back(ffi_pb2: type, kind: str, data: bytes) -> tuple[object, ...]:
    event = ffi_pb2.FromString(data)  # type: ignore[attr-defined]
    if kind == "C":
        if event.WhichOneof("message") != "capture_audio_frame":
            return ("not a capture completion",)
        done = event.capture_audio_frame
        error = done.error  # bytes when it is not UTF-8
        return (done.async_id, error if isinstance(error, bytes) else error.encode())
    if event.WhichOneof("message") != "audio_stream_event":
        return ("not an audio stream event",)
    stream = event.audio_stream_event
    if stream.WhichOneof("message") != "frame_received":
        return ("not a received frame",)
    owned = stream.frame_received.frame
    info = owned.info
    return (stream.stream_handle, owned.handle.id, info.data_ptr, info.num_channels,
            info.sample_rate, info.samples_per_channel)


def main(path: str) -> int:
    ffi_event = _proto().FfiEvent
    checked = 0
    with open(path) as kept:
        for line in kept:
            kind, encoded, *read = line.split()
            data = bytes.fromhex(encoded)
            if kind == "C":
                c_read: tuple[object, ...] = (int(read[0]), b"" if read[1] == "-" else bytes.fromhex(read[1]))
            else:
                c_read = tuple(int(value) for value in read)
            try:
                protobuf_read = read_back(ffi_event, kind, data)
            except Exception as error:  # protobuf refuses what C accepted
                protobuf_read = (f"{type(error).__name__}: {error}",)
            if protobuf_read != c_read:
                print(f"FAIL: C read {c_read} from {encoded}, protobuf reads {protobuf_read}")
                return 1
            checked += 1
    print(f"kept events: {checked} read by C exactly as protobuf reads them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
