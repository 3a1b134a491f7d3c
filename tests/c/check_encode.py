"""Decodes the harness's encode_capture outputs with protobuf's own decoder (stdin).

Each line: source async_id data_ptr num_channels sample_rate samples_per_channel (decimal),
then the encoded FfiRequest in hex. Every field must read back, and protobuf must encode
the same request to the same bytes. Exits 1 naming the first mismatch.
"""

from __future__ import annotations

import sys

from make_seeds import _proto


def main() -> int:
    ffi_pb2 = _proto()
    count = 0
    for line in sys.stdin:
        *numbers, encoded = line.split()
        source, async_id, ptr, channels, rate, samples = map(int, numbers)
        data = bytes.fromhex(encoded)
        request = ffi_pb2.FfiRequest.FromString(data)
        capture = request.capture_audio_frame
        got = (request.WhichOneof("message"), capture.source_handle, capture.request_async_id,
               capture.buffer.data_ptr, capture.buffer.num_channels, capture.buffer.sample_rate,
               capture.buffer.samples_per_channel)
        want = ("capture_audio_frame", source, async_id, ptr, channels, rate, samples)
        if got != want or request.SerializeToString() != data:
            print(f"FAIL encode_capture: wrote {encoded}, protobuf read {got}, want {want}")
            return 1
        count += 1
    if count == 0:
        print("FAIL encode_capture: no input")
        return 1
    print(f"encode_capture: {count} requests decoded by protobuf exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
