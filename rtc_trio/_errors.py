"""Exceptions raised by rtc_trio."""


class RtcError(Exception):
    """A request to the native LiveKit library failed; the message names the request."""
