"""LiveKit's protobuf message modules, loaded from the installed ``livekit`` wheel.

``import livekit.rtc._proto.ffi_pb2`` would first run ``livekit/rtc/__init__.py`` (the whole
asyncio SDK); the generated modules only need their own package, so they are loaded here as
``rtc_trio._pb`` straight from the wheel's ``_proto`` folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING


def livekit_rtc_dir() -> Path:
    """The folder of the installed ``livekit.rtc`` package, found without importing it."""
    spec = importlib.util.find_spec("livekit.rtc")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("rtc_trio needs the `livekit` package: pip install livekit==1.2.1")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_package() -> str:
    official = "livekit.rtc._proto"
    if official in sys.modules:  # the official SDK is loaded already: share its modules
        return official
    name = "rtc_trio._pb"
    if name not in sys.modules:
        folder = livekit_rtc_dir() / "_proto"
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load LiveKit's protobuf modules from {folder}")
        package: ModuleType = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return name


if TYPE_CHECKING:
    from livekit.rtc._proto import audio_frame_pb2 as audio_frame_pb2
    from livekit.rtc._proto import ffi_pb2 as ffi_pb2
    from livekit.rtc._proto import participant_pb2 as participant_pb2
    from livekit.rtc._proto import room_pb2 as room_pb2
    from livekit.rtc._proto import track_pb2 as track_pb2
    from livekit.rtc._proto import track_publication_pb2 as track_publication_pb2
    from livekit.rtc._proto import video_frame_pb2 as video_frame_pb2
else:
    _package = _load_package()
    audio_frame_pb2 = importlib.import_module(_package + ".audio_frame_pb2")
    ffi_pb2 = importlib.import_module(_package + ".ffi_pb2")
    participant_pb2 = importlib.import_module(_package + ".participant_pb2")
    room_pb2 = importlib.import_module(_package + ".room_pb2")
    track_pb2 = importlib.import_module(_package + ".track_pb2")
    track_publication_pb2 = importlib.import_module(_package + ".track_publication_pb2")
    video_frame_pb2 = importlib.import_module(_package + ".video_frame_pb2")
