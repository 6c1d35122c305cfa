"""OpenAI's BPE encodings, shipped with llmc and loaded offline: `llmc.get_encoding` / `llmc.encoding_for_model`.

The rank files are tiktoken's (MIT-licensed; see LICENSE-tiktoken beside this file), byte for byte: each one's
SHA-256 equals the hash tiktoken checks after downloading it. Their `.json` siblings hold the pre-tokenizer regex
(`pat_str`) and the special tokens, so `llmc.Tokenizer.from_tiktoken(path)` also loads them directly.

| name | ranks | derived how |
|---|---|---|
| `r50k_base`, `gpt2` | r50k_base.tiktoken | shipped (GPT-2's vocabulary; tiktoken's "gpt2" has the same ranks) |
| `p50k_base` | r50k_base + 24 tokens | built here: ranks 50257..50280 are runs of 2..25 spaces (the result's SHA-256 is tiktoken's p50k_base hash) |
| `p50k_edit` | = p50k_base | plus the FIM specials 50281..50283 |
| `cl100k_base` | cl100k_base.tiktoken | shipped |
| `o200k_base` | o200k_base.tiktoken | shipped |
| `o200k_harmony` | = o200k_base | plus the harmony chat specials and reserved tokens up to 201087 |

Loaded tokenizers are cached per process (one instance per name, shared by all callers, like tiktoken).

    import llmc
    enc = llmc.get_encoding("cl100k_base")
    enc.encode("hello world")                   # [15339, 1917], as tiktoken.get_encoding("cl100k_base")
    llmc.encoding_for_model("gpt-4o").name      # 'o200k_base'
"""
from __future__ import annotations

import base64
import json
import threading
from pathlib import Path

__all__ = ["get_encoding", "encoding_for_model", "encoding_name_for_model", "list_encoding_names",
           "encoding_rank_bytes", "ENCODINGS_DIR"]

ENCODINGS_DIR = Path(__file__).resolve().parent

_EOT, _FIM_PRE, _FIM_MID, _FIM_SUF = "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"


def _meta(stem: str) -> tuple[str, dict[str, int]]:
    m = json.loads((ENCODINGS_DIR / f"{stem}.json").read_text(encoding="utf-8"))
    return m["pat_str"], dict(m["special_tokens"])


def _harmony_specials() -> dict[str, int]:
    # tiktoken's o200k_harmony: o200k_base's specials, the chat-format tokens, and reserved names up to 201087.
    # 200018 is both <|endofprompt|> and <|reserved_200018|>: both encode to it; it decodes as <|endofprompt|>
    # (in tiktoken too; tests/test_encodings.py checks).
    _, base = _meta("o200k_base")
    named = {"<|startoftext|>": 199998, "<|endoftext|>": 199999, "<|reserved_200000|>": 200000,
             "<|reserved_200001|>": 200001, "<|return|>": 200002, "<|constrain|>": 200003,
             "<|reserved_200004|>": 200004, "<|channel|>": 200005, "<|start|>": 200006, "<|end|>": 200007,
             "<|message|>": 200008, "<|reserved_200009|>": 200009, "<|reserved_200010|>": 200010,
             "<|reserved_200011|>": 200011, "<|call|>": 200012}
    return {**base, **named, **{f"<|reserved_{i}|>": i for i in range(200013, 201088)}}


# name -> (rank-file stem, extra space-run tokens?, special tokens (None = the .json's))
_REGISTRY: dict[str, tuple[str, bool, object]] = {
    "gpt2": ("r50k_base", False, None),
    "r50k_base": ("r50k_base", False, None),
    "p50k_base": ("r50k_base", True, None),
    "p50k_edit": ("r50k_base", True, lambda: {_EOT: 50256, _FIM_PRE: 50281, _FIM_MID: 50282, _FIM_SUF: 50283}),
    "cl100k_base": ("cl100k_base", False, None),
    "o200k_base": ("o200k_base", False, None),
    "o200k_harmony": ("o200k_base", False, _harmony_specials),
}

