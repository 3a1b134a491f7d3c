"""Does the native library still crash with two tracks on one audio source?

rtc_trio refuses a second open LocalAudioTrack per AudioSource because, measured on
livekit 1.2.1, releasing two tracks of one source after audio flowed corrupted the native heap
now and then (SIGSEGV in 3-6 of 20 processes of 300 sources; 0 of 20 with one track). Run
this after a livekit upgrade before lifting that rule:

    python tests/stress_two_tracks.py [--processes 20] [--sources 300] [--one]

Each process opens sources one after another: a track (and, without ``--one``, a second
native track made by a raw request, past rtc_trio's refusal), a stream on the first,
three captures, one frame received, then everything closed. It prints how many processes died.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import trio


async def _one_source(index: int, two: bool) -> None:
    import rtc_trio as rtc
    from rtc_trio import _native
    from rtc_trio._handles import NativeHandle
    from rtc_trio._proto import ffi_pb2

    rate, channels = (48000, 1) if index % 2 else (16000, 2)
    async with rtc.open_audio_source(rate, channels, queue_size_ms=(0, 10, 100)[index % 3]) as source:
        second = None
        if two:  # a second track, as a user of the native library could make it
            req = ffi_pb2.FfiRequest()
            req.create_audio_track.name = "second"
            req.create_audio_track.source_handle = source._handle.id
            second = NativeHandle(_native.request(req).create_audio_track.track.handle.id)
        with rtc.LocalAudioTrack.create("first", source) as track:
            async with rtc.open_audio_stream(track, sample_rate=48000) as stream:
                frame = rtc.AudioFrame(np.ones((rate // 100, channels), np.int16), rate)
                for _ in range(3):
                    await source.capture_frame(frame)
                with trio.move_on_after(0.2):
                    await stream.receive()
        if second is not None:
            second.release()


def _child(sources: int, two: bool) -> None:
    async def main() -> None:
        for index in range(sources):
            await _one_source(index, two)

    trio.run(main)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--one", action="store_true", help="one track per source (the control)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.sources, not args.one)
        return 0
    died = 0
    for _ in range(args.processes):
        command = [sys.executable, __file__, "--child", "--sources", str(args.sources)]
        result = subprocess.run(command + (["--one"] if args.one else []), capture_output=True)
        died += result.returncode != 0
    print(f"{died} of {args.processes} processes died "
          f"({'one track' if args.one else 'two tracks'} per source, {args.sources} sources each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
