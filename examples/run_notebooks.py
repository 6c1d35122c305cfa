"""Execute examples/*.ipynb top to bottom with nbclient (no Jupyter server, no network) against the installed llmc;
each writes its PNG into the directory it runs in (a temporary one unless --out is given).

    python examples/run_notebooks.py                         # all, in a temporary directory
    python examples/run_notebooks.py logit_lens --out examples   # one, refreshing the committed PNG

tests/test_notebooks.py runs them the same way in a temporary directory."""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(path: Path, cwd: Path, timeout: int = 120) -> float:
    """Execute one notebook in cwd (outputs are not saved); returns seconds. The kernel imports the same llmc as
    this process."""
    import nbclient
    import nbformat

    import llmc

    nb = nbformat.read(path, as_version=4)
    env_path = str(Path(llmc.__file__).resolve().parent.parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path + (os.pathsep + old if old else "")
    try:
        t0 = time.perf_counter()
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}}).execute()
        return time.perf_counter() - t0
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    ap.add_argument("--out", default=None, help="directory the PNGs go to (default: a temporary one)")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llmc-notebooks-"))
    for n in args.names or sorted(p.stem for p in HERE.glob("*.ipynb")):
        print(f"{n}: {run(HERE / f'{n}.ipynb', out):.1f} s -> {out}")
