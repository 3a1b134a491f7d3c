"""Ownership of native handles: every handle rtc_trio holds is in one set, released once."""

from __future__ import annotations

import threading
from typing import Any, Self

import numpy as np
import trio

from rtc_trio._ffi import ffi, lib

_held: set[int] = set()
_native_gone = threading.Event()  # set after dispose or in a forked child: drop nothing


def live_handles() -> int:
    """How many native handles rtc_trio holds right now (sources, tracks, streams, frames)."""
    return len(_held)


def is_held(handle_id: int) -> bool:
    """Whether ``handle_id`` is recorded as ours (acquired and not yet released)."""
    return handle_id in _held


def acquire(handle_id: int) -> int:
    """Record that we own ``handle_id`` (it must be released exactly once)."""
    _held.add(handle_id)
    return handle_id


def release(handle_id: int) -> None:
    """Drop ``handle_id`` natively if we still own it; a second release is a no-op."""
    try:
        _held.remove(handle_id)
    except KeyError:
        return
    if not _native_gone.is_set():
        lib.rtc_drop_handle(handle_id)


def forget(handle_id: int) -> None:
    """A request consumed ``handle_id`` (the native side owns it now): stop owning it, drop nothing."""
    _held.discard(handle_id)


def forget_all() -> None:
    """The native library is gone (disposed, or this is a forked child): own nothing."""
    _native_gone.set()
    _held.clear()


class NativeHandle:
    """The one owner of a long-lived native handle (source, track, stream)."""

    __slots__ = ("id",)

    def __init__(self, handle_id: int) -> None:
        self.id = acquire(handle_id)

    @property
    def released(self) -> bool:
        return not is_held(self.id)

    def release(self) -> None:
        release(self.id)

    def __del__(self) -> None:  # last resort: the owner forgot to close
        release(self.id)

    def __repr__(self) -> str:
        return f"NativeHandle({self.id}{', released' if self.released else ''})"


class NativeObject:
    """A Python object owning one native object through ``_handle``: ``close()`` (or the end
    of its ``with`` block) releases it; calls after that raise ``trio.ClosedResourceError``."""

    __slots__ = ("_handle",)
    _handle: NativeHandle
    _kind = "object"  # what the error after close() calls it

    def _open(self) -> int:
        """The handle's id, or ``trio.ClosedResourceError`` once closed."""
        if self._handle.released:
            raise trio.ClosedResourceError(f"this {self._kind} is closed")
        return self._handle.id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` ran."""
        return self._handle.released

    def close(self) -> None:
        """Release the native object; further calls raise ``trio.ClosedResourceError``."""
        self._handle.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def native_view(address: int, nbytes: int, handle_id: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    """A uint8 numpy view of native memory owned by ``handle_id``.

    The handle is released when the last array viewing the memory is garbage collected.
    """
    owner = ffi.gc(ffi.cast("uint8_t *", address), lambda _: release(handle_id))
    return np.frombuffer(ffi.buffer(owner, nbytes), dtype=np.uint8)
