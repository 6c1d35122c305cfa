"""Execute examples/*.ipynb top to bottom with nbclient (no Jupyter server, no network); each writes its PNG into
the directory it runs in.

    python examples/run_notebooks.py                 # run in examples/: refreshes the committed PNGs
    python examples/run_notebooks.py logit_lens      # just one

tests/test_notebooks.py runs them the same way in a temporary directory."""
from __future__ import annotations

import os
import sys
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
    sys.path.insert(0, str(HERE.parent))
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("*.ipynb"))
    for n in names:
        print(f"{n}: {run(HERE / f'{n}.ipynb', HERE):.1f} s")
