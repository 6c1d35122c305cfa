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


class _LazyModule:
    """A reference module (torch, transformers, ...) imported on first use. A test that uses it skips with the
    reason when it is not installed (`pip install ".[test-light]"` has no torch); tests that do not use it run."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        if attr.startswith("_") or attr.startswith("pytest"):  # pytest's collection probes module globals
            raise AttributeError(attr)
        mod = pytest.importorskip(self._name, reason=f"{self._name} is not installed (it comes with the "
                                                     f"'test' extra: pip install \".[test]\")")
        return getattr(mod, attr)


def lazy_import(name: str) -> _LazyModule:
    """`torch = lazy_import("torch")` at a test module's top: the module still imports without torch."""
    return _LazyModule(name)
