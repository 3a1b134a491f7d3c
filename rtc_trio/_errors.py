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


# -- RPC (rtc_trio._rpc) ------------------------------------------------------------------
class RpcError(RtcError):
    """An RPC failed: raised by ``perform_rpc`` with the code and message the callee or the
    library gave; raised in an RPC handler, its code and message go back to the caller.

    The protocol's built-in codes are the constants below; an application may use its own
    (codes 1001-1999 are reserved for the built-in ones). ``data`` is an optional extra
    string (JSON, say) sent along.
    """

    APPLICATION_ERROR = 1500
    CONNECTION_TIMEOUT = 1501
    RESPONSE_TIMEOUT = 1502
    RECIPIENT_DISCONNECTED = 1503
    RESPONSE_PAYLOAD_TOO_LARGE = 1504
    SEND_FAILED = 1505
    UNSUPPORTED_METHOD = 1400
    RECIPIENT_NOT_FOUND = 1401
    REQUEST_PAYLOAD_TOO_LARGE = 1402
    UNSUPPORTED_SERVER = 1403
    UNSUPPORTED_VERSION = 1404

    def __init__(self, code: int, message: str, data: str = "") -> None:
        if isinstance(code, bool) or not isinstance(code, int):
            raise TypeError(f"code must be an int, not {type(code).__name__}")
        if not 0 <= code < 1 << 32:
            raise ValueError(f"code must be between 0 and {(1 << 32) - 1}, got {code}")
        if not isinstance(message, str) or not isinstance(data, str):
            raise TypeError("message and data must be str")
        super().__init__(f"{message} (RPC error {code})")
        self.code = code
        self.message = message
        self.data = data


class NotUnderTrioAsyncio(RuntimeError):
    """rtc_trio.aio was used outside an asyncio task running on a trio-asyncio loop."""


# -- data streams ------------------------------------------------------------------------------

class StreamError(RtcError):
    """A data stream failed: the sender aborted it or left, the room disconnected, the
    native library refused it, or its reader fell too far behind and lost chunks. A reader
    raises it instead of ending normally, so a stream cut short never reads as complete."""
