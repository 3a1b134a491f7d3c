"""Frame numbers carried in the media itself, for the room-* bench scenarios (numpy only, no
RTC library): in audio, so that they survive Opus and the receiver's jitter buffer; in video,
so that they survive the video codec.

Audio:
Frame ``k`` (10 ms at 48 kHz) holds two tones: one of 8 low frequencies and one of 8 high
ones (600-2000 Hz and 2400-3800 Hz, multiples of 200 Hz), together the code ``k % 64``.
Each tone makes a whole number of cycles in 10 ms, so a frame joins the next without a
phase jump. The receiver keeps every 4th sample (12 kHz) and reads the codes back from
5 ms windows every 2.5 ms: a 200 Hz grid, so each tone is exactly one FFT bin and the
other candidates fall on zeros. A window that straddles two frames sees two tones per
group and is refused; a frame needs two clean windows to count. Received frames need not
line up with sent ones (the jitter buffer cuts the signal where it likes).

Gaps: consecutive codes that do not follow each other (mod 64). A run of missing frames
longer than 63 is undercounted by a multiple of 64; the runs here are seconds long and
checked against the frame count as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 48000
FRAME = 480  # samples of one 10 ms frame at RATE
CODES = 64
DECIMATE = 4  # the receiver keeps every 4th sample: 12 kHz
KEPT = FRAME // DECIMATE  # samples kept per frame
WINDOW = 60  # 5 ms at 12 kHz: FFT bins 200 Hz apart
HOP = 30
LOW_BINS = np.arange(3, 11)  # 600 .. 2000 Hz
HIGH_BINS = np.arange(12, 20)  # 2400 .. 3800 Hz
AMPLITUDE = 0.3 * 32767  # per tone
PEAK_RATIO = 2.5  # best bin over the runner-up in each group (Opus leaks ~1/3 into neighbours)
FLOOR = 0.15 * AMPLITUDE * WINDOW / 2  # a tone at 15 % of the sent level still counts
MIN_WINDOWS = 2


def code_frame(code: int) -> npt.NDArray[np.int16]:
    """The 480 samples (int16) that carry ``code`` (0..63)."""
    t = np.arange(FRAME) / RATE
    low = 200.0 * LOW_BINS[code // 8]
    high = 200.0 * HIGH_BINS[code % 8]
    wave = AMPLITUDE * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    frame: npt.NDArray[np.int16] = np.round(wave).astype(np.int16)
    return frame


def keep(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """What the receiver stores of a received 48 kHz mono frame (a strided view; copy it)."""
    return samples[::DECIMATE]


@dataclass(frozen=True)
class Symbol:
    """One frame read back: its code and where it starts in the kept samples."""

    code: int
    position: int


def _group(spec: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Best bin of each window in one tone group, and whether it stands clear of the rest."""
    order = np.argsort(spec, axis=1)
    best = order[:, -1]
    rows = np.arange(len(spec))
    top, second = spec[rows, best], spec[rows, order[:, -2]]
    return best, (top > FLOOR) & (top > PEAK_RATIO * second)


def decode(kept: npt.NDArray[np.int16]) -> list[Symbol]:
    """The frames found in ``kept`` (samples at 12 kHz, as ``keep`` stores them), in order.

    Two clean windows with one code, refused ones between them ignored, make one frame;
    the same code again right after it (the jitter buffer stretching a frame) is that frame.
    """
    if len(kept) < WINDOW:
        return []
    windows = np.lib.stride_tricks.sliding_window_view(kept, WINDOW)[::HOP]
    spec = np.abs(np.fft.rfft(windows.astype(np.float32), axis=1))
    low, low_ok = _group(spec[:, LOW_BINS])
    high, high_ok = _group(spec[:, HIGH_BINS])
    codes = np.where(low_ok & high_ok, low * 8 + high, -1)
    symbols: list[Symbol] = []
    current, start, count = -1, 0, 0
    for index, code in enumerate(codes.tolist()):
        if code < 0:
            continue
        if code != current:
            current, start, count = code, index, 0
        count += 1
        if count == MIN_WINDOWS and (not symbols or symbols[-1].code != code):
            symbols.append(Symbol(code, start * HOP))
    return symbols


def gaps(symbols: list[Symbol]) -> int:
    """Frames missing between consecutive symbols (mod 64)."""
    return sum((b.code - a.code - 1) % CODES for a, b in zip(symbols, symbols[1:]))


# Video: a 16-bit frame number as 16 black or white squares across the top of the picture,
# read back from the centre of each square (scaled, should the sender have shrunk the picture).
VIDEO_BITS = 16
VIDEO_ROW = (40, 120)  # the squares' rows in a 1280-wide picture, 80 px high


def video_frame(width: int, height: int, number: int,
                background: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """An RGBA picture (height, width, 4): ``background`` with ``number`` in the squares."""
    rgba = background.copy()
    side = width // VIDEO_BITS
    top, bottom = VIDEO_ROW[0] * width // 1280, VIDEO_ROW[1] * width // 1280
    for bit in range(VIDEO_BITS):
        level = 255 if (number >> bit) & 1 else 0
        rgba[top:bottom, bit * side:(bit + 1) * side, :3] = level
    return rgba


def video_background(width: int, height: int, index: int) -> npt.NDArray[np.uint8]:
    """A moving diagonal gradient (so the encoder has work), frame ``index``."""
    y, x = np.mgrid[0:height, 0:width]
    shade = ((x + y + 8 * index) % 256).astype(np.uint8)
    rgba = np.empty((height, width, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = shade, 255 - shade, 128, 255
    return rgba


def video_number(rgba: npt.NDArray[np.uint8], width: int, height: int) -> int:
    """The number in a received RGBA picture (flat or shaped), read from 16 pixels."""
    picture = rgba.reshape(height, width, 4)
    side = width / VIDEO_BITS
    row = (VIDEO_ROW[0] + VIDEO_ROW[1]) // 2 * width // 1280
    cols = (np.arange(VIDEO_BITS) * side + side / 2).astype(np.intp)
    bits = picture[row, cols, 1] > 128
    return int(np.dot(bits, 1 << np.arange(VIDEO_BITS)))


def video_gaps(numbers: list[int]) -> int:
    """Frame numbers missing between the first and the last of ``numbers`` (repeats ignored)."""
    seen = sorted(set(numbers))
    return (seen[-1] - seen[0] + 1 - len(seen)) if seen else 0
