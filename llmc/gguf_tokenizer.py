"""The tokenizer inside a GGUF file, rebuilt as the Hugging Face tokenizer.json it was converted from.

llama.cpp's converter stores a tokenizer as `tokenizer.ggml.*` metadata: the model kind (`gpt2`: byte-level BPE
with merges; `llama`: SentencePiece BPE with scores and byte fallback), the tokens with their types (1 normal,
2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte), merges or scores, the special ids and add_bos/add_eos, and
for `gpt2` the name of the pre-tokenizer (`tokenizer.ggml.pre`). This module writes the equivalent tokenizer.json
and hands it to llmc's own tokenizer.json loader (the C core), so the result encodes like Hugging Face `tokenizers`
does with the original file. What a name implies:

| tokenizer.ggml.pre          | pre-tokenizer (HF)                        | other                       |
|-----------------------------|-------------------------------------------|-----------------------------|
| gpt-2, phi-2                | ByteLevel(use_regex=True) (GPT-2's regex) |                             |
| llama-bpe, llama3, llama-v3 | Split(Llama 3 regex) + ByteLevel          | ignore_merges (like HF)     |
| smaug-bpe                   | Split(Llama 3 regex) + ByteLevel          | merges always applied       |
| qwen2                       | Split(Qwen 2 regex) + ByteLevel           | NFC normalizer (like HF)    |

Any other name is llmc.UnsupportedError naming it. For `llama` (SentencePiece) the merges are derived from the
scores the way transformers' converter does (every split of a token into two tokens, ranked by the token's score,
ties in vocabulary order). A file converted from a tokenizer.json alone (no tokenizer.model) carries placeholder
scores (all equal); SentencePiece vocabularies are ordered by score, so llmc then ranks by token id.
"""
from __future__ import annotations

import json
from itertools import compress

import numpy as np

from ._native import _core

__all__ = ["tokenizer_json", "load_tokenizer", "PRE_TOKENIZERS"]

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

#: tokenizer.ggml.pre -> (llmc pre-tokenizer name, ByteLevel use_regex, ignore_merges, NFC)
PRE_TOKENIZERS = {
    "gpt-2": ("gpt2", True, False, False),
    "phi-2": ("gpt2", True, False, False),
    "llama-bpe": ("llama3", False, True, False),
    "llama3": ("llama3", False, True, False),
    "llama-v3": ("llama3", False, True, False),
    "smaug-bpe": ("llama3", False, False, False),
    "qwen2": ("qwen2", False, False, True),
}


def _unsupported(msg: str):
    return _core.UnsupportedError(msg)


