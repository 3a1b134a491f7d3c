"""The process-wide binding: library loading, native logs, panics, forks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rtc_trio as rtc
from rtc_trio import _native


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )


def test_library_comes_from_the_installed_livekit_wheel() -> None:
    path = _native.library_path()
    assert path.endswith("livekit/rtc/resources/liblivekit_ffi.so") and os.path.exists(path)


def test_a_bad_library_path_is_a_clear_error() -> None:
    result = _run(
        """
        import trio, rtc_trio as rtc
        async def main():
            async with rtc.open_audio_source():
                pass
        try:
            trio.run(main)
        except rtc.RtcError as error:
            print("RtcError:", error)
        """,
        LIVEKIT_LIB_PATH="/nonexistent/liblivekit_ffi.so",
    )
    assert "RtcError: cannot load livekit_ffi from /nonexistent/liblivekit_ffi.so" in result.stdout, result.stderr


def test_a_native_panic_becomes_an_error_not_a_silent_kill() -> None:
    # The wheel's library aborts the process on a panic inside a request (it prints the
    # panic first), which is why rtc_trio validates what the native side would assert on.
    # Panics it catches arrive as a Panic event: fed here through the real callback entry
    # point, a blocked reader and every later call get an RtcError and the process lives on.
    result = _run(
        """
        import trio, rtc_trio as rtc
        from rtc_trio._ffi import ffi, lib
        from rtc_trio._proto import ffi_pb2

        async def main():
            async with rtc.open_audio_source(queue_size_ms=0) as source:
                with rtc.LocalAudioTrack.create("mic", source) as track:
                    async with rtc.open_audio_stream(track) as stream:
                        async with trio.open_nursery() as nursery:
                            async def read():
                                try:
                                    await stream.receive()
                                except rtc.RtcError as error:
                                    print("reader:", error)
                            nursery.start_soon(read)
                            await trio.sleep(0.1)
                            event = ffi_pb2.FfiEvent()
                            event.panic.message = "boom"
                            data = event.SerializeToString()
                            await trio.to_thread.run_sync(lib.rtc_on_event, data, len(data))
            async with rtc.open_audio_source():
                pass

        try:
            trio.run(main)
        except rtc.RtcError as error:
            print("then:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "reader: the native LiveKit library panicked: boom" in result.stdout
    assert "then: the native LiveKit library panicked: boom" in result.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_use_in_a_forked_child_is_refused() -> None:
    result = _run(
        """
        import os, trio, rtc_trio as rtc
        async def main():
            async with rtc.open_audio_source():
                pass
        trio.run(main)  # the library is loaded in the parent
        pid = os.fork()
        if pid == 0:
            try:
                trio.run(main)
            except rtc.RtcError as error:
                print("child:", error, flush=True)
                os._exit(0)
            os._exit(1)
        _, status = os.waitpid(pid, 0)
        print("child exit", os.waitstatus_to_exitcode(status))
        """
    )
    assert "child: rtc_trio cannot be used in a child forked" in result.stdout, result.stderr
    assert "child exit 0" in result.stdout


def test_importing_does_not_load_the_asyncio_sdk() -> None:
    result = _run("import sys, rtc_trio; print('livekit.rtc' in sys.modules)")
    assert result.stdout.strip() == "False", result.stderr


async def test_live_handles_counts_every_native_handle_held() -> None:
    import numpy as np
    import trio

    base = rtc.live_handles()
    async with rtc.open_audio_source(queue_size_ms=0) as source:
        assert rtc.live_handles() == base + 1
        with rtc.LocalAudioTrack.create("mic", source) as track:
            assert rtc.live_handles() == base + 2
            async with rtc.open_audio_stream(track) as stream:
                assert rtc.live_handles() == base + 3
                for _ in range(3):
                    await source.capture_frame(rtc.AudioFrame(np.zeros(480, np.int16), 48000))
                with trio.fail_after(5):
                    frames = [await stream.receive() for _ in range(3)]
                assert rtc.live_handles() == base + 6  # each received frame holds its buffer
                del frames
                assert rtc.live_handles() == base + 3
            assert rtc.live_handles() == base + 2
        assert rtc.live_handles() == base + 1
    assert rtc.live_handles() == base


def test_exit_while_native_threads_still_deliver_does_not_abort() -> None:
    # Unpaced video keeps native threads delivering into Python until the very end; at
    # interpreter exit a thread that got into Python late was ended mid-callback by CPython,
    # and the forced unwind through Rust frames aborted the process (3 of 3 runs of this
    # bench workload before the fix; a shorter script did not reproduce it).
    bench = Path(__file__).resolve().parent.parent / "bench" / "side_rtc_trio.py"
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, str(bench), "video-720p", "--duration", "1", "--capacity", "30",
             "--drain", "1"],
            capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "panicked" not in result.stderr
        assert '"frames_per_s"' in result.stdout
