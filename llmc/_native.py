"""Loads llmc's C extension. OpenBLAS (from the scipy-openblas32 wheel) is preloaded first so the extension
finds it whether llmc is installed, editable, or built in place."""
import ctypes
import os

# Idle OpenMP threads sleep instead of spinning (read once, when libgomp loads with the extension below). Spinning
# threads win a few microseconds per parallel region on an idle machine and lose whole scheduler ticks on a busy
# one: measured on a loaded 2-core machine, a training step with 2 threads took 0.7 s passive vs 3-6 s spinning.
# Set OMP_WAIT_POLICY yourself before importing llmc to choose otherwise.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # the pip wheel; absent when llmc was built against a system OpenBLAS (LLMC_BLAS=system)
    import scipy_openblas32 as _openblas

    ctypes.CDLL(os.path.join(_openblas.get_lib_dir(), _openblas.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
except ImportError:  # pragma: no cover
    pass

try:
    from . import _core  # noqa: E402
except ImportError as e:  # pragma: no cover - a source checkout without the built extension
    raise ImportError(
        f"llmc's C extension is not built next to {os.path.dirname(__file__)}: this is probably the source tree "
        "shadowing an installed llmc (python -m from the repository root puts the source first on sys.path). "
        "Run from another directory or use the `llmc` command, or build in place with "
        f"`python setup.py build_ext --inplace`. ({e})") from e

__all__ = ["_core"]
