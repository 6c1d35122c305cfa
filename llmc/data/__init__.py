"""Data shipped with llmc: the King James Bible (public domain), the corpus the default model was trained on.

`kjv.txt` is the Authorized (King James) Version, one verse per line with the verse labels removed: 31,102 lines,
4.1 MB of UTF-8 text (it compresses to 1.2 MB inside the wheel). The split is fixed by one rule, used by
scripts/train_default.py, the default model's perplexity test, the demo and the examples: the first 95% of the
lines train, the last 5% (the end of the New Testament) are held out.

    import llmc.data
    llmc.data.kjv_path()                 # pathlib.Path of the installed kjv.txt (plain text, any tool can read it)
    train = llmc.data.kjv_lines("train") # list of str, no newlines: the first 95% of the lines
    held = llmc.data.kjv_text("heldout") # the last 5% as one str, lines joined by "\\n" with a trailing "\\n"
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = ["kjv_path", "kjv_lines", "kjv_text", "kjv_split_index", "HELDOUT_FRACTION"]

HELDOUT_FRACTION = 0.05  # the last 5% of the lines are held out
_DIR = Path(__file__).resolve().parent

Split = Literal["all", "train", "heldout"]


def kjv_path() -> Path:
    """The path of the shipped `kjv.txt` (one verse per line, UTF-8, newline-terminated)."""
    return _DIR / "kjv.txt"


@lru_cache(maxsize=1)
def _all_lines() -> tuple[str, ...]:
    return tuple(kjv_path().read_text(encoding="utf-8").splitlines())


def kjv_split_index(n_lines: int | None = None) -> int:
    """The index of the first held-out line: int(n_lines * 0.95) (n_lines defaults to kjv.txt's 31,102)."""
    n = len(_all_lines()) if n_lines is None else n_lines
    return int(n * (1.0 - HELDOUT_FRACTION))


def kjv_lines(split: Split = "all") -> list[str]:
    """The verses of kjv.txt as a list of str without newlines.

    split: "all", "train" (the first 95% of the lines) or "heldout" (the last 5%).
    """
    lines = _all_lines()
    cut = kjv_split_index(len(lines))
    if split == "all":
        return list(lines)
    if split == "train":
        return list(lines[:cut])
    if split == "heldout":
        return list(lines[cut:])
    raise ValueError(f"split must be 'all', 'train' or 'heldout', got {split!r}")


def kjv_text(split: Split = "all") -> str:
    """kjv_lines(split) joined by "\\n", with a trailing "\\n" (the text the default model was trained and
    evaluated on)."""
    return "\n".join(kjv_lines(split)) + "\n"
