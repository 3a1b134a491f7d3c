"""Voice demo: a generated tone through source -> local track -> stream, or through a room.

    python -m rtc_trio [--seconds 2] [--frequency 440] [--wav out.wav] [--voice]
    python -m rtc_trio --url ws://host:7880 --token JWT [--seconds 10] [--frequency 440]

With --voice the tone then also goes through what a voice app does next: resampled to
16 kHz, played as the far end of an echo canceller that hears it back, and mixed with noise
for the noise suppressor; each stage reports what it did. With --url and --token it joins
the room, publishes the tone as its microphone and reports, once a second, what it hears
from each of the others.
"""

from __future__ import annotations

import argparse
import math
import time
import wave
from typing import AsyncIterator

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


def dominant_frequency(samples: npt.NDArray[np.int16], rate: int = RATE) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * rate / len(samples)


async def loopback(seconds: float, frequency: float, wav_path: str | None, voice: bool = False) -> None:
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
    if voice:  # the tone as sent: what the loopback lost under load does not blur the figures
        await voice_stages(np.concatenate([tone(frequency, i).data for i in range(frames_to_send)]))


# -- --voice: resampling, echo cancellation, noise suppression ----------------------------

VOICE_RATE = 16000
VOICE_CHUNK = VOICE_RATE // 100
ECHO_DELAY_MS = 40


async def frames_of(samples: npt.NDArray[np.int16], rate: int) -> AsyncIterator[rtc.AudioFrame]:
    """``samples`` as 10 ms frames (a copy each: the APM works in place)."""
    chunk = rate // 100
    for start in range(0, len(samples) - chunk + 1, chunk):
        await trio.sleep(0)
        yield rtc.AudioFrame(samples[start:start + chunk].copy(), rate)


async def drain(frames: trio.abc.ReceiveChannel[rtc.AudioFrame]) -> npt.NDArray[np.int16]:
    out = [frame.data.reshape(-1) async for frame in frames]
    return np.concatenate(out) if out else np.zeros(0, np.int16)


def power_db(samples: npt.NDArray[np.generic]) -> float:
    return 10 * math.log10(max(float(np.mean(np.asarray(samples, np.float64) ** 2)), 1e-9))


async def voice_stages(sent: npt.NDArray[np.int16]) -> None:
    """The tone through the voice toolkit; each stage prints what it did."""
    async with rtc.open_resampled(frames_of(sent, RATE), VOICE_RATE) as resampled:
        tone16 = await drain(resampled)
    print(f"resampled {RATE} -> {VOICE_RATE} Hz: {len(sent)} -> {len(tone16)} samples, "
          f"level {level_dbfs(sent):.1f} -> {level_dbfs(tone16):.1f} dBFS, dominant "
          f"{dominant_frequency(sent):.1f} -> {dominant_frequency(tone16, VOICE_RATE):.1f} Hz")

    # Echo: the tone is what the app plays; its microphone hears it 40 ms later at half level.
    delay = ECHO_DELAY_MS * VOICE_RATE // 1000
    echo = np.zeros(len(tone16), np.int16)
    echo[delay:] = tone16[:-delay] // 2
    async with rtc.open_audio_processor(
            frames_of(echo, VOICE_RATE), frames_of(tone16, VOICE_RATE), noise_suppression=False,
            stream_delay_ms=ECHO_DELAY_MS) as cleaned:
        no_echo = await drain(cleaned)
    settled = slice(len(no_echo) // 2, len(no_echo))  # after the canceller converged
    print(f"echo cancellation: echo {level_dbfs(echo[settled]):.1f} dBFS -> "
          f"{level_dbfs(no_echo[settled]):.1f} dBFS, attenuated by "
          f"{power_db(echo[settled]) - power_db(no_echo[settled]):.1f} dB (second half)")

    # Noise: white noise at -40 dBFS under the tone, which plays in the first quarter and the
    # third of the signal (a tone that never stops is itself stationary noise to a suppressor)
    n = len(tone16)
    noise = np.random.default_rng(0).normal(0, 32768 * 10 ** (-40 / 20), n)
    gate = (np.arange(n) * 4 // n) % 2 == 0
    noisy = np.clip(np.round(noise + tone16 * gate), -32768, 32767).astype(np.int16)
    async with rtc.open_audio_processor(frames_of(noisy, VOICE_RATE), echo_cancellation=False,
                                        noise_suppression=True) as cleaned:
        quiet = await drain(cleaned)
    late_gap = slice(n * 3 // 4 + VOICE_RATE // 10, n)  # the tone's second pause
    late_tone = slice(n // 2 + VOICE_RATE // 10, n * 3 // 4)
    print(f"noise suppression: noise {level_dbfs(noisy[late_gap]):.1f} -> "
          f"{level_dbfs(quiet[late_gap]):.1f} dBFS, reduced by "
          f"{power_db(noisy[late_gap]) - power_db(quiet[late_gap]):.1f} dB; tone "
          f"{level_dbfs(noisy[late_tone]):.1f} -> {level_dbfs(quiet[late_tone]):.1f} dBFS "
          f"(last half)")


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
    parser.add_argument("--voice", action="store_true",
                        help="then resample it to 16 kHz, cancel its echo and suppress noise, "
                             "reporting each stage")
    parser.add_argument("--url", help="room mode: the LiveKit server (ws:// or wss://)")
    parser.add_argument("--token", help="room mode: a join token for the room")
    args = parser.parse_args()
    if args.seconds <= 0 or not 20 <= args.frequency <= RATE / 2:
        parser.error("--seconds must be positive and --frequency between 20 and 24000 Hz")
    if args.voice and args.seconds < 1:
        parser.error("--voice needs --seconds of at least 1 (the echo canceller converges first)")
    if (args.url is None) != (args.token is None):
        parser.error("room mode needs both --url and --token")
    if args.url is not None:
        if args.wav or args.voice:
            parser.error("--wav and --voice are for the loopback mode")
        trio.run(room_mode, args.url, args.token, args.seconds, args.frequency)
    else:
        trio.run(loopback, args.seconds, args.frequency, args.wav, args.voice)


if __name__ == "__main__":
    main()
