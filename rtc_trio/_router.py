"""Routing native events to the one subscriber of their key, and waking trio once per batch.

The native callback runs on foreign threads; it only calls :func:`deliver`/:func:`end`, which
append to a subscriber's bounded buffer under one lock. A consumer parked in
:meth:`Subscription.receive` is woken through its run's :class:`_Inbox`: one
``TrioToken.run_sync_soon`` per batch of wake-ups, none while the consumer is busy. Frame
streams instead park on an eventfd of their own (:meth:`Subscription.park_on_fd`), which
trio's I/O poll watches: the hot path then needs no ``run_sync_soon`` and, for audio, no
Python on the native side at all.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from typing import Any, Callable, Generic, TypeVar

import trio

from rtc_trio import _handles
from rtc_trio._errors import RtcError

T = TypeVar("T")

_lock = threading.Lock()
_routes: dict[int, Subscription[Any]] = {}
_once: dict[int, Subscription[Any]] = {}  # one-shot routes: async request replies
_closed: OrderedDict[int, None] = OrderedDict()  # keys whose subscriber left: drop their events
_parked: OrderedDict[int, tuple[float, list[tuple[Any, int, bool]]]] = OrderedDict()
_parked_count = 0
_failure: RtcError | None = None

PARK_SECONDS = 5.0
PARK_LIMIT = 512
CLOSED_LIMIT = 4096


class _Inbox:
    """Wake-ups for one trio run: at most one ``run_sync_soon`` in flight."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._ready: list[Subscription[Any]] = []
        self._scheduled = False

    def queue(self, sub: Subscription[Any]) -> None:
        """Called with ``_lock`` held, from any thread."""
        self._ready.append(sub)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._token.run_sync_soon(self._flush)
            except trio.RunFinishedError:
                self._ready.clear()
                self._scheduled = False

    def _flush(self) -> None:
        with _lock:
            ready, self._ready = self._ready, []
            self._scheduled = False
            tasks = []
            for sub in ready:
                sub._wake_queued = False
                if sub._waiter is not None:
                    tasks.append(sub._waiter)
                    sub._waiter = None
        for task in tasks:
            trio.lowlevel.reschedule(task)


_inbox_var: trio.lowlevel.RunVar[_Inbox] = trio.lowlevel.RunVar("rtc_trio_inbox")


def _current_inbox() -> _Inbox:
    try:
        return _inbox_var.get()
    except LookupError:
        inbox = _Inbox(trio.lowlevel.current_trio_token())
        _inbox_var.set(inbox)
        return inbox


