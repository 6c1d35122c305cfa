"""Shared test fixtures: where ../shared lives.

llmc ships the tiktoken encodings (llmc/encodings/) and the KJV text (llmc/data/kjv.txt) its tests need; ../shared
is only for what cannot be shipped: the Hugging Face tokenizer.json files (Llama 2, Llama 3, Qwen 3). Tests that
read them request the `shared` fixture and skip with a reason when it is absent.
"""
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
        pytest.skip("../shared (the Hugging Face tokenizer.json files) is absent; set LLMC_SHARED to its path")
    return p
