"""llmc's default model: a small Llama-architecture model and its BPE tokenizer, both trained by llmc on the King
James Bible (scripts/train_default.py), shipped inside the package."""
from __future__ import annotations

import json
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / "default_model"


def default_model_path() -> Path:
    return DEFAULT_DIR


def load_default(attention: str = "flash"):
    """Load the shipped default model (``model.tokenizer`` attached). Trained on kjv.txt's first 95% of lines."""
    from .model import Model

    if not (DEFAULT_DIR / "config.json").is_file():
        raise FileNotFoundError(f"{DEFAULT_DIR}: the default model is missing from this installation; "
                                "make it with `python scripts/train_default.py`")
    return Model.load(DEFAULT_DIR, attention=attention)


def default_training_summary() -> dict:
    """What scripts/train_default.py recorded: data split, size, tokens seen, held-out perplexity, loss curve."""
    p = DEFAULT_DIR / "training.json"
    return json.loads(p.read_text()) if p.is_file() else {}
