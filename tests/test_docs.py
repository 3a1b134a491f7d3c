"""The API reference covers every public name, and every public name says what it does."""

from __future__ import annotations

import enum
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import rtc_trio
import rtc_trio.aio

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _public(module: Any) -> list[tuple[str, Any]]:
    return [(name, getattr(module, name)) for name in module.__all__]


def _documented_names() -> set[str]:
    text = "\n".join(path.read_text() for path in DOCS.glob("*.rst"))
    return set(re.findall(r"^\.\. auto\w+:: (\w+)", text, re.MULTILINE))


def _undocumented_members(cls: type) -> list[str]:
    if issubclass(cls, (enum.Enum, BaseException)):
        return []  # members are values; the class docstring says what they mean
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        target = member.fget if isinstance(member, property) else member
        if isinstance(target, (staticmethod, classmethod)):
            target = target.__func__
        if callable(target) and not (inspect.getdoc(target) or "").strip():
            missing.append(f"{cls.__name__}.{name}")
    return missing


@pytest.mark.parametrize("module", [rtc_trio, rtc_trio.aio], ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module: Any) -> None:
    missing = []
    for name, obj in _public(module):
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and obj.__module__.startswith("rtc_trio"):
            missing.extend(_undocumented_members(obj))
    assert not missing, f"public names without a docstring: {missing}"


def test_every_public_name_is_in_the_reference() -> None:
    in_docs = _documented_names()
    missing = [name for name, _ in _public(rtc_trio) if name not in in_docs]
    assert not missing, f"not in docs/*.rst: {missing}"
    aio_text = (DOCS / "aio.rst").read_text()
    missing_aio = [name for name in rtc_trio.aio.__all__ if name not in aio_text]
    assert not missing_aio, f"not in docs/aio.rst: {missing_aio}"
