"""The layers of DESIGN.md, checked on the source: native -> media -> room -> bridge.

Every module of rtc_trio is parsed with ``ast``; every import counts, also those under
``if TYPE_CHECKING:`` and inside functions. A module may import its own layer and the layers
below; only the package ``__init__`` may import anything, and only the bridge may import it.
A module that belongs to no layer fails, and so does any import cycle among the modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rtc_trio"

LAYERS: dict[str, set[str]] = {
    "native": {"_native", "_router", "_handles", "_proto", "_ffi", "_errors", "_validate"},
    "media": {"_audio_frame", "_video_frame", "_audio_source", "_video_source", "_track",
              "_stream", "_audio_stream", "_video_stream", "_stream_follow",
              "_mixer", "_stats", "_resampler", "_apm"},
    "room": {"_room", "_room_native", "_participant", "_publications", "_room_events",
             "_data_streams", "_rpc"},
    "bridge": {"aio", "__main__"},
}
ORDER = list(LAYERS)
INIT = "__init__"


def _layer(module: str) -> str:
    for name, members in LAYERS.items():
        if module in members:
            return name
    raise AssertionError(f"rtc_trio.{module} belongs to no layer: add it to LAYERS in {__file__}")


def _modules() -> set[str]:
    """Every module of the package: its .py files and the compiled cffi module."""
    return {path.stem for path in PACKAGE.glob("*.py")} | {"_ffi"}


def imports_of(source: str, modules: set[str]) -> set[str]:
    """The rtc_trio modules that ``source`` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "rtc_trio":
                    found.add(parts[1] if len(parts) > 1 else INIT)
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level == 0 and parts[0] != "rtc_trio":
                continue
            inner = parts[1:] if node.level == 0 else [p for p in parts if p]
            if inner:
                found.add(inner[0])
            else:  # from rtc_trio import x: a module of the package, or a name of __init__
                found.update(alias.name if alias.name in modules else INIT for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {path.stem: imports_of(path.read_text(), modules) for path in PACKAGE.glob("*.py")}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path of modules (first == last), or None."""
    state: dict[str, str] = {}  # "open" while on the path, "done" once explored

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target] if target in path else [module, target]
            if target not in state:
                found = visit(target, path + [target])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_the_checker_sees_every_kind_of_import() -> None:
    modules = {"_room", "_track", "_handles", "_ffi", "_participant", "_stream"}
    source = '''
from typing import TYPE_CHECKING
import rtc_trio
from rtc_trio import _handles, AudioFrame
from rtc_trio._track import Track
import rtc_trio._ffi as ffi
if TYPE_CHECKING:
    from rtc_trio._room import Room
def late():
    from . import _participant
    from ._stream import FrameStream
'''
    assert imports_of(source, modules) == {
        INIT, "_handles", "_track", "_ffi", "_room", "_participant", "_stream"}
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _modules() - {INIT} if not any(m in s for s in LAYERS.values()))
    assert not unplaced, f"modules in no layer: {unplaced} (add them to LAYERS in {__file__})"


def test_no_module_imports_a_higher_layer() -> None:
    graph = _graph()
    assert "_stream_follow" in graph["_audio_stream"]  # the parse finds real imports
    assert "_ffi" in graph["_video_frame"]  # one inside a function
    wrong = []
    for module, targets in sorted(graph.items()):
        if module == INIT:
            continue  # the package's face imports from every layer
        rank = ORDER.index(_layer(module))
        for target in sorted(targets):
            if target == INIT:
                allowed = _layer(module) == "bridge"
            else:
                allowed = ORDER.index(_layer(target)) <= rank
            if not allowed:
                wrong.append(f"{module} ({_layer(module)}) imports {target} "
                             f"({'the package' if target == INIT else _layer(target)})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
