"""Tokenizers identical to tiktoken, Hugging Face `tokenizers` and `sentencepiece` (BPE, Unigram, WordPiece), and
BPE training.

All the work (file parsing, pre-tokenization, BPE, decoding, training) happens in the C core; this module finds
files, passes bytes, and turns tiktoken-style `allowed_special` / `disallowed_special` arguments into flags.

Quick tour::

    import llmc
    tok = llmc.Tokenizer.from_tiktoken("cl100k_base.tiktoken", pattern="cl100k",
                                       special_tokens={"<|endoftext|>": 100257})
    ids = tok.encode("hello world")            # [15339, 1917]
    tok.decode(ids)                            # 'hello world'
    hf = llmc.Tokenizer.from_file("llama3/tokenizer.json")
"""
from __future__ import annotations

import codecs
import json
import os
from typing import AbstractSet, Collection, Iterable, Literal, Mapping, Sequence, Union

import numpy as np

from ._native import _core

__all__ = ["Tokenizer"]

PathLike = Union[str, "os.PathLike[str]"]
SpecialArg = Union[AbstractSet[str], Literal["all"], None]

_ALLOWED, _DISALLOWED = 1, 2


def _utf8(text: str) -> str:
    """text, with lone surrogates (which UTF-8 cannot hold) replaced by U+FFFD like tiktoken does."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Tokenizer:
    """A tokenizer backed by the C core (BPE, Unigram, WordPiece). Build one with `from_tiktoken`, `from_file`,
    `from_sentencepiece` or `train`.

    Encoding follows tiktoken's rules for special tokens: text that spells a *disallowed* special token raises
    ValueError; an *allowed* one becomes its id; otherwise (disallowed_special=()) it is encoded as plain text.
    Defaults: tokenizers from `.tiktoken` files disallow all specials (like tiktoken's `encode`); tokenizers from a
    `tokenizer.json` allow all of them (like HF `tokenizers`, which always matches added tokens).
    """

    def __init__(self, handle, *, kind: str, default_allowed: SpecialArg, default_disallowed: SpecialArg,
                 pattern: str | None = None):
        if not isinstance(handle, _core.TokenizerHandle):
            raise TypeError("use Tokenizer.from_tiktoken, Tokenizer.from_file, Tokenizer.from_sentencepiece or "
                            "Tokenizer.train")
        self._h = handle
        self.kind = kind
        self.pattern = pattern
        added = handle.added()
        self._added = [(b.decode("utf-8", "replace"), i, sp) for b, i, sp in added]
        self._special = {s: i for s, i, sp in self._added if sp}
        self._index = {s: k for k, (s, _, _) in enumerate(self._added)}
        self._default = (default_allowed, default_disallowed)
        self._mode_cache: dict = {}

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_tiktoken(cls, path: PathLike, pattern: str | None = None,
                      special_tokens: Mapping[str, int] | None = None) -> "Tokenizer":
        """Load a `.tiktoken` rank file ("base64 rank" per line).

        pattern: the pre-tokenizer: "gpt2", "cl100k", "o200k", "llama3", "qwen2", one of those exact regex strings
        (e.g. the `pat_str` of tiktoken's encodings; they run on hand-written scanners), or any other regex in the
        general engine's subset (docs/tokenizer.md; its matches are the pieces, as in tiktoken). A regex outside
        the subset raises llmc.UnsupportedError naming the construct.
        special_tokens: {text: id}, e.g. {"<|endoftext|>": 100257}.
        When pattern (or special_tokens) is None and a `.json` file with the same stem sits beside the rank file
        (tiktoken's description: `pat_str`, `special_tokens`), they are taken from it.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if pattern is None or special_tokens is None:
            meta = os.path.splitext(os.fspath(path))[0] + ".json"
            found = tiktoken_meta(meta) if os.path.isfile(meta) else None
            if found is not None:
                pattern = found[0] if pattern is None else pattern
                special_tokens = found[1] if special_tokens is None else special_tokens
        if pattern is None:
            raise ValueError(f"no pattern given and no {os.path.basename(os.fspath(path))[:-9]}.json beside the file: "
                             "pass pattern='gpt2' | 'cl100k' | 'o200k' | 'llama3' | 'qwen2'")
        data = _read(path)
        specials = _specials(special_tokens)
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a str, got {type(pattern).__name__}")
        h = _core.tokenizer_from_tiktoken(data, pattern, specials)
        tok = cls(h, kind="tiktoken", default_allowed=set(), default_disallowed="all", pattern=pattern)
        tok._regex = _regex_of(pattern)
        return tok

    @classmethod
    def from_file(cls, path: PathLike) -> "Tokenizer":
        """Load a Hugging Face `tokenizer.json` (byte-level BPE like GPT-2 / Llama 3 / Qwen, SentencePiece-style
        BPE with byte fallback like Llama 2, Unigram like T5 / XLM-R / mBART, WordPiece like BERT). Parts llmc does
        not implement raise llmc.UnsupportedError naming them. A path ending in `.model` is read as a
        SentencePiece model (`from_sentencepiece`).
        """
        if isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(".model"):
            return cls.from_sentencepiece(path)
        data = _read(path)
        h = _core.tokenizer_from_hf_json(data, os.fspath(path))
        tok = cls(h, kind="hf", default_allowed="all", default_disallowed=set())
        tok._json_bytes = data
        return tok

    @classmethod
    def from_ranks_json(cls, path: PathLike) -> "Tokenizer":
        """Load tiktoken-style ranks kept in a JSON file of another layout.

        Two layouts are read:

        - Mistral's `tekken.json`: {"config": {"pattern", "default_vocab_size", "default_num_special_tokens"},
          "vocab": [{"rank", "token_bytes" (base64), "token_str"}, ...], "special_tokens": [{"rank", "token_str",
          "is_control"}, ...]}. As mistral_common builds it: the special tokens take ids 0..n_special-1 (the ones
          the file does not list are "<SPECIAL_i>"), vocabulary rank r becomes id r + n_special, and only the first
          default_vocab_size - n_special ranks are used. Special tokens are not matched in text unless named in
          allowed_special.
        - A plain one: {"pattern" | "pat_str": regex, "ranks" | "mergeable_ranks" | "vocab": [[rank, base64], ...]
          or [{"rank", "token_bytes"}, ...], "special_tokens": {text: id} or [{"rank" | "id", "token_str" |
          "content"}, ...]} (optional). Ids are the ranks; special tokens are disallowed in text by default, like
          from_tiktoken.

        Any other layout raises ValueError saying what is missing. The pattern may be any regex of the general
        engine's subset (see from_tiktoken).
        """
        import base64
        import binascii

        name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
        try:
            doc = json.loads(_read(path))
        except ValueError as e:
            raise ValueError(f"{name}: not JSON ({e})") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{name}: the top level is not an object")

        def entries(vocab, what):
            if not isinstance(vocab, list) or not vocab:
                raise ValueError(f"{name}: '{what}' must be a non-empty list of ranks")
            out = []
            for i, e in enumerate(vocab):
                if isinstance(e, dict) and "rank" in e and "token_bytes" in e:
                    r, b = e["rank"], e["token_bytes"]
                elif isinstance(e, (list, tuple)) and len(e) == 2:
                    r, b = e
                else:
                    raise ValueError(f"{name}: {what}[{i}] is not {{rank, token_bytes}} or [rank, base64 bytes]")
                if isinstance(r, bool) or not isinstance(r, int) or r < 0 or not isinstance(b, str):
                    raise ValueError(f"{name}: {what}[{i}] needs an int rank >= 0 and base64 token bytes")
                try:
                    raw = base64.b64decode(b, validate=True)
                except (binascii.Error, ValueError):
                    raise ValueError(f"{name}: {what}[{i}] token bytes {b[:40]!r} are not base64") from None
                if not raw:
                    raise ValueError(f"{name}: {what}[{i}] has no token bytes")
                out.append((r, raw))
            return out

        def special_list(sp, what):
            if sp is None:
                return []
            if isinstance(sp, dict):
                items = list(sp.items())
            elif isinstance(sp, list):
                items = []
                for i, e in enumerate(sp):
                    text = e.get("token_str", e.get("content")) if isinstance(e, dict) else None
                    rid = e.get("rank", e.get("id")) if isinstance(e, dict) else None
                    if not isinstance(text, str) or isinstance(rid, bool) or not isinstance(rid, int):
                        raise ValueError(f"{name}: {what}[{i}] needs a token_str (or content) and a rank (or id)")
                    items.append((text, rid))
            else:
                raise ValueError(f"{name}: '{what}' must be an object {{text: id}} or a list")
            for text, rid in items:
                if not isinstance(text, str) or not text or isinstance(rid, bool) or not isinstance(rid, int):
                    raise ValueError(f"{name}: special token {text!r}: {rid!r} is not a non-empty text and an int id")
            return items

        cfg = doc.get("config")
        if isinstance(cfg, dict) and isinstance(doc.get("vocab"), list):  # tekken
            pattern = cfg.get("pattern")
            n_special, vocab_size = cfg.get("default_num_special_tokens"), cfg.get("default_vocab_size")
            for k, v in (("pattern", pattern), ("default_num_special_tokens", n_special),
                         ("default_vocab_size", vocab_size)):
                if v is None or (k != "pattern" and (isinstance(v, bool) or not isinstance(v, int) or v < 0)):
                    raise ValueError(f"{name}: tekken config lacks a valid '{k}'")
            if not isinstance(pattern, str):
                raise ValueError(f"{name}: tekken config 'pattern' must be a string")
            ranks = entries(doc["vocab"], "vocab")
            inner = vocab_size - n_special
            if inner <= 0 or inner > len(ranks):
                raise ValueError(f"{name}: default_vocab_size {vocab_size} - {n_special} special tokens does not fit "
                                 f"the {len(ranks)} vocabulary ranks")
            for i, (r, _) in enumerate(ranks[:inner]):
                if r != i:
                    raise ValueError(f"{name}: vocab[{i}] has rank {r}: tekken ranks must be 0, 1, 2, ... in order")
            specials = special_list(doc.get("special_tokens"), "special_tokens")
            if len(specials) > n_special:
                raise ValueError(f"{name}: {len(specials)} special tokens, but default_num_special_tokens is {n_special}")
            seen = {r for _, r in specials}
            if seen != set(range(len(specials))):
                raise ValueError(f"{name}: special token ranks must be 0..{len(specials) - 1}")
            specials += [(f"<SPECIAL_{i}>", i) for i in range(len(specials), n_special)]
            lines = [base64.b64encode(b) + b" " + str(r + n_special).encode() for r, b in ranks[:inner]]
            default = (set(), set())
        else:
            pattern = doc.get("pattern", doc.get("pat_str"))
            vocab = next((doc[k] for k in ("ranks", "mergeable_ranks", "vocab") if k in doc), None)
            if not isinstance(pattern, str) or vocab is None:
                raise ValueError(f"{name}: not a tiktoken-style ranks layout: expected a 'pattern' (or 'pat_str') "
                                 "string and 'ranks' / 'mergeable_ranks' / 'vocab' ([[rank, base64 bytes], ...]), or "
                                 "Mistral's tekken layout ('config' + 'vocab'); a Hugging Face tokenizer.json loads "
                                 "with Tokenizer.from_file")
            ranks = entries(vocab, "ranks")
            specials = special_list(doc.get("special_tokens"), "special_tokens")
            lines = [base64.b64encode(b) + b" " + str(r).encode() for r, b in ranks]
            default = (set(), "all")
        data = b"\n".join(lines) + b"\n"
        h = _core.tokenizer_from_tiktoken(data, pattern, [(t.encode("utf-8"), i) for t, i in specials])
        tok = cls(h, kind="tiktoken", default_allowed=default[0], default_disallowed=default[1], pattern=pattern)
        tok._regex = _regex_of(pattern)
        return tok

    @classmethod
    def from_sentencepiece(cls, path: PathLike) -> "Tokenizer":
        """Load a SentencePiece `.model` file (the protobuf `sentencepiece` writes; Unigram or BPE), read in C.

        Encodes and decodes like `sentencepiece.SentencePieceProcessor` on the same file: its normalizer (the
        precompiled charsmap of nmt_nfkc / nfkc / ..., add_dummy_prefix, remove_extra_whitespaces,
        escape_whitespaces), user-defined pieces (kept whole), control pieces (never matched in text, decoded to
        nothing), byte fallback, unknown runs fused into one unk. `encode(text, add_special_tokens=True)` puts the
        model's <s> in front (sentencepiece's add_bos). A corrupt file raises ValueError; model types other than
        Unigram and BPE raise llmc.UnsupportedError.
        """
        data = _read(path)
        h = _core.tokenizer_from_sentencepiece(data, os.fspath(path))
        tok = cls(h, kind="sentencepiece", default_allowed=set(), default_disallowed=set())
        tok._spm_bytes = data
        return tok

    @classmethod
    def from_json_bytes(cls, data: bytes, name: str = "<tokenizer.json>") -> "Tokenizer":
        """Like from_file, from the bytes of a tokenizer.json."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        h = _core.tokenizer_from_hf_json(bytes(data), name)
        tok = cls(h, kind="hf", default_allowed="all", default_disallowed=set())
        tok._json_bytes = bytes(data)
        return tok

    @classmethod
    def train(cls, text: Union[str, Iterable[str]], vocab_size: int, pattern: str = "gpt4",
              special_tokens: Sequence[str] = (), min_frequency: int = 2, progress: bool = True) -> "Tokenizer":
        """Train a byte-level BPE tokenizer (in C: incremental pair counts and a priority queue).

        text: a str or an iterable of str (e.g. lines). vocab_size: 256 byte tokens + merges + special tokens.
        pattern: the pre-tokenizer: "gpt4" (= cl100k), "gpt2", "o200k", "llama3", "qwen2", or one of their exact
        regex strings.
        special_tokens: texts that get the last ids. Pairs seen fewer than min_frequency times are not merged (so
        the vocabulary can come out smaller). The result encodes like HF `tokenizers` does with the same
        merges; `save` writes a tokenizer.json HF loads, or a .tiktoken file.
        """
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 0:
            raise ValueError(f"min_frequency must be an int >= 0, got {min_frequency!r}")
        specials = list(special_tokens)
        for sp in specials:
            if not isinstance(sp, str) or not sp:
                raise TypeError(f"special tokens must be non-empty str, got {sp!r}")
        if len(set(specials)) != len(specials):
            raise ValueError("special tokens must be distinct")
        n_merges = vocab_size - 256 - len(specials)
        if n_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is smaller than 256 bytes + {len(specials)} special tokens")
        texts = [text] if isinstance(text, str) else list(text)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"training text {i} must be a str, got {type(t).__name__}")
        regex = _core.pretokenizer_regex(pattern)
        cb = None
        if progress:
            import sys

            def cb(done, total):
                sys.stderr.write(f"\rllmc BPE training: {done}/{total} new tokens")
                sys.stderr.flush()

        merges = _core.bpe_train([_utf8(t) for t in texts], pattern, n_merges, max(min_frequency, 1), cb)
        if progress:
            import sys

            sys.stderr.write("\n")
        vocab = [bytes([b]) for b in range(256)]
        for a, b, new in merges:
            if new == len(vocab):
                vocab.append(vocab[a] + vocab[b])
        spec = {sp: len(vocab) + k for k, sp in enumerate(specials)}
        doc = _hf_json(vocab, merges, regex, spec)
        tok = cls.from_json_bytes(json.dumps(doc, ensure_ascii=False).encode("utf-8"), "<trained>")
        tok._saved = {"json": doc, "vocab": vocab, "specials": spec, "pattern": pattern}
        return tok

    def save(self, path: PathLike) -> None:
        """Write the tokenizer: a path ending in .tiktoken gets tiktoken's format ("base64 rank" lines, special
        tokens not included: pass them to from_tiktoken), anything else a Hugging Face tokenizer.json: the trained
        vocabulary, the tokenizer.json a tokenizer was loaded from, or for .tiktoken vocabularies a byte-level BPE
        file (merges from the ranks, the regex as a Split, ignore_merges) that HF `tokenizers` loads."""
        import base64

        path = os.fspath(path)
        if path.endswith(".tiktoken"):
            special_ids = set(self._special.values())
            lines = []
            for i in range(self.n_vocab):
                if i in special_ids:
                    continue
                try:
                    b = self.token_bytes(i)
                except ValueError:
                    continue
                lines.append(base64.b64encode(b) + b" " + str(i).encode() + b"\n")
            from . import _files

            _files.atomic_write(path, b"".join(lines))  # a killed save leaves the old file, not half of one
            return
        from . import _files

        if getattr(self, "_spm_bytes", None) is not None:  # a SentencePiece model: the .model file, as it was
            if not path.endswith(".model"):
                raise _core.UnsupportedError(
                    f"a tokenizer loaded from a SentencePiece .model file saves only as .model, not {path!r}: a "
                    "tokenizer.json cannot reproduce sentencepiece's float scores and piece types exactly")
            _files.atomic_write(path, self._spm_bytes)
            return
        saved = getattr(self, "_saved", None)
        if saved is not None:
            doc = saved["json"]
        elif getattr(self, "_json_bytes", None) is not None:  # loaded from a tokenizer.json: that file, as it was
            _files.atomic_write(path, self._json_bytes)
            return
        else:  # a .tiktoken vocabulary: byte-level BPE whose merges are the ranks
            doc = self._tiktoken_json()
        _files.atomic_write(path, json.dumps(doc, ensure_ascii=False))

    def _tiktoken_json(self) -> dict:
        """tokenizer.json for a .tiktoken vocabulary: every split of a token into two tokens is a merge, in the
        order of the merged token's rank (tiktoken's rule), the regex as a Split, ignore_merges (tiktoken looks a
        whole piece up first), the special tokens as added tokens."""
        special_ids = set(self._special.values())
        vocab = {}
        for i in range(self.n_vocab):
            if i in special_ids:
                continue
            try:
                vocab[self.token_bytes(i)] = i
            except ValueError:
                continue
        merges = []
        for b, i in sorted(vocab.items(), key=lambda kv: kv[1]):
            for k in range(1, len(b)):
                if b[:k] in vocab and b[k:] in vocab:
                    merges.append((vocab[b[:k]], vocab[b[k:]], i))
        byid = {i: b for b, i in vocab.items()}
        doc = _hf_json([byid.get(i, b"") for i in range(max(byid) + 1)], merges, self._regex, self._special)
        doc["model"]["ignore_merges"] = True
        doc["model"]["vocab"] = {k: v for k, v in doc["model"]["vocab"].items() if v in byid}
        return doc

    # ------------------------------------------------------------------ properties
    @property
    def n_vocab(self) -> int:
        """Largest token id + 1 (special tokens included)."""
        return self._h.n_vocab()

    @property
    def special_tokens(self) -> dict[str, int]:
        """{text: id} of the special tokens."""
        return dict(self._special)

    @property
    def added_tokens(self) -> dict[str, int]:
        """{text: id} of every added token (special or not; HF files may have non-special ones like <think>)."""
        return {s: i for s, i, _ in self._added}

    def __repr__(self) -> str:
        return f"<llmc.Tokenizer {self.kind} n_vocab={self.n_vocab} specials={len(self._special)}>"

    # ------------------------------------------------------------------ encoding
    def _mode(self, allowed_special: SpecialArg, disallowed_special: SpecialArg) -> bytes | None:
        if allowed_special is None and disallowed_special is None:  # the common call: the cached default
            try:
                return self._default_mode
            except AttributeError:
                self._default_mode = self._mode(self._default[0], self._default[1])
                return self._default_mode
        if allowed_special is None:
            allowed_special = self._default[0]
        if disallowed_special is None:
            disallowed_special = self._default[1]
        key = (_freeze(allowed_special), _freeze(disallowed_special))
        m = self._mode_cache.get(key)
        if m is not None or key in self._mode_cache:
            return m
        if allowed_special == "all":
            allowed = set(self._special)
        else:
            allowed = set(_check_set(allowed_special, "allowed_special"))
            unknown = allowed - set(self._special)
            if unknown:
                raise ValueError(f"allowed_special names tokens that are not special tokens: {sorted(unknown)}")
        if disallowed_special == "all":
            disallowed = set(self._special) - allowed
        else:
            disallowed = set(_check_set(disallowed_special, "disallowed_special"))
        flags = bytearray(len(self._added))
        for k, (s, _, sp) in enumerate(self._added):
            if sp and s in allowed:
                flags[k] |= _ALLOWED
            elif sp and s in disallowed:
                flags[k] |= _DISALLOWED
        m = bytes(flags) if any(flags) else None
        if len(self._mode_cache) < 64:
            self._mode_cache[key] = m
        return m

    def encode(self, text: str, *, allowed_special: SpecialArg = None, disallowed_special: SpecialArg = None,
               add_special_tokens: bool = False) -> list[int]:
        """Token ids of `text`.

        allowed_special: set of special-token texts (or "all") to encode as their ids.
        disallowed_special: set (or "all" = every special not allowed) whose appearance raises ValueError; pass
        () to encode them as ordinary text. Defaults depend on the source (see the class docstring).
        add_special_tokens: apply the file's post-processor template (e.g. Llama 2's leading <s>).
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        mode = self._mode(allowed_special, disallowed_special)
        try:
            return self._h.encode(text, mode, bool(add_special_tokens))
        except UnicodeEncodeError:
            return self._h.encode(_utf8(text), mode, bool(add_special_tokens))

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode with every special token treated as plain text (tiktoken's encode_ordinary)."""
        return self.encode(text, allowed_special=set(), disallowed_special=())

    def encode_bytes(self, data: bytes) -> list[int]:
        """Encode raw bytes (need not be valid UTF-8; invalid bytes pre-tokenize as punctuation). Specials are text."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        return self._h.encode(bytes(data), None, False)

    def encode_batch(self, texts: Sequence[str], *, num_threads: int | None = None,
                     allowed_special: SpecialArg = None, disallowed_special: SpecialArg = None,
                     add_special_tokens: bool = False) -> list[list[int]]:
        """encode() of each text, in parallel in C (num_threads: None = llmc.get_num_threads())."""
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of str, not a single string")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, got {type(t).__name__}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ValueError(f"num_threads must be a positive int or None, got {num_threads!r}")
        mode = self._mode(allowed_special, disallowed_special)
        try:
            return self._h.encode_batch(texts, mode, bool(add_special_tokens), num_threads or 0)
        except UnicodeEncodeError:
            return self._h.encode_batch([_utf8(t) for t in texts], mode, bool(add_special_tokens), num_threads or 0)

    def count(self, text: str, *, allowed_special: SpecialArg = None, disallowed_special: SpecialArg = None) -> int:
        """Number of tokens encode(text) would give."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        mode = self._mode(allowed_special, disallowed_special)
        try:
            return self._h.count(text, mode)
        except UnicodeEncodeError:
            return self._h.count(_utf8(text), mode)

    def pieces(self, text: str) -> list[str]:
        """The pre-tokenizer's pieces of `text` (no special-token handling, no normalizer): for inspection."""
        b = _utf8(text).encode("utf-8")
        offs = self._h.pieces(b)
        return [b[offs[i]:offs[i + 1]].decode("utf-8", "replace") for i in range(0, len(offs), 2)]

    # ------------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of the tokens, concatenated. Ids out of range raise ValueError."""
        return self._h.decode(_ids(ids))

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """decode_bytes(ids) as text; bytes that are not valid UTF-8 (a token split inside a character) become
        U+FFFD, as in tiktoken (SentencePiece models: one U+FFFD per invalid byte, as sentencepiece does)."""
        if not isinstance(errors, str):
            raise TypeError(f"errors must be a str, got {type(errors).__name__}")
        if errors == "replace" and self.kind == "sentencepiece":
            errors = "_llmc_perbyte"
        return self._h.decode(_ids(ids), errors)

    def token_bytes(self, id: int) -> bytes:
        """The bytes of one token."""
        if isinstance(id, bool) or not hasattr(id, "__index__"):
            raise TypeError(f"token id must be an int, got {type(id).__name__}")
        return self._h.token_bytes(int(id))

    def id_to_token(self, id: int) -> str:
        """One token as readable text: the text it contributes when decoded (GPT-2's byte-level markers such as
        'Ġ' become the space they stand for, WordPiece's word starts carry a leading space, special tokens are
        their text). A token that holds only part of a UTF-8 character (byte-level BPE splits some characters over
        tokens) shows each byte that is not valid UTF-8 on its own as <0xHH>, the notation of SentencePiece's byte
        tokens: b"\\xe2\\x80" -> "<0xE2><0x80>", b" \\xc3" -> " <0xC3>"."""
        return _readable(self.token_bytes(id))

    def vocab(self) -> list[str]:
        """[id_to_token(i) for i in range(n_vocab)]: index = token id. Ids that name no token (gaps in a
        tokenizer's id space) are None."""
        out = []
        for i in range(self.n_vocab):
            try:
                out.append(_readable(self._h.token_bytes(i)))
            except ValueError:
                out.append(None)
        return out


def _readable(b: bytes) -> str:
    """b as UTF-8 text with each undecodable byte shown as <0xHH>."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("utf-8", "_llmc_hexbyte")


def _hexbyte(err: UnicodeDecodeError):
    return "".join(f"<0x{x:02X}>" for x in err.object[err.start:err.end]), err.end


codecs.register_error("_llmc_hexbyte", _hexbyte)
codecs.register_error("_llmc_perbyte", lambda err: ("\ufffd" * (err.end - err.start), err.end))


def llmc_unsupported(msg: str) -> Exception:
    return _core.UnsupportedError(msg)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level tokenizer.json files."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def _hf_json(vocab: list[bytes], merges, regex: str, specials: dict[str, int]) -> dict:
    """A byte-level BPE tokenizer.json (the layout HF `tokenizers` writes) for a trained vocabulary."""
    m = _bytes_to_unicode()

    def s(b: bytes) -> str:
        return "".join(m[x] for x in b)

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t, i in specials.items()],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {s(b): i for i, b in enumerate(vocab)},
                  "merges": [[s(vocab[a]), s(vocab[b])] for a, b, _ in merges]},
    }


def _regex_of(pattern: str) -> str:
    """The regex a built-in pre-tokenizer name stands for; any other pattern is its own regex."""
    try:
        return _core.pretokenizer_regex(pattern) or pattern
    except ValueError:
        return pattern


def _ids(ids):
    """ids as the binding takes them: a list, tuple or NumPy array as it is (read in C without converting each
    id to a Python object), anything else iterable as a list."""
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a sequence of ints")
    return ids if isinstance(ids, (list, tuple, np.ndarray)) else list(ids)


def _freeze(x):
    if x == "all":
        return "all"
    try:
        return frozenset(x)
    except TypeError:
        raise TypeError(f"expected a set of str or 'all', got {type(x).__name__}") from None


def _check_set(x, name: str) -> Collection[str]:
    if isinstance(x, str):
        raise TypeError(f"{name} must be a set of str or 'all', got the str {x!r}")
    for s in x:
        if not isinstance(s, str):
            raise TypeError(f"{name} must hold str, got {type(s).__name__}")
    return x


def _specials(special_tokens) -> list[tuple[bytes, int]]:
    if special_tokens is None:
        return []
    if not isinstance(special_tokens, Mapping):
        raise TypeError("special_tokens must be a mapping {text: id}")
    out = []
    for s, i in special_tokens.items():
        if not isinstance(s, str) or isinstance(i, bool) or not isinstance(i, int):
            raise TypeError(f"special_tokens must map str to int, got {s!r}: {i!r}")
        if not s:
            raise ValueError("a special token cannot be empty")
        out.append((s.encode("utf-8"), i))
    return out


def _read(path: PathLike) -> bytes:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    from . import _files

    return _files.read_regular(path)  # a FIFO is refused, not waited on


def tiktoken_meta(json_path: PathLike) -> tuple[str, dict[str, int]] | None:
    """(pat_str, special_tokens) from a tiktoken `.json` description file next to a `.tiktoken` file; None when the
    file is something else (e.g. a tokenizer.json with the same name)."""
    try:
        from . import _files

        with _files.open_regular(json_path, "r", encoding="utf-8") as f:
            j = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(j, dict) or not isinstance(j.get("pat_str"), str):
        return None
    spec = j.get("special_tokens") or {}
    return j["pat_str"], dict(spec) if isinstance(spec, dict) else {}
