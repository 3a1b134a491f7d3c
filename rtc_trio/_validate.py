"""Argument checks of the media layer: one notion of an integer, one wording of refusals.

An integer is an ``int`` or a numpy integer; ``bool`` is refused although it is an ``int``.
A value of the wrong type is a ``TypeError``, one out of its range a ``ValueError``; both
name the argument and what it accepts. Nothing here touches the native library.
"""

from __future__ import annotations

import enum
import operator
from typing import Collection, SupportsIndex, TypeVar, cast

import numpy as np

E = TypeVar("E", bound=enum.IntEnum)


def is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer(name: str, value: object, lo: int, hi: int, *, step: int = 1, unit: str = "") -> int:
    """``value`` as an ``int``, if it is an integer from ``lo`` to ``hi`` (a multiple of ``step``)."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    number = operator.index(cast(SupportsIndex, value))
    if not lo <= number <= hi or number % step:
        if step > 1:
            raise ValueError(f"{name} must be a multiple of {step} from {lo} to {hi}{unit}, got {number}")
        if number < lo == 0:
            raise ValueError(f"{name} must not be negative, got {number}")
        raise ValueError(f"{name} must be between {lo} and {hi}{unit}, got {number}")
    return number


def choice(name: str, value: object, allowed: Collection[int]) -> int:
    """``value`` as an ``int``, if it is an integer in ``allowed``."""
    if not is_integer(value):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    number = operator.index(cast(SupportsIndex, value))
    if number not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {number}")
    return number


def member(name: str, value: object, kind: type[E]) -> E:
    """``value`` as a member of ``kind``: a member, or the integer value of one."""
    if not is_integer(value) or (isinstance(value, enum.Enum) and not isinstance(value, kind)):
        raise TypeError(f"{name} must be a {kind.__name__}, not {type(value).__name__}")
    try:
        return kind(operator.index(cast(SupportsIndex, value)))
    except ValueError:
        raise ValueError(f"{name}: {value} is not a {kind.__name__}") from None


def boolean(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return bool(value)
