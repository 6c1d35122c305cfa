"""Loads llmc's C extension. OpenBLAS (from the scipy-openblas32 wheel) is preloaded first so the extension
finds it whether llmc is installed, editable, or built in place."""
import ctypes
import os

# The one process-wide setting llmc makes, on purpose and documented (README, "Threads"): unless OMP_WAIT_POLICY is
# already set, importing llmc sets it to PASSIVE before libgomp loads, so idle OpenMP threads sleep instead of
# spinning. Decoding forks one region per token and no longer needs it; training still runs ~40 short regions per
# layer step, and on the shared 2-core machine (load 7-10) a 2-thread default-model training step took 3.2-5.3 s
# with libgomp's spinning default against 1.2-1.5 s passive (3x the CPU time). The price: torch in the
# same process (same libgomp.so.1) loses ~10% on an idle machine. Opt out by setting OMP_WAIT_POLICY yourself (e.g.
# ACTIVE) before importing llmc or any other OpenMP library; a value you set is never changed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:  # the pip wheel; absent when llmc was built against a system OpenBLAS (LLMC_BLAS=system)
    import scipy_openblas32 as _openblas

    ctypes.CDLL(os.path.join(_openblas.get_lib_dir(), _openblas.get_library(fullname=True)), mode=ctypes.RTLD_GLOBAL)
except ImportError:  # pragma: no cover
    pass



def _import_error_message(e: ImportError) -> str:
    """Why `from . import _core` failed, in words: the real cause, and shadowing only when it is the cause."""
    import importlib.machinery
    import sys
    from pathlib import Path

    pkg = Path(__file__).resolve().parent
    built = sorted(p for p in pkg.iterdir() if p.name.startswith("_core.") and p.suffix in (".so", ".pyd"))
    if built:
        # the extension is there but did not load: say what failed and what usually causes it
        what = str(e)
        hint = "reinstall llmc (pip install --force-reinstall --no-cache-dir llmc) or rebuild it"
        if "undefined symbol" in what:
            hint = ("it was built for another Python or library version than this one "
                    f"(Python {sys.version.split()[0]}); rebuild it: " + hint)
        elif "cannot open shared object file" in what:
            hint = "a library it links to is missing (OpenBLAS comes from the scipy-openblas32 wheel); " + hint
        return f"llmc's C extension {built[0]} failed to load: {what}. {hint}."
    root = pkg.parent
    if not ((root / "setup.py").is_file() and (root / "csrc").is_dir()):
        return (f"llmc's C extension (_core) is missing from the installed package {pkg}: the installation is "
                "incomplete; reinstall llmc.")
    # a source checkout without a build: is an installed llmc hidden behind it on sys.path?
    entries = [Path(p or ".").resolve() for p in sys.path]
    first = next((i for i, p in enumerate(entries) if (p / "llmc" / "__init__.py").is_file()), None)
    other = None
    if first is not None and entries[first] == root:
        for p in entries[first + 1:]:
            spec = importlib.machinery.PathFinder.find_spec("llmc", [str(p)])
            if spec is not None and spec.origin and Path(spec.origin).resolve().parent != pkg:
                other = Path(spec.origin).resolve().parent
                break
    if other is not None:
        return (f"the source tree {root} comes first on sys.path (python run from the repository root puts it "
                f"there) and shadows the installed llmc in {other}; its C extension is not built. Run from another "
                "directory, use the installed `llmc` command, or build in place with "
                "`python setup.py build_ext --inplace`.")
    return (f"llmc's C extension is not built in the source tree {root}: install it (pip install .) or build in "
            "place (python setup.py build_ext --inplace).")


try:
    from . import _core  # noqa: E402
except ImportError as e:
    raise ImportError(_import_error_message(e)) from e

__all__ = ["_core"]
