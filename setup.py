"""Build script for llmc's C extension (llmc._core).

OpenBLAS comes from the pinned `scipy-openblas32` wheel by default, so a machine that reaches only PyPI can build.
Environment variables:
  LLMC_BLAS=system        link a system OpenBLAS instead (no symbol prefix); with
  LLMC_BLAS_LIB=openblas  its library name (-l...), and LLMC_BLAS_LIBDIR=/path its directory if not standard.
  LLMC_WERROR=1           turn warnings into errors (CI does this).
  LLMC_SANITIZE=1         build with -fsanitize=address,undefined (CI runs the test suite under it).
  LLMC_SANITIZE=thread    build with -fsanitize=thread (CI runs tests/test_threads.py under it).
  LLMC_DEBUG=1            -O0 -g instead of -O3.
"""
import glob
import os

import numpy
from setuptools import Extension, setup

sources = sorted(glob.glob("csrc/*.c")) + sorted(glob.glob("csrc/python/*.c"))

cflags = ["-std=c11", "-Wall", "-Wextra", "-fopenmp", "-fvisibility=hidden", "-D_DEFAULT_SOURCE"]
cflags += ["-O0", "-g"] if os.environ.get("LLMC_DEBUG") == "1" else ["-O3"]
ldflags = ["-fopenmp"]
if os.environ.get("LLMC_WERROR") == "1":
    cflags.append("-Werror")
if os.environ.get("LLMC_SANITIZE") == "1":
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"]
    cflags += san + ["-g"]
    ldflags += san
elif os.environ.get("LLMC_SANITIZE") == "thread":
    san = ["-fsanitize=thread", "-fno-omit-frame-pointer"]
    cflags += san + ["-g"]
    ldflags += san

library_dirs, libraries, macros = [], [], []
if os.environ.get("LLMC_BLAS", "pip") == "system":
    libraries.append(os.environ.get("LLMC_BLAS_LIB", "openblas"))
    if os.environ.get("LLMC_BLAS_LIBDIR"):
        library_dirs.append(os.environ["LLMC_BLAS_LIBDIR"])
        ldflags.append("-Wl,-rpath," + os.environ["LLMC_BLAS_LIBDIR"])
    macros.append(("LLMC_BLAS_PREFIX", ""))
else:
    import scipy_openblas32

    library_dirs.append(scipy_openblas32.get_lib_dir())
    libraries.append(scipy_openblas32.get_library())
    macros.append(("LLMC_BLAS_PREFIX", "scipy_"))
    # Installed next to scipy_openblas32 in site-packages, the library is found through this rpath;
    # llmc/__init__.py also preloads it, which covers editable and in-place builds.
    ldflags.append("-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib")

ext = Extension(
    "llmc._core",
    sources=sources,
    include_dirs=[numpy.get_include(), "csrc"],
    define_macros=macros,
    library_dirs=library_dirs,
    libraries=libraries,
    extra_compile_args=cflags,
    extra_link_args=ldflags,
    depends=glob.glob("csrc/*.h") + glob.glob("csrc/python/*.h"),
)

setup(ext_modules=[ext])
