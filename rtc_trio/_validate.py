"""Argument checks of the media layer: one notion of an integer, one wording of refusals.

An integer is an ``int`` or a numpy integer; ``bool`` is refused although it is an ``int``.
A value of the wrong type is a ``TypeError``, one out of its range a ``ValueError``; both
name the argument and what it accepts. Nothing here touches the native library.
"""

from __future__ import annotations

import enum
import math
import operator
from typing import Collection, Mapping, SupportsIndex, TypeVar, cast

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
    """``value`` as a ``bool``, if it is one (numpy's included; ``0``/``1`` are refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return bool(value)


def number(name: str, value: object, *, unit: str = "") -> float:
    """``value`` as a ``float``, if it is a positive finite real number (``bool`` refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number{unit}, not {type(value).__name__}")
    result = float(value)
    if not (result > 0 and math.isfinite(result)):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return result


def string(name: str, value: object) -> str:
    """``value``, if it is a ``str``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def strings(name: str, value: object) -> list[str]:
    """``value`` as a list, if it is a sequence of ``str`` (a lone ``str`` is refused)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection) or not all(
        isinstance(item, str) for item in value
    ):
        raise TypeError(f"{name} must be a sequence of str")
    return list(value)


def string_mapping(name: str, value: object) -> dict[str, str]:
    """``value`` as a dict, if it is a mapping of ``str`` to ``str``."""
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise TypeError(f"{name} must be a mapping of str to str")
    return dict(value)
