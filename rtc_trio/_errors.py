"""Every exception rtc_trio defines, in one place.

Besides these, rtc_trio raises the standard ones: ``TypeError``/``ValueError`` for a bad
argument (before anything native happens), ``trio.ClosedResourceError`` for a closed object,
``trio.BusyResourceError`` for two tasks receiving from one stream, ``trio.EndOfChannel`` from
``receive()`` once a stream or an event channel ended.
"""


class RtcError(Exception):
    """A request to the native LiveKit library failed; the message names the request."""


class ConnectError(RtcError):
    """Connecting to a room failed; the message carries the server's or the library's reason."""


class NotUnderTrioAsyncio(RuntimeError):
    """rtc_trio.aio was used outside an asyncio task running on a trio-asyncio loop."""


# -- data streams ------------------------------------------------------------------------------

class StreamError(RtcError):
    """A data stream failed: the sender aborted it or left, the room disconnected, the
    native library refused it, or its reader fell too far behind and lost chunks. A reader
    raises it instead of ending normally, so a stream cut short never reads as complete."""
