"""Shared test fixtures: where ../shared lives (real tokenizer files and corpora), and the torch reference."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """$LLMC_SHARED, else ../shared next to the project root; None when absent."""
    p = Path(os.environ.get("LLMC_SHARED", _ROOT.parent / "shared"))
    return p if p.is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    p = shared_dir()
    if p is None:
        pytest.skip("../shared (real tokenizers and corpora) is absent; set LLMC_SHARED to its path")
    return p
