"""One participant of tests/test_network_faults.py, run as a process of its own.

``python tests/fault_peer.py publish URL TOKEN FREQUENCY`` joins and plays a tone;
``python tests/fault_peer.py listen URL TOKEN FOLLOWED GRACE`` joins and reads the followed
participant's microphone through one stream opened with ``participant=``. It imports no more
than it needs (no pytest, no token library): many of these start at once on a busy host.

The peer reports on
stdout, one JSON object a line, each with ``t`` (``time.monotonic()``, the same clock in every
process) and ``event``; it takes commands on stdin, one a line: ``leave`` and ``join`` (a
publisher leaves the room, or joins it again under the same identity, with ``join FREQUENCY``
changing the tone), ``full-reconnect`` (ask the native side to do a full reconnect next),
``exit``. It ends with an ``exit`` report that carries the native handles it still holds.
A listener reports what its room does and what its stream delivers: ``audio`` every 0.5 s
(frames, dominant frequency), ``gap`` for an interval of more than 0.2 s between two frames
that carry the tone (``t`` the first after it, ``since`` the last before), ``stream_end``
when the stream ends.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, AsyncIterator

import numpy as np
import trio

import rtc_trio as rtc
from rtc_trio import _native
from rtc_trio._proto import ffi_pb2, room_pb2

RATE = 48000
GAP = 0.2  # seconds between two frames of the tone reported as a gap
TONE_RMS = 1000.0  # a frame louder than this carries the tone (played at an RMS of 11,585)
WINDOW = 0.5  # seconds of audio per ``audio`` report


def report(event: str, **fields: Any) -> None:
    print(json.dumps({"t": time.monotonic(), "event": event, **fields}), flush=True)


async def commands() -> AsyncIterator[list[str]]:
    """The lines of stdin, as they come."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    async with stdin:
        while True:
            chunk = await stdin.receive_some()
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode().split()


def dominant_frequency(samples: np.ndarray[Any, Any]) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    spectrum[:3] = 0  # no DC
    return float(np.argmax(spectrum)) * RATE / len(samples)


async def play_tone(source: rtc.AudioSource, frequency: float) -> None:
    """10 ms frames of a tone, paced in real time by the source's queue, until cancelled."""
    for index in range(2**62):
        t = (np.arange(480) + index * 480) / RATE
        data = (0.5 * 32767 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
        await source.capture_frame(rtc.AudioFrame(data, sample_rate=RATE))


async def full_reconnect(room: rtc.Room) -> None:
    """Ask the native side to make its next reconnection a full one, and start it."""
    req = ffi_pb2.FfiRequest()
    req.simulate_scenario.room_handle = room._handle.id
    req.simulate_scenario.scenario = room_pb2.SIMULATE_FULL_RECONNECT
    reply = await _native.request_async(req, "simulate_scenario")
    report("simulated", error=reply.error if reply.HasField("error") else None)


async def publish(url: str, token: str, frequency: float) -> None:
    lines = commands()
    while True:
        async with rtc.connect(url, token) as room, \
                rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source, \
                trio.open_nursery() as nursery:
            with rtc.LocalAudioTrack.create("tone", source) as track:
                options = rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE)
                await room.local_participant.publish_track(track, options)
                nursery.start_soon(play_tone, source, frequency)
                report("published", frequency=frequency)
                command = await anext(lines, ["exit"])
                while command[0] == "full-reconnect":
                    await full_reconnect(room)
                    command = await anext(lines, ["exit"])
                nursery.cancel_scope.cancel()
        report("left")
        if command[0] == "leave":
            command = await anext(lines, ["exit"])
        if command[0] != "join":
            return
        if len(command) > 1:
            frequency = float(command[1])


async def watch_room(room: rtc.Room, events: rtc.RoomEvents) -> None:
    async for event in events:
        name = type(event).__name__
        if os.environ.get("FAULT_DEBUG"):
            print("EVENT", time.monotonic(), event, file=sys.stderr, flush=True)
        if isinstance(event, (rtc.ParticipantConnected, rtc.ParticipantDisconnected)):
            report(name, identity=event.participant.identity)
        elif isinstance(event, rtc.Disconnected):
            report(name, reason=event.reason.name)
        elif isinstance(event, (rtc.Reconnecting, rtc.Reconnected, rtc.TrackSubscribed,
                                rtc.TrackUnsubscribed)):
            report(name)


async def read_stream(stream: rtc.AudioStream) -> None:
    """Report the tone's gaps and, every 0.5 s, what was heard (silence has frequency 0).

    Frames keep coming through an outage (the native receiver conceals the missing audio),
    so a gap is measured between frames that carry the tone."""
    window: list[np.ndarray[Any, Any]] = []
    last_tone = started = time.monotonic()
    async for frame in stream:
        now = time.monotonic()
        samples = frame.data[:, 0].copy()
        if np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > TONE_RMS:
            if now - last_tone > GAP:
                report("gap", since=last_tone, stream=id(stream))
            last_tone = now
        window.append(samples)
        if now - started >= WINDOW:
            report("audio", frames=len(window), stream=id(stream), dropped=stream.dropped,
                   frequency=dominant_frequency(np.concatenate(window)))
            window, started = [], now
    report("stream_end", stream=id(stream))


async def listen(url: str, token: str, followed: str, grace: float) -> None:
    async with rtc.connect(url, token) as room:
        events = room.events()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_room, room, events)
            while followed not in room.remote_participants:
                await trio.sleep(0.02)
            async with rtc.open_audio_stream(participant=room.remote_participants[followed],
                                             track_source=rtc.TrackSource.MICROPHONE,
                                             rejoin_grace=grace) as stream, \
                    trio.open_nursery() as reading:
                report("following", stream=id(stream))
                reading.start_soon(read_stream, stream)
                async for command in commands():
                    if command[0] == "full-reconnect":
                        await full_reconnect(room)
                    elif command[0] == "exit":
                        break
                reading.cancel_scope.cancel()
            nursery.cancel_scope.cancel()


def settled_handles(timeout: float = 6.0) -> int:
    """Native handles still held once late events parked for nobody expired (as the suite's
    own check waits for them, tests/conftest.py)."""
    deadline = time.monotonic() + timeout
    while (live := rtc.live_handles()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return live


def main() -> None:
    role, url, token, *rest = sys.argv[1:]
    if role == "publish":
        trio.run(publish, url, token, float(rest[0]))
    else:
        trio.run(listen, url, token, rest[0], float(rest[1]))
    live = settled_handles()
    if live:  # what is still held, for the failure message
        from rtc_trio import _handles, _router
        print("held:", sorted(_handles._held), "parked:", dict(_router._parked),
              "routes:", list(_router._routes), file=sys.stderr, flush=True)
    report("exit", live_handles=live)


if __name__ == "__main__":
    main()