class Subscription(Generic[T]):
    """The buffer of one key's events, read by one trio task at a time.

    Holds at most ``capacity`` items; when full the oldest is dropped, its native handle
    released and ``dropped`` counted. ``receive`` raises ``trio.EndOfChannel`` once the key
    ended and the buffer is empty, and ``trio.ClosedResourceError`` after :meth:`close`.
    """

    __slots__ = (
        "key", "capacity", "dropped", "_items", "_ended", "_closed", "_waiter",
        "_wake_queued", "_inbox", "wake_fd", "_fd_parked", "_droppable",
    )

    def __init__(self, capacity: int, droppable: Callable[[T], bool] | None = None) -> None:
        """``droppable``: when given, only items it accepts are ever dropped; when the buffer
        is full and none is, it grows (for events that must never be lost)."""
        self.key = 0
        self.capacity = capacity
        self._droppable = droppable
        self.dropped = 0
        self._items: deque[tuple[T, int]] = deque()
        self._ended = False
        self._closed = False
        self._waiter: trio.lowlevel.Task | None = None
        self._wake_queued = False
        self._inbox = _current_inbox()
        self.wake_fd = -1  # set when the consumer waits on an eventfd instead (see park_on_fd)
        self._fd_parked = False

    # -- called by the native side, with _lock held ------------------------------------
    def _push(self, item: T, handle: int) -> int:
        """Buffer ``item``; returns the handle of a dropped item to release, or 0."""
        released = 0
        if len(self._items) >= self.capacity:
            if self._droppable is None:
                _, released = self._items.popleft()
                self.dropped += 1
            else:
                released = self._drop_oldest(self._droppable)
        self._items.append((item, handle))
        self._wake()
        return released

    def _drop_oldest(self, droppable: Callable[[T], bool]) -> int:
        """Drop the oldest item ``droppable`` accepts; its handle, or 0 if none was."""
        for index, (queued, handle) in enumerate(self._items):
            if droppable(queued):
                del self._items[index]
                self.dropped += 1
                return handle
        return 0

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self.wake_fd >= 0:  # its consumer waits on an eventfd: see park_on_fd
            if self._fd_parked and not self._closed:
                self._fd_parked = False
                os.eventfd_write(self.wake_fd, 1)
            return
        if self._waiter is not None and not self._wake_queued:
            self._wake_queued = True
            self._inbox.queue(self)

    # -- trio side ----------------------------------------------------------------------
    def buffered(self) -> int:
        """Items waiting to be received."""
        return len(self._items)

    def receive_nowait(self) -> T:
        """The oldest buffered item; ``trio.WouldBlock`` if none yet."""
        if not (self._items or self._ended or self._closed or _failure is not None):
            # the common case on the frame path, without the lock: a racing push is seen
            # by the caller's next check, since parking re-checks under the lock
            raise trio.WouldBlock
        with _lock:
            if self._items:
                return self._items.popleft()[0]
            self._raise_if_done()
        raise trio.WouldBlock

    async def receive(self) -> T:
        """Wait for the next item; always a checkpoint, even when one is buffered."""
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        while True:
            try:
                item = self.receive_nowait()
                break
            except trio.WouldBlock:
                pass
            with _lock:
                if self._items or self._ended or self._closed or _failure is not None:
                    continue  # it came meanwhile
                if self._waiter is not None:
                    raise trio.BusyResourceError("another task is already receiving")
                self._waiter = trio.lowlevel.current_task()
            await trio.lowlevel.wait_task_rescheduled(self._abort)
            waited = True
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()
        return item

    def park_on_fd(self) -> bool:
        """Arm ``wake_fd`` for the next item, end or failure; False if one is here already.

        A consumer that waits on an eventfd (``trio.lowlevel.wait_readable``) is woken by
        the trio run's own I/O poll: no ``run_sync_soon``, nothing for the run to drain.
        """
        with _lock:
            if self._items or self._ended or self._closed or _failure is not None:
                return False
            self._fd_parked = True
            return True

    def _abort(self, _: Any) -> trio.lowlevel.Abort:
        with _lock:
            self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _raise_if_done(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this stream is closed")
        if _failure is not None:
            raise _failure
        if self._ended:
            raise trio.EndOfChannel

    def close(self) -> None:
        """Leave the route, release every buffered handle, wake a blocked receiver."""
        with _lock:
            if self._closed:
                return
            self._closed = True
            still_expected = _once.get(self.key) is self
            if still_expected:
                del _once[self.key]
            if _routes.get(self.key) is self:
                del _routes[self.key]
                still_expected = True  # even if ended: a room ends streams before the native end
            if still_expected:  # events may still come for this key: drop them on arrival
                _mark_closed(self.key)
            handles = [handle for _, handle in self._items if handle]
            self._items.clear()
            waiter, self._waiter = self._waiter, None
        for handle in handles:
            _handles.release(handle)
        if waiter is not None:
            trio.lowlevel.reschedule(waiter)


def _mark_closed(key: int) -> None:
    _closed[key] = None
    if len(_closed) > CLOSED_LIMIT:
        _closed.popitem(last=False)


def subscribe(key: int, sub: Subscription[T]) -> Subscription[T]:
    """Route every event of ``key`` to ``sub``, starting with any parked for it."""
    global _parked_count
    released: list[int] = []
    with _lock:
        sub.key = key
        _routes[key] = sub
        parked = _parked.pop(key, None)
        if parked is not None:
            _parked_count -= len(parked[1])
            for item, handle, is_end in parked[1]:
                if is_end:
                    sub._end()
                else:
                    released.append(sub._push(item, handle))
    for handle in released:
        if handle:
            _handles.release(handle)
    return sub


def expect_once(key: int, sub: Subscription[Any]) -> None:
    """Route the single reply carrying ``key`` (an async request id) to ``sub``.

    A reply that came before (parked) is handed over at once.
    """
    global _parked_count
    released = 0
    with _lock:
        sub.key = key
        parked = _parked.pop(key, None)
        if parked is None:
            _once[key] = sub
        else:
            _parked_count -= len(parked[1])
            item, handle, _ = parked[1][0]
            released = sub._push(item, handle)
    if released:
        _handles.release(released)


def deliver(key: int, item: Any, handle: int = 0) -> None:
    """Native side: hand ``item`` (owning ``handle``, or 0) to the subscriber of ``key``."""
    with _lock:
        sub = _once.pop(key, None) or _routes.get(key)
        if sub is not None and not sub._closed:
            handle = sub._push(item, handle)
        elif key in _closed:
            pass  # its subscriber left: release below
        else:
            _park(key, (item, handle, False))
            handle = 0
    if handle:
        _handles.release(handle)
    if _parked:
        sweep_parked()


def end(key: int) -> None:
    """Any thread: ``key`` will send nothing more (end of stream).

    Called on the native threads for a stream's own end, and from trio when a room ends the
    streams of a track or participant that went. Never blocks: it only takes the router's lock.
    """
    with _lock:
        sub = _routes.get(key)
        if sub is not None:
            sub._end()
        elif key not in _closed:  # (a closed key stays marked: a room's end may come first)
            _park(key, (None, 0, True))


def _park(key: int, event: tuple[Any, int, bool]) -> None:
    """Keep an event for a subscriber that has not registered yet (bounded, brief)."""
    global _parked_count
    entry = _parked.get(key)
    if entry is None:
        entry = _parked[key] = (time.monotonic(), [])
    entry[1].append(event)
    _parked_count += 1


def sweep_parked(max_age: float = PARK_SECONDS) -> None:
    """Release parked events older than ``max_age`` seconds, or beyond the bound."""
    global _parked_count
    now = time.monotonic()
    released: list[int] = []
    with _lock:
        while _parked:
            key, (since, events) = next(iter(_parked.items()))
            if now - since < max_age and _parked_count <= PARK_LIMIT:
                break
            del _parked[key]
            _parked_count -= len(events)
            released.extend(handle for _, handle, _ in events if handle)
    for handle in released:
        _handles.release(handle)


def fail_all(error: RtcError) -> None:
    """The native library is unusable: every receiver raises ``error``."""
    global _failure
    with _lock:
        _failure = error
        subs = list(_routes.values()) + list(_once.values())
        for sub in subs:
            sub._wake()
