"""Voice demo: a generated tone through source -> local track -> stream, or through a room.

    python -m rtc_trio [--seconds 2] [--frequency 440] [--wav out.wav]
    python -m rtc_trio --url ws://host:7880 --token JWT [--seconds 10] [--frequency 440]

With --url and --token it joins the room, publishes the tone as its microphone and reports,
once a second, what it hears from each of the others.
"""

from __future__ import annotations

import argparse
import math
import time
import wave

import numpy as np
import numpy.typing as npt
import trio

import rtc_trio as rtc

RATE = 48000
FRAME = RATE // 100  # 10 ms


def tone(frequency: float, index: int) -> rtc.AudioFrame:
    """The ``index``-th 10 ms frame of a sine tone at -6 dBFS."""
    t = (np.arange(FRAME) + index * FRAME) / RATE
    samples = (0.5 * 32767 * np.sin(2 * math.pi * frequency * t)).astype(np.int16)
    return rtc.AudioFrame(samples, sample_rate=RATE)


def level_dbfs(samples: npt.NDArray[np.int16]) -> float:
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20 * math.log10(max(rms, 1e-9) / 32768)


def dominant_frequency(samples: npt.NDArray[np.int16]) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * RATE / len(samples)


async def loopback(seconds: float, frequency: float, wav_path: str | None) -> None:
    frames_to_send = max(1, int(seconds * 100))
    received: list[npt.NDArray[np.int16]] = []
    async with rtc.open_audio_source(RATE, 1, queue_size_ms=100) as source:
        with rtc.LocalAudioTrack.create("tone", source) as track:
            async with rtc.open_audio_stream(track, sample_rate=RATE, num_channels=1) as stream:
                started = time.monotonic()
                async with trio.open_nursery() as nursery:

                    async def listen() -> None:
                        async for frame in stream:
                            received.append(frame.data[:, 0].copy())
                            if len(received) % 100 == 0:
                                print(f"  {len(received):5d} frames  level {level_dbfs(frame.data):6.1f} dBFS")
                            if len(received) == frames_to_send:
                                return

                    nursery.start_soon(listen)
                    for index in range(frames_to_send):
                        await source.capture_frame(tone(frequency, index))
                    await source.wait_for_playout()
                    with trio.move_on_after(1.0):  # the last frames are still on their way
                        while len(received) < frames_to_send:
                            await trio.sleep(0.01)
                    nursery.cancel_scope.cancel()
                elapsed = time.monotonic() - started
                dropped = stream.dropped
    audio = np.concatenate(received) if received else np.zeros(0, np.int16)
    print(f"sent {frames_to_send} frames of a {frequency:g} Hz tone in {elapsed:.2f} s")
    print(f"received {len(received)} frames, dropped {dropped}, "
          f"level {level_dbfs(audio) if len(audio) else float('-inf'):.1f} dBFS, "
          f"dominant frequency {dominant_frequency(audio) if len(audio) else 0:.1f} Hz")
    if wav_path:
        with wave.open(wav_path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(audio.tobytes())
        print(f"wrote {wav_path}")


async def room_mode(url: str, token: str, seconds: float, frequency: float) -> None:
    """Join, publish the tone, and report what every other participant sends."""
    async with rtc.connect(url, token) as room:
        events = room.events()
        print(f"joined room {room.name!r} as {room.local_participant.identity!r}; "
              f"others: {sorted(room.remote_participants) or 'none yet'}")
        async with rtc.open_audio_source(RATE, 1, queue_size_ms=200) as source:
            with rtc.LocalAudioTrack.create("tone", source) as track:
                options = rtc.TrackPublishOptions(source=rtc.TrackSource.MICROPHONE)
                await room.local_participant.publish_track(track, options)
                print(f"publishing a {frequency:g} Hz tone")
                with trio.move_on_after(seconds):
                    async with trio.open_nursery() as nursery:

                        async def send_tone() -> None:
                            index = 0
                            while True:
                                await source.capture_frame(tone(frequency, index))
                                index += 1

                        async def listen(who: str, remote: rtc.RemoteTrack) -> None:
                            async with rtc.open_audio_stream(remote, sample_rate=RATE) as stream:
                                second: list[npt.NDArray[np.int16]] = []
                                async for frame in stream:
                                    second.append(frame.data[:, 0].copy())
                                    if len(second) == 100:
                                        audio = np.concatenate(second)
                                        second.clear()
                                        print(f"  {who}: level {level_dbfs(audio):6.1f} dBFS, "
                                              f"dominant {dominant_frequency(audio):7.1f} Hz")
                            print(f"  {who}: stream ended")

                        nursery.start_soon(send_tone)
                        async for event in events:
                            if isinstance(event, rtc.TrackSubscribed) and \
                                    event.track.kind == rtc.TrackKind.AUDIO:
                                print(f"subscribed to {event.participant.identity}'s "
                                      f"{event.publication.source.name.lower()}")
                                nursery.start_soon(listen, event.participant.identity, event.track)
                            elif isinstance(event, (rtc.ParticipantConnected, rtc.ParticipantDisconnected)):
                                verb = "joined" if isinstance(event, rtc.ParticipantConnected) else "left"
                                print(f"{event.participant.identity} {verb}")
                            elif isinstance(event, rtc.DataReceived):
                                print(f"data from {event.sender_identity} on {event.topic!r}: "
                                      f"{len(event.payload)} bytes")
                            elif isinstance(event, rtc.Disconnected):
                                print(f"disconnected: {event.reason.name}")
                        nursery.cancel_scope.cancel()
    print("left the room")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m rtc_trio", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="how much tone to send")
    parser.add_argument("--frequency", type=float, default=440.0, help="tone frequency in Hz")
    parser.add_argument("--wav", metavar="PATH", help="also write what was received to a WAV file")
    parser.add_argument("--url", help="room mode: the LiveKit server (ws:// or wss://)")
    parser.add_argument("--token", help="room mode: a join token for the room")
    args = parser.parse_args()
    if args.seconds <= 0 or not 20 <= args.frequency <= RATE / 2:
        parser.error("--seconds must be positive and --frequency between 20 and 24000 Hz")
    if (args.url is None) != (args.token is None):
        parser.error("room mode needs both --url and --token")
    if args.url is not None:
        if args.wav:
            parser.error("--wav is for the loopback mode")
        trio.run(room_mode, args.url, args.token, args.seconds, args.frequency)
    else:
        trio.run(loopback, args.seconds, args.frequency, args.wav)


if __name__ == "__main__":
    main()
