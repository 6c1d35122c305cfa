"""Encoder-decoder (sequence-to-sequence) transformers: T5 and BART, run in llmc's C core (csrc/seq2seq*.c).

    import llmc
    model = llmc.Model.load("path/to/t5-or-bart")       # a Seq2SeqModel for model_type t5 / bart
    states = model.encode([37, 1782, 1])                 # (T_in, d_model): the encoder's output
    logits = model.logits([37, 1782, 1], [0, 12, 7])     # (T_out, vocab): teacher-forced decoder logits
    ids = model.generate([37, 1782, 1], max_new_tokens=20, num_beams=4)

The encoder reads the whole source with bidirectional attention, once per call: its states are projected into the
cross-attention keys/values of every decoder layer when a decoder state is made (``model.decoder(src)``), and every
later decoding step reuses them. The decoder appends tokens to n beams at once (one matrix product per weight per
step for all beams) with a self-attention KV cache per beam; beam search reorders those caches in place.

Generation follows transformers' semantics: the decoder starts from ``decoder_start_token_id``; ``forced_bos_token_id``
(the first generated token) and ``forced_eos_token_id`` (the last one when ``max_new_tokens`` is reached) come from
generation_config.json / config.json unless given; greedy, sampling (the C sampler chain, see llmc.generate) and beam
search (llmc.beam, transformers' scoring) stop at ``eos_token_id``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from . import _files
from ._native import _core

__all__ = ["Seq2SeqModel", "Seq2SeqDecoder", "is_seq2seq_config", "t5_relative_position_bucket"]

_ATTN = {"standard": 0, "flash": 1}
_SEQ2SEQ_TYPES = ("t5", "bart")
# generation settings read from generation_config.json (else config.json), as transformers' GenerationConfig does
_GEN_KEYS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_bos_token_id",
             "forced_eos_token_id", "num_beams", "length_penalty", "early_stopping", "no_repeat_ngram_size",
             "repetition_penalty", "min_length", "max_length", "do_sample", "temperature", "top_k", "top_p")


def is_seq2seq_config(config: dict) -> bool:
    """True when a config.json dict describes a model this module runs (model_type t5 or bart)."""
    return isinstance(config, dict) and config.get("model_type") in _SEQ2SEQ_TYPES


def t5_relative_position_bucket(relative_position: int, bidirectional: bool = True, num_buckets: int = 32,
                                max_distance: int = 128) -> int:
    """T5's bucket of a key at ``relative_position`` = key position - query position (csrc/seq2seq_attn.c; the
    float32 arithmetic of transformers' T5Attention._relative_position_bucket, bucket for bucket)."""
    return _core.t5_bucket(int(relative_position), bool(bidirectional), int(num_buckets), int(max_distance))


def _attn(name: str | None, default: str) -> int:
    name = default if name is None else name
    if name not in _ATTN:
        raise ValueError(f'attention must be "flash" or "standard", got {name!r}')
    return _ATTN[name]


def _ids(ids, what: str) -> np.ndarray:
    a = np.asarray(ids)
    if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and a.size == 0):
        raise TypeError(f"{what} must be integer token ids, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D sequence of token ids, got shape {a.shape}")
    return a.astype(np.int64, copy=False)


def _id_list(v) -> list[int]:
    if v is None:
        return []
    return [int(e) for e in (v if isinstance(v, (list, tuple)) else [v])]


