# Types of the cffi extension built from ffi/ by build_ffi.py.
from typing import Any

ffi: Any
lib: Any
