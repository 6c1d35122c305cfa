"""Loads llmc's C extension. OpenBLAS (from the scipy-openblas32 wheel) is preloaded first so the extension
finds it whether llmc is installed, editable, or built in place."""
import ctypes
import os

try:  # the pip wheel; absent when llmc was built against a system OpenBLAS (LLMC_BLAS=system)
    import scipy_openblas32 as _openblas

    ctypes.CDLL(os.path.join(_openblas.get_lib_dir(), _openblas.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
except ImportError:  # pragma: no cover
    pass

from . import _core  # noqa: E402

__all__ = ["_core"]
