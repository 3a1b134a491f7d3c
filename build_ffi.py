"""cffi builder for ``rtc_trio._ffi`` (out-of-line API mode), run by ``pip install``."""

from pathlib import Path

from cffi import FFI

_HERE = Path(__file__).parent / "ffi"

ffibuilder = FFI()
ffibuilder.cdef((_HERE / "rtc_trio_ffi.h").read_text())
ffibuilder.set_source(
    "rtc_trio._ffi",
    (_HERE / "rtc_trio_ffi.c").read_text(),
    libraries=["dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