# tiktoken's model tables (tiktoken/model.py), so encoding_for_model answers as tiktoken.encoding_for_model does
_MODEL_PREFIX_TO_ENCODING = {
    "o1-": "o200k_base", "o3-": "o200k_base", "o4-mini-": "o200k_base", "gpt-5": "o200k_base",
    "gpt-4.5-": "o200k_base", "gpt-4.1-": "o200k_base", "chatgpt-4o-": "o200k_base", "gpt-4o-": "o200k_base",
    "gpt-4-": "cl100k_base", "gpt-3.5-turbo-": "cl100k_base", "gpt-35-turbo-": "cl100k_base",
    "gpt-oss-": "o200k_harmony", "ft:gpt-4o": "o200k_base", "ft:gpt-4": "cl100k_base",
    "ft:gpt-3.5-turbo": "cl100k_base", "ft:davinci-002": "cl100k_base", "ft:babbage-002": "cl100k_base",
}
_MODEL_TO_ENCODING = {
    "o1": "o200k_base", "o3": "o200k_base", "o4-mini": "o200k_base", "gpt-5": "o200k_base",
    "gpt-4.1": "o200k_base", "gpt-4o": "o200k_base", "gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base",
    "gpt-3.5": "cl100k_base", "gpt-35-turbo": "cl100k_base", "davinci-002": "cl100k_base",
    "babbage-002": "cl100k_base", "text-embedding-ada-002": "cl100k_base", "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
    "text-davinci-003": "p50k_base", "text-davinci-002": "p50k_base", "text-davinci-001": "r50k_base",
    "text-curie-001": "r50k_base", "text-babbage-001": "r50k_base", "text-ada-001": "r50k_base",
    "davinci": "r50k_base", "curie": "r50k_base", "babbage": "r50k_base", "ada": "r50k_base",
    "code-davinci-002": "p50k_base", "code-davinci-001": "p50k_base", "code-cushman-002": "p50k_base",
    "code-cushman-001": "p50k_base", "davinci-codex": "p50k_base", "cushman-codex": "p50k_base",
    "text-davinci-edit-001": "p50k_edit", "code-davinci-edit-001": "p50k_edit",
    "text-similarity-davinci-001": "r50k_base", "text-similarity-curie-001": "r50k_base",
    "text-similarity-babbage-001": "r50k_base", "text-similarity-ada-001": "r50k_base",
    "text-search-davinci-doc-001": "r50k_base", "text-search-curie-doc-001": "r50k_base",
    "text-search-babbage-doc-001": "r50k_base", "text-search-ada-doc-001": "r50k_base",
    "code-search-babbage-code-001": "r50k_base", "code-search-ada-code-001": "r50k_base",
    "gpt2": "gpt2", "gpt-2": "gpt2",
}

_lock = threading.Lock()
_cache: dict = {}


def list_encoding_names() -> list[str]:
    """The encodings get_encoding knows, all shipped (no download ever)."""
    return list(_REGISTRY)


def encoding_rank_bytes(name: str) -> bytes:
    """The `.tiktoken` rank file of an encoding ("base64(token) rank" lines), as tiktoken would download it.

    p50k_base / p50k_edit are r50k_base's 50,256 ranks followed by runs of 2..25 spaces as ranks 50257..50280
    (Codex's whitespace tokens); the bytes equal tiktoken's p50k_base.tiktoken (same SHA-256).
    """
    stem, spaces, _ = _entry(name)
    data = (ENCODINGS_DIR / f"{stem}.tiktoken").read_bytes()
    if spaces:
        data += b"".join(base64.b64encode(b" " * n) + b" " + str(50255 + n).encode() + b"\n" for n in range(2, 26))
    return data


def _entry(name: str):
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown encoding {name!r}; llmc ships {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def get_encoding(name: str):
    """The llmc.Tokenizer for one of tiktoken's encodings ("gpt2", "r50k_base", "p50k_base", "p50k_edit",
    "cl100k_base", "o200k_base", "o200k_harmony"), token-identical to `tiktoken.get_encoding(name)`, loaded from the
    files shipped in llmc (offline) and cached: every call with the same name returns the same object.
    Its `.name` is the encoding's name. Unknown names raise ValueError listing the known ones.
    """
    stem, spaces, specials = _entry(name)
    with _lock:
        tok = _cache.get(name)
        if tok is None:
            from ..tokenizer import Tokenizer

            pat, meta_specials = _meta(stem)
            special_tokens = specials() if specials is not None else meta_specials
            if spaces:
                import os
                import tempfile

                # from_tiktoken reads a file; the derived p50k ranks go through a private temporary one
                fd, tmp = tempfile.mkstemp(suffix=".tiktoken", prefix="llmc-p50k-")
                try:
                    with os.fdopen(fd, "wb") as f:
                        f.write(encoding_rank_bytes(name))
                    tok = Tokenizer.from_tiktoken(tmp, pattern=pat, special_tokens=special_tokens)
                finally:
                    os.unlink(tmp)
            else:
                tok = Tokenizer.from_tiktoken(ENCODINGS_DIR / f"{stem}.tiktoken", pattern=pat,
                                              special_tokens=special_tokens)
            tok.name = name
            _cache[name] = tok
        return tok


def encoding_name_for_model(model_name: str) -> str:
    """The encoding a model uses, by tiktoken's tables (exact names, then prefixes such as "gpt-4o-"); KeyError for
    a model tiktoken does not know (as tiktoken raises)."""
    if not isinstance(model_name, str):
        raise TypeError(f"model_name must be a str, got {type(model_name).__name__}")
    if model_name in _MODEL_TO_ENCODING:
        return _MODEL_TO_ENCODING[model_name]
    for prefix, enc in _MODEL_PREFIX_TO_ENCODING.items():
        if model_name.startswith(prefix):
            return enc
    raise KeyError(f"no known encoding for model {model_name!r}; use llmc.get_encoding(name) with one of "
                   f"{', '.join(_REGISTRY)}")


def encoding_for_model(model_name: str):
    """get_encoding(encoding_name_for_model(model_name)): e.g. "gpt-4o" -> o200k_base, "gpt-4" -> cl100k_base."""
    return get_encoding(encoding_name_for_model(model_name))