def _int_arg(name: str, v, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return int(v)


class Seq2SeqDecoder:
    """Decoding state over one encoded source: the cross-attention keys/values of every decoder layer (computed once)
    and the self-attention caches of ``num_beams`` sequences that grow together.

    append(ids) feeds (num_beams, T) tokens (or T tokens when num_beams == 1) and returns the next-token logits
    (num_beams, vocab) (all_logits=True: (num_beams, T, vocab)); reorder(parents) makes beam i continue beam
    parents[i] (beam search), moving cached rows, never recomputing them."""

    def __init__(self, core, model: "Seq2SeqModel", num_beams: int):
        self._d = core
        self.model = model
        self.num_beams = num_beams

    def append(self, ids, all_logits: bool = False) -> np.ndarray:
        a = np.asarray(ids)
        if a.ndim == 0:
            a = a.reshape(1, 1)
        elif a.ndim == 1:
            if self.num_beams != 1:
                raise ValueError(f"a decoder of {self.num_beams} beams takes ids of shape (num_beams, T)")
            a = a[None]
        if a.dtype.kind not in "iu":
            raise TypeError(f"decoder ids must be integers, got dtype {a.dtype}")
        out = self._d.append(a.astype(np.int64, copy=False), bool(all_logits))
        return out

    def reorder(self, parents: Sequence[int]) -> None:
        self._d.reorder(np.asarray(parents, dtype=np.int64))

    def reset(self) -> None:
        """Forget the decoder tokens (the encoded source and its cross K/V stay)."""
        self._d.reset()

    @property
    def n_tokens(self) -> int:
        """Decoder tokens cached per beam."""
        return self._d.n_tokens


class Seq2SeqModel:
    """An encoder-decoder transformer (T5 v1.0 / v1.1 / flan, BART) in the C core. Create with
    ``llmc.Model.load(path)`` (or ``Seq2SeqModel.load``) on a Hugging Face folder, or ``Seq2SeqModel.init(config)``
    for random weights."""

    def __init__(self, core, config: dict, attention: str = "flash", path: Path | None = None,
                 generation_config: dict | None = None):
        _attn(attention, "flash")
        self._m = core
        self._config = dict(config)
        self._attention = attention
        self.path = path
        self.tokenizer = None
        info = core.config()
        self.info = info
        self.arch: str = info["arch"]
        self.d_model: int = info["d_model"]
        self.vocab_size: int = info["vocab_size"]
        self.encoder_layers: int = info["encoder_layers"]
        self.decoder_layers: int = info["decoder_layers"]
        self.encoder_heads: int = info["encoder_heads"]
        self.decoder_heads: int = info["decoder_heads"]
        self.n_layers: int = self.encoder_layers + self.decoder_layers
        # BART's learned position tables bound both sides; T5 has no limit (0)
        self.max_positions: int = info["max_positions"]
        gen = {k: config[k] for k in _GEN_KEYS if k in config}
        gen.update({k: v for k, v in (generation_config or {}).items() if k in _GEN_KEYS})
        self.generation_config: dict = gen

    # ------------------------------------------------------------ creation
    @classmethod
    def load(cls, path: str | os.PathLike, attention: Literal["flash", "standard"] = "flash",
             dtype: str | None = None) -> "Seq2SeqModel":
        """Load a T5 / BART checkpoint folder: config.json, model.safetensors (or shards), generation_config.json
        and tokenizer.json when present. dtype=None uses the F32/F16/BF16 matrices as stored (mapped from the file);
        a dtype converts every matrix (not norms, biases, position tables) to that one type while loading:
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k" (ggml's block formats;
        a matrix whose rows are not whole blocks raises ValueError naming it). No mixed llama.cpp recipes here."""
        if dtype is not None and not isinstance(dtype, str):
            raise TypeError(f"dtype must be a str such as 'q8_0' or None, got {type(dtype).__name__}")
        p = Path(path).expanduser()
        if not p.is_dir():
            if p.exists():
                raise NotADirectoryError(f"{_files.display(p)}: a checkpoint is a folder (config.json + *.safetensors)")
            raise FileNotFoundError(f"{_files.display(p)}: no such checkpoint folder")
        from .model import _load_tokenizer

        with _files.stable_dir(p) as d:
            try:
                core = _core.s2s_load(d, dtype.lower() if dtype else None)
                config = json.loads(_files.read_regular(os.path.join(d, "config.json")))
                gen = None
                gpath = os.path.join(d, "generation_config.json")
                if os.path.lexists(gpath):
                    gen = json.loads(_files.read_regular(gpath))
                    if not isinstance(gen, dict):
                        raise ValueError(f"{gpath}: must be a JSON object")
                tokenizer = _load_tokenizer(Path(d) / "tokenizer.json")
            except Exception as e:
                raise _files.name_in_errors(e, d, p)
        model = cls(core, config, attention, p, gen)
        model.tokenizer = tokenizer
        return model

    @classmethod
    def init(cls, config: dict, seed: int = 0, attention: Literal["flash", "standard"] = "flash") -> "Seq2SeqModel":
        """Random weights (normal(0, 0.02), norms 1, biases 0) for a T5 / BART config dict (model_type + sizes;
        absent sizes take transformers' defaults)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return cls(_core.s2s_init(json.dumps(config), seed), config, attention)

    @property
    def config(self) -> dict:
        """The config.json contents (a copy)."""
        return dict(self._config)

    @property
    def encoder_runs(self) -> int:
        """How many times this model's encoder has run (each generate / logits / decoder call encodes once)."""
        return self._m.encoder_runs()

    def weight_types(self) -> dict[str, str]:
        """{checkpoint tensor name: type} of every weight as stored ("f32", "bf16", "f16")."""
        return {name: ty for name, ty, _ in self._m.tensors()}

    def __repr__(self) -> str:
        return (f"llmc.Seq2SeqModel({self.arch}, encoder={self.encoder_layers}x{self.encoder_heads}h, decoder="
                f"{self.decoder_layers}x{self.decoder_heads}h, d_model={self.d_model}, vocab={self.vocab_size})")

    # ------------------------------------------------------------ inputs
    def _src(self, src) -> np.ndarray:
        """A str through model.tokenizer (with the file's special tokens, e.g. T5's </s>), else the ids."""
        if isinstance(src, str):
            if self.tokenizer is None:
                raise ValueError("text input needs model.tokenizer (no usable tokenizer.json was loaded); pass ids")
            return _ids(self.tokenizer.encode(src, add_special_tokens=True), "source")
        return _ids(src, "source")

    def _special_ids(self) -> set[int]:
        g = self.generation_config
        ids = set(_id_list(g.get("eos_token_id")) + _id_list(g.get("pad_token_id")) + _id_list(g.get("bos_token_id"))
                  + _id_list(g.get("decoder_start_token_id")))
        if self.tokenizer is not None:
            ids |= set(self.tokenizer.special_tokens.values())
        return ids

    def decoder_start_token_id(self, override: int | None = None) -> int:
        """The token the decoder starts from: the argument, else decoder_start_token_id, else bos_token_id (as
        transformers); ValueError when none is defined."""
        if override is not None:
            return _int_arg("decoder_start_token_id", override, 0)
        g = self.generation_config
        for key in ("decoder_start_token_id", "bos_token_id"):
            v = g.get(key)
            if isinstance(v, list):
                v = v[0] if v else None
            if v is not None:
                return int(v)
        raise ValueError("this model's config has no decoder_start_token_id (nor bos_token_id): pass "
                         "decoder_start_token_id= to say which token the decoder starts from")

    # ------------------------------------------------------------ running
    def encode(self, src, attention: str | None = None) -> np.ndarray:
        """The encoder's output (T_in, d_model) float32 for source ids (or a str, with model.tokenizer): what the
        decoder's cross-attention reads (after the encoder's final norm for T5)."""
        return self._m.encode(self._src(src), _attn(attention, self._attention))

    def decoder(self, src=None, *, states: np.ndarray | None = None, num_beams: int = 1,
                capacity: int | None = None, attention: str | None = None) -> Seq2SeqDecoder:
        """A decoding state over a source (encoded here, once) or over given encoder ``states`` (T_in, d_model).
        capacity: decoder tokens per beam it can hold (default: BART's position table, T5: 512)."""
        num_beams = _int_arg("num_beams", num_beams, 1)
        if (src is None) == (states is None):
            raise ValueError("pass exactly one of src and states")
        attn = _attn(attention, self._attention)
        if states is None:
            states = self._m.encode(self._src(src), attn)
        if capacity is None:
            capacity = self.max_positions or 512
        capacity = _int_arg("capacity", capacity, 1)
        return Seq2SeqDecoder(self._m.decoder(states, num_beams, capacity, attn), self, num_beams)

    def logits(self, src, decoder_ids, attention: str | None = None) -> np.ndarray:
        """Teacher-forced decoder logits (T_out, vocab) float32: row t is the next-token distribution after
        decoder_ids[: t + 1] given the source (decoder_ids usually start with decoder_start_token_id)."""
        dec = _ids(decoder_ids, "decoder_ids")
        if dec.size == 0:
            raise ValueError("decoder_ids is empty: pass at least the decoder start token")
        d = self.decoder(src, capacity=len(dec), attention=attention)
        return d.append(dec[None], all_logits=True)[0]

    def cross_attention_weights(self, src, tgt, layer: int) -> np.ndarray:
        """The cross-attention weights of decoder layer ``layer``: (heads, T_out, T_in), row t = how decoder
        position t (after reading tgt[: t + 1]) spreads its attention over the source tokens (the alignment heat
        map). tgt are decoder input ids (starting with the decoder start token). Standard attention."""
        layer = self._layer(layer, self.decoder_layers)
        dec = _ids(tgt, "tgt")
        if dec.size == 0:
            raise ValueError("tgt is empty: pass at least the decoder start token")
        states = self._m.encode(self._src(src), 0)
        d = self._m.decoder(states, 1, len(dec), 0)
        return d.append(dec[None], True, layer)[1]

    def encoder_attention_weights(self, src, layer: int) -> np.ndarray:
        """The encoder self-attention weights of layer ``layer``: (heads, T_in, T_in)."""
        layer = self._layer(layer, self.encoder_layers)
        return self._m.encode(self._src(src), 0, layer)[1]

    @staticmethod
    def _layer(layer, n: int) -> int:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        layer = int(layer) + (n if layer < 0 else 0)
        if not 0 <= layer < n:
            raise ValueError(f"layer out of range: the stack has {n} layers")
        return layer

    def _target(self, target) -> np.ndarray:
        if isinstance(target, str):
            if self.tokenizer is None:
                raise ValueError("a text target needs model.tokenizer; pass ids")
            return _ids(self.tokenizer.encode(target, add_special_tokens=True), "target")
        return _ids(target, "target")

    def log_likelihood(self, src, target, *, decoder_start_token_id: int | None = None,
                       attention: str | None = None) -> np.ndarray:
        """Per-token log-probabilities (T_target,) float64 of ``target`` given ``src`` under teacher forcing: the
        decoder reads [start] + target[:-1] (transformers' labels shifted right) and scores each target token."""
        tgt = self._target(target)
        if tgt.size == 0:
            raise ValueError("the target is empty")
        start = self.decoder_start_token_id(decoder_start_token_id)
        dec = np.concatenate([[start], tgt[:-1]]).astype(np.int64)
        lg = self.logits(src, dec, attention).astype(np.float64)
        mx = lg.max(axis=1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(axis=1))  # log-sum-exp per row, in float64
        return lg[np.arange(len(tgt)), tgt] - lse

    def perplexity(self, src, target, *, decoder_start_token_id: int | None = None,
                   attention: str | None = None) -> float:
        """exp(mean negative log-likelihood) of ``target`` given ``src`` (transformers: exp(model(input_ids=src,
        labels=target).loss))."""
        lp = self.log_likelihood(src, target, decoder_start_token_id=decoder_start_token_id, attention=attention)
        return float(np.exp(-lp.mean()))

    # ------------------------------------------------------------ generation
    def generate(self, src, max_new_tokens: int | None = None, *, num_beams: int | None = None,
                 do_sample: bool | None = None, temperature: float | None = None, top_k: int | None = None,
                 top_p: float | None = None, min_p: float = 0.0, repetition_penalty: float | None = None,
                 no_repeat_ngram_size: int | None = None, length_penalty: float | None = None,
                 early_stopping=None, num_return_sequences: int = 1, min_new_tokens: int = 0,
                 seed: int | None = None, eos_token_id: int | Sequence[int] | None = None,
                 decoder_start_token_id: int | None = None, forced_bos_token_id: int | None = None,
                 forced_eos_token_id: int | Sequence[int] | None = None, return_logprobs: bool = False,
                 attention: str | None = None):
        """Generate a target for ``src`` (ids, or a str encoded with model.tokenizer).

        The source is encoded once; the decoder starts from decoder_start_token_id and stops at eos_token_id or
        after max_new_tokens (default: the generation config's max_length - 1, with max_length 20 when absent, as
        transformers counts the start token).
        Settings left as None come from generation_config.json / config.json (num_beams, length_penalty,
        early_stopping, no_repeat_ngram_size, repetition_penalty, do_sample, temperature, top_k, top_p,
        forced_bos_token_id, forced_eos_token_id), else transformers' defaults. num_beams > 1: beam search
        (deterministic; llmc.beam); do_sample: the sampler chain with ``seed`` (llmc's own generator: reproducible,
        but not torch's random stream). forced_bos_token_id is the first generated token, forced_eos_token_id the
        last one when max_new_tokens is reached; min_new_tokens forbids EOS before that many tokens.

        Returns the generated ids without the decoder start token (with the EOS token when generation ended on
        it), or text (special tokens removed) for a str source; a list when num_return_sequences > 1. With
        return_logprobs: (result, logprobs) for greedy/sampling, (result, score) for beam search."""
        g = self.generation_config

        def pick(v, key, default):  # the argument, else the generation config's value, else transformers' default
            return v if v is not None else (g.get(key) if g.get(key) is not None else default)

        text_mode = isinstance(src, str)
        ids = self._src(src)
        if ids.size == 0:
            raise ValueError("the source is empty: the encoder needs at least one token")
        if max_new_tokens is None:  # transformers: max_length (default 20) counts the decoder start token
            max_new_tokens = max(0, int(g.get("max_length") or 20) - 1)
        max_new_tokens = _int_arg("max_new_tokens", max_new_tokens, 0)
        num_beams = _int_arg("num_beams", pick(num_beams, "num_beams", 1), 1)
        num_return_sequences = _int_arg("num_return_sequences", num_return_sequences, 1)
        min_new_tokens = _int_arg("min_new_tokens", min_new_tokens, 0)
        if g.get("min_length") and min_new_tokens == 0:
            min_new_tokens = max(0, int(g["min_length"]) - 1)  # transformers counts the start token in min_length
        start = self.decoder_start_token_id(decoder_start_token_id)
        eos = _id_list(eos_token_id if eos_token_id is not None else g.get("eos_token_id"))
        forced_bos = pick(forced_bos_token_id, "forced_bos_token_id", None)
        forced_eos = _id_list(pick(forced_eos_token_id, "forced_eos_token_id", None))
        temperature = float(pick(temperature, "temperature", 1.0))
        top_k = _int_arg("top_k", pick(top_k, "top_k", 0), 0)
        top_p = float(pick(top_p, "top_p", 1.0))
        repetition_penalty = float(pick(repetition_penalty, "repetition_penalty", 1.0))
        no_repeat_ngram_size = _int_arg("no_repeat_ngram_size",
                                        pick(no_repeat_ngram_size, "no_repeat_ngram_size", 0), 0)
        length_penalty = float(pick(length_penalty, "length_penalty", 1.0))
        early_stopping = pick(early_stopping, "early_stopping", False)
        if do_sample is None:
            do_sample = g.get("do_sample")
        from .generate import Sampler, _wants_sampling

        sampling = _wants_sampling(do_sample, temperature, top_k, top_p, min_p, seed)
        if self.max_positions and max_new_tokens + 1 > self.max_positions:
            raise ValueError(f"max_new_tokens = {max_new_tokens} (+ the start token) exceeds BART's "
                             f"{self.max_positions} decoder positions")
        attn = _attn(attention, self._attention)
        V = self.vocab_size

        def force(scores: np.ndarray, cur_len: int) -> np.ndarray:
            """transformers' MinLength / ForcedBOS / ForcedEOS processors; cur_len counts the start token."""
            if min_new_tokens and cur_len - 1 < min_new_tokens and eos:
                scores = scores.copy()
                scores[eos] = -np.inf
            if forced_bos is not None and cur_len == 1:
                scores = np.full_like(scores, -np.inf)
                scores[int(forced_bos)] = 0.0
            if forced_eos and cur_len == max_new_tokens:  # the last step: max_length - 1 with max_length = new + 1
                scores = np.full_like(scores, -np.inf)
                scores[forced_eos] = 0.0
            return scores

        def finish(out: list[int]):
            if not text_mode or self.tokenizer is None:
                return out
            special = self._special_ids()
            return self.tokenizer.decode([t for t in out if t not in special])

        if max_new_tokens == 0:
            empty = finish([])
            res = (empty, []) if return_logprobs else empty
            return [res] * num_return_sequences if num_return_sequences > 1 else res
        states = self._m.encode(ids, attn)  # once per call, whatever the number of beams or samples
        if num_beams > 1:
            if sampling:
                raise ValueError("beam search here is deterministic: use do_sample=False with num_beams > 1")
            if num_return_sequences > num_beams:
                raise ValueError(f"num_return_sequences must be in [1, num_beams={num_beams}], got "
                                 f"{num_return_sequences}")
            from .beam import beam_search

            dec = self._m.decoder(states, num_beams, max_new_tokens + 1, attn)

            def step(parents, tokens):
                if parents is None:
                    return dec.append(np.full((num_beams, 1), start, np.int64), False)
                dec.reorder(np.asarray(parents, np.int64))
                return dec.append(np.asarray(tokens, np.int64)[:, None], False)

            chain = None
            if repetition_penalty != 1.0 or no_repeat_ngram_size:
                chain = Sampler(V, repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                                do_sample=False, seed=0)

            def process(lp, hist):
                if chain is not None:
                    lp = chain.process(lp, np.asarray(hist, np.int64))
                return force(lp, len(hist))

            hyps = beam_search(step, [start], num_beams=num_beams, max_new_tokens=max_new_tokens, eos_token_ids=eos,
                               length_penalty=length_penalty, early_stopping=early_stopping,
                               num_return_sequences=num_return_sequences, process=process)
            results = [(finish(h.ids), h.score) if return_logprobs else finish(h.ids) for h in hyps]
            return results if num_return_sequences > 1 else results[0]

        sampler = Sampler(V, temperature=temperature if sampling else 1.0, top_k=top_k, top_p=top_p, min_p=min_p,
                          repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                          do_sample=sampling, seed=seed)
        results = []
        for _ in range(num_return_sequences):
            dec = self._m.decoder(states, 1, max_new_tokens + 1, attn)
            history = [start]
            logits = dec.append(np.array([[start]], np.int64), False)[0]
            out, lps = [], []
            for _ in range(max_new_tokens):
                t, lp = sampler(force(logits, len(history)), np.asarray(history, np.int64))
                t = int(t)
                out.append(t)
                lps.append(float(lp))
                if t in eos:
                    break
                history.append(t)
                if len(out) < max_new_tokens:
                    logits = dec.append(np.array([[t]], np.int64), False)[0]
            res = finish(out)
            results.append((res, lps) if return_logprobs else res)
        return results if num_return_sequences > 1 else results[0]