def _added(tokens: list[str], types: np.ndarray, special_types: dict) -> list[dict]:
    """added_tokens entries for the tokens whose type is a key of special_types (-> its "special" flag)."""
    idx = np.flatnonzero(np.isin(types, list(special_types))).tolist()
    return [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": bool(special_types[int(types[i])])} for i in idx]


def _vocab(tokens: list[str], keep: np.ndarray, first_wins: bool) -> dict[str, int]:
    """{token: id} over the ids where keep is true; a token string listed twice maps to its first id (first_wins) or
    its last. Built by dict(zip(...)) in C: a Python loop over a 128k-token vocabulary costs ~0.1 s."""
    if keep.all():
        ids, kept = list(range(len(tokens))), tokens
    else:
        mask = keep.tolist()
        ids, kept = list(compress(range(len(tokens)), mask)), list(compress(tokens, mask))
    vocab = dict(zip(kept, ids))  # last wins
    if first_wins and len(vocab) != len(ids):
        vocab = {}
        for t, i in zip(kept, ids):
            vocab.setdefault(t, i)
    return vocab


def _template(f, tokens) -> dict | None:
    """TemplateProcessing for add_bos / add_eos, or None."""
    model = f.get("tokenizer.ggml.model")
    add_bos = f.get("tokenizer.ggml.add_bos_token", model == "llama")  # llama.cpp's defaults
    add_eos = f.get("tokenizer.ggml.add_eos_token", False)
    parts, specials = [], {}
    for flag, key in ((add_bos, "bos"), (None, None), (add_eos, "eos")):
        if key is None:
            parts.append({"Sequence": {"id": "A", "type_id": 0}})
            continue
        if not flag:
            continue
        tid = f.get(f"tokenizer.ggml.{key}_token_id")
        if tid is None:
            continue
        if not 0 <= tid < len(tokens):
            raise ValueError(f"{f.path}: tokenizer.ggml.{key}_token_id = {tid} is not a token id "
                             f"(vocabulary of {len(tokens)})")
        parts.append({"SpecialToken": {"id": tokens[tid], "type_id": 0}})
        specials[tokens[tid]] = {"id": tokens[tid], "ids": [int(tid)], "tokens": [tokens[tid]]}
    if not specials:
        return None
    return {"type": "TemplateProcessing", "single": parts, "pair": parts, "special_tokens": specials}


def _spm_merges(tokens: list[str], scores: np.ndarray, vocab: dict[str, int]) -> list[list[str]]:
    """Every split of a token into two tokens, ranked by the token's score (highest first; ties in vocabulary
    order), and within one token by (left id, right id): transformers' SentencePieceExtractor. One sort of
    (-score, token id, left id, right id) gives that order (no two splits of a token share a left part)."""
    if len(scores) and np.all(scores == scores[0]):
        scores = -np.arange(len(tokens), dtype=np.float64)  # placeholder scores: vocabulary order is score order
    neg = (-np.asarray(scores, np.float64)).tolist()
    get = vocab.get
    found = []
    for i, t in enumerate(tokens):
        for k in range(1, len(t)):
            li = get(t[:k])
            if li is not None:
                ri = get(t[k:])
                if ri is not None:
                    found.append((neg[i], i, li, ri))
    found.sort()
    return [[tokens[li], tokens[ri]] for _, _, li, ri in found]


def tokenizer_json(f) -> dict:
    """The tokenizer.json (as a dict) equivalent to the tokenizer.ggml.* metadata of an open llmc.gguf.GGUFFile."""
    model = f.get("tokenizer.ggml.model")
    if model is None:
        raise ValueError(f"{f.path}: no tokenizer in this file (no tokenizer.ggml.model key)")
    tokens = f.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{f.path}: tokenizer.ggml.tokens must be a non-empty array of strings")
    types = f.get("tokenizer.ggml.token_type")
    if types is None:
        types = np.full(len(tokens), NORMAL, np.int32)
    types = np.asarray(types)
    if len(types) != len(tokens):
        raise ValueError(f"{f.path}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens")
    if model == "gpt2":
        pre = f.get("tokenizer.ggml.pre", "default")
        if pre not in PRE_TOKENIZERS:
            raise _unsupported(f"{f.path}: tokenizer.ggml.pre = {pre!r} is not supported by llmc (known: "
                               f"{', '.join(PRE_TOKENIZERS)})")
        name, use_regex, ignore_merges, nfc = PRE_TOKENIZERS[pre]
        merges = f.get("tokenizer.ggml.merges")
        if not isinstance(merges, list):
            raise ValueError(f"{f.path}: a gpt2 tokenizer needs tokenizer.ggml.merges (an array of strings)")
        # added tokens (control: special, user-defined: not) live outside the BPE vocabulary, as in HF
        vocab = _vocab(tokens, ~np.isin(types, (CONTROL, USER_DEFINED, UNUSED)), first_wins=False)
        byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": use_regex}
        pre_tok = byte_level if use_regex else {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": _core.pretokenizer_regex(name)}, "behavior": "Isolated",
             "invert": False}, byte_level]}
        return {
            "version": "1.0",
            "added_tokens": _added(tokens, types, {CONTROL: True, USER_DEFINED: False}),
            "normalizer": {"type": "NFC"} if nfc else None,
            "pre_tokenizer": pre_tok,
            "post_processor": _template(f, tokens),
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges},
        }
    if model == "llama":
        scores = f.get("tokenizer.ggml.scores")
        scores = np.zeros(len(tokens), np.float32) if scores is None else np.asarray(scores, np.float64)
        if len(scores) != len(tokens):
            raise ValueError(f"{f.path}: tokenizer.ggml.scores has {len(scores)} entries for {len(tokens)} tokens")
        vocab = _vocab(tokens, types != UNUSED, first_wins=True)
        unk = f.get("tokenizer.ggml.unknown_token_id")
        prefix = f.get("tokenizer.ggml.add_space_prefix", True)
        if prefix:
            normalizer = {"type": "Sequence", "normalizers": [
                {"type": "Prepend", "prepend": "\u2581"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
            pre_tok = None
            decoder = {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
                {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
        else:
            normalizer = None
            pre_tok = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
            decoder = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": False}
        return {
            "version": "1.0",
            "added_tokens": _added(tokens, types, {UNKNOWN: True, CONTROL: True, USER_DEFINED: False}),
            "normalizer": normalizer,
            "pre_tokenizer": pre_tok,
            "post_processor": _template(f, tokens),
            "decoder": decoder,
            "model": {"type": "BPE", "dropout": None,
                      "unk_token": tokens[unk] if unk is not None and 0 <= unk < len(tokens) else None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                      "byte_fallback": bool((types == BYTE).any()), "vocab": vocab,
                      "merges": _spm_merges(tokens, scores, vocab)},
        }
    raise _unsupported(f"{f.path}: tokenizer.ggml.model = {model!r} is not supported by llmc (known: gpt2, llama)")


def load_tokenizer(path_or_file):
    """llmc.Tokenizer from a GGUF file's metadata (a path or an open llmc.gguf.GGUFFile)."""
    from .gguf import GGUFFile
    from .tokenizer import Tokenizer

    f = path_or_file if isinstance(path_or_file, GGUFFile) else GGUFFile(path_or_file)
    # compact separators: ~10% less text to write and parse; no circular check (a tree of lists and dicts)
    data = json.dumps(tokenizer_json(f), ensure_ascii=False, separators=(",", ":"), check_circular=False)
    data = data.encode("utf-8")
    return Tokenizer.from_json_bytes(data, name=f"{f.path} (GGUF tokenizer)")


# ---------------------------------------------------------------------------------------------- writing
def _regex_name(regex: str) -> str | None:
    """The built-in pre-tokenizer name whose regex this is (llmc's canonical form), or None."""
    try:
        canon = _core.pretokenizer_regex(regex)
    except (ValueError, _core.UnsupportedError):
        return None
    for name in ("llama3", "qwen2", "gpt2", "cl100k", "o200k"):
        try:
            if _core.pretokenizer_regex(name) == canon:
                return name
        except (ValueError, _core.UnsupportedError):
            pass
    return None


def _split_regex(pre) -> str | None:
    if not isinstance(pre, dict):
        return None
    if pre.get("type") == "Split":
        return (pre.get("pattern") or {}).get("Regex")
    if pre.get("type") == "Sequence":
        for p in pre.get("pretokenizers", []):
            r = _split_regex(p)
            if r:
                return r
    return None


def _is_byte_level(tj) -> bool:
    def walk(p):
        if not isinstance(p, dict):
            return False
        if p.get("type") == "ByteLevel":
            return True
        return any(walk(x) for x in p.get("pretokenizers", []))
    return walk(tj.get("pre_tokenizer"))


def _template_flags(tj) -> tuple[bool, bool]:
    pp = tj.get("post_processor") or {}
    if pp.get("type") != "TemplateProcessing":
        return False, False
    single = pp.get("single", [])
    seq = next((i for i, x in enumerate(single) if "Sequence" in x), None)
    if seq is None:
        return False, False
    return any("SpecialToken" in x for x in single[:seq]), any("SpecialToken" in x for x in single[seq + 1:])


def gguf_metadata_from_tokenizer_json(tj: dict, n_vocab: int, special_ids: dict | None = None,
                                      add_bos: bool | None = None) -> dict:
    """tokenizer.ggml.* metadata for a Hugging Face tokenizer.json (as a dict): byte-level BPE becomes `gpt2`
    (tokens, token types, merges, the pre-tokenizer name), SentencePiece-style BPE with byte fallback becomes
    `llama` (tokens, scores from the merge ranks: a token's score is minus the rank of the first merge making it,
    which is the order SentencePiece's scores give). n_vocab: the model's vocabulary (ids past the tokenizer's are
    padded with unused [PAD<id>] tokens, as llama.cpp's converter does). special_ids: {"bos": id, "eos": id, ...}
    (e.g. from config.json); add_bos: None = from the post-processor template."""
    from .gguf import Value

    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise _unsupported(f"only BPE tokenizers can be written to GGUF, this one is {model.get('type')!r}")
    vocab = model["vocab"]
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    size = max([n_vocab] + [i + 1 for i in vocab.values()] + [i + 1 for i in added])
    if size > n_vocab:
        raise ValueError(f"the tokenizer has ids up to {size - 1}, the model's vocabulary is {n_vocab}")
    tokens: list = [None] * n_vocab
    types = np.full(n_vocab, NORMAL, np.int32)
    for t, i in vocab.items():
        tokens[i] = t
    for i, t in added.items():
        tokens[i] = c = t["content"]
        # llama.cpp's converter: special, or looking like a control token (<|...|>), is CONTROL
        looks = c in ("<pad>", "<mask>", "<2mass>", "[@BOS@]") or (c.startswith("<|") and c.endswith("|>")) or (
            c.startswith("<\uff5c") and c.endswith("\uff5c>"))
        types[i] = CONTROL if t.get("special", True) or looks else USER_DEFINED
    for i in range(n_vocab):
        if tokens[i] is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    bos_tpl, eos_tpl = _template_flags(tj)
    md: dict = {}
    if _is_byte_level(tj):
        regex = _split_regex(tj.get("pre_tokenizer"))
        name = _regex_name(regex) if regex else "gpt2"
        pre = {"gpt2": "gpt-2", "qwen2": "qwen2",
               "llama3": "llama-bpe" if model.get("ignore_merges") else "smaug-bpe"}.get(name)
        if pre is None:
            raise _unsupported(f"no llama.cpp pre-tokenizer name for this tokenizer's regex {regex!r}")
        md["tokenizer.ggml.model"] = "gpt2"
        md["tokenizer.ggml.pre"] = pre
        md["tokenizer.ggml.tokens"] = tokens
        md["tokenizer.ggml.token_type"] = types
        md["tokenizer.ggml.merges"] = merges
    else:
        if not model.get("byte_fallback") and not any(t.startswith("<0x") for t in vocab):
            raise _unsupported("a non-byte-level BPE tokenizer without byte fallback has no GGUF form llama.cpp reads")
        rank: dict = {}
        for r, m in enumerate(merges):
            a, b = m.split(" ", 1)
            rank.setdefault(a + b, r)
        scores = np.zeros(n_vocab, np.float32)
        for i, t in enumerate(tokens):
            if types[i] == NORMAL:
                if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
                    types[i] = BYTE
                elif t in rank:
                    scores[i] = -float(rank[t] + 1)
        unk = model.get("unk_token")
        if unk is not None and unk in vocab:
            if types[vocab[unk]] == NORMAL:  # an added (special) unk stays CONTROL, as llama.cpp's converter has it
                types[vocab[unk]] = UNKNOWN
            md["tokenizer.ggml.unknown_token_id"] = Value(vocab[unk], "uint32")
        md["tokenizer.ggml.model"] = "llama"
        md["tokenizer.ggml.pre"] = "default"
        md["tokenizer.ggml.tokens"] = tokens
        md["tokenizer.ggml.scores"] = scores
        md["tokenizer.ggml.token_type"] = types
        nz = tj.get("normalizer") or {}
        md["tokenizer.ggml.add_space_prefix"] = bool(nz.get("type") == "Sequence" and any(
            n.get("type") == "Prepend" for n in nz.get("normalizers", [])))
    for k, v in (special_ids or {}).items():
        if v is not None:
            md[f"tokenizer.ggml.{k}_token_id"] = Value(int(v), "uint32")
    md["tokenizer.ggml.add_bos_token"] = bool(bos_tpl if add_bos is None else add_bos)
    md["tokenizer.ggml.add_eos_token"] = bool(eos_tpl)
    return md
