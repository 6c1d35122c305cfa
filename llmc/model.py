"""Transformer models from Hugging Face checkpoint folders, run in llmc's C core.

    import llmc
    model = llmc.Model.load("path/to/checkpoint")      # config.json + *.safetensors (+ tokenizer.json)
    logits = model.logits([464, 2068, 7586])           # (T, vocab) float32
    hs = model.hidden_states([464, 2068, 7586])        # (n_layers + 1, T, d_model)
    s = model.session()                                # KV-cached decoding
    next_logits = s.append([464, 2068]); s.append([int(next_logits.argmax())])

Supported: gpt2, llama, mistral, qwen2, qwen3 (decoders), bert (encoder, for embeddings) and the mixtures of
experts mixtral, qwen2_moe, qwen3_moe, olmoe (model.routing / model.expert_usage show their routing; docs/moe.md);
t5 and bart folders load as llmc.Seq2SeqModel (encoder-decoder, llmc/seq2seq.py). Weights are typed:
F32/F16/BF16 checkpoint tensors are used as stored (mapped from the file), or converted on load to a dtype recipe,
``Model.load(path, dtype="q8_0")``, with llama.cpp's block formats and its rules for which tensors keep more bits
(docs/quantization.md). Activations are float32.

Python only resolves paths and converts arguments: config.json and the safetensors headers are parsed, validated
and loaded in C (csrc/model.c, csrc/safetensors.c).
"""
from __future__ import annotations

import json
import os
import struct
import warnings
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

from . import _files
from ._native import _core

__all__ = ["Model", "Session"]

_ATTN = {"standard": 0, "flash": 1}
_POOL = {"mean": 0, "cls": 1, "last": 2}
DTYPES = ("f32", "bf16", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q4_k_s", "q4_k_m", "q5_k", "q5_k_s",
          "q5_k_m", "q6_k")
_HF_DTYPES = {"f32": ("F32", "float32"), "bf16": ("BF16", "bfloat16"), "f16": ("F16", "float16")}
_ARCHITECTURES = {
    "gpt2": "GPT2LMHeadModel", "llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "bert": "BertModel",
    "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
    "olmoe": "OlmoeForCausalLM",
}


def _attn(name: str | None, default: str) -> int:
    name = default if name is None else name
    if name not in _ATTN:
        raise ValueError(f'attention must be "flash" or "standard", got {name!r}')
    return _ATTN[name]


def _dtype(dtype) -> str | None:
    if dtype is None:
        return None
    if not isinstance(dtype, str):
        raise TypeError(f"dtype must be a str such as 'q8_0' or None, got {type(dtype).__name__}")
    d = dtype.lower()
    if d not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    return d


def _ids(ids) -> np.ndarray:
    a = np.asarray(ids)
    if a.dtype.kind not in "iu" and not (a.dtype.kind == "f" and a.size == 0):
        raise TypeError(f"token ids must be integers, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"token ids must be a 1-D sequence, got shape {a.shape}")
    return a.astype(np.int64, copy=False)


class Session:
    """A KV-cached decoding state over one model (see Model.session).

    append(ids) runs only the new tokens through the model, reusing the cached keys and values of the earlier ones,
    and returns the logits (vocab,) of the last token. Incremental logits equal a full forward over the sequence.
    """

    def __init__(self, core_session, model: "Model"):
        self._s = core_session
        self.model = model

    def append(self, ids: Sequence[int] | int) -> np.ndarray:
        """Feed one or more tokens; returns the next-token logits (vocab,) after the last of them."""
        if isinstance(ids, (int, np.integer)):
            ids = [int(ids)]
        return self._s.append(_ids(ids))

    @property
    def n_tokens(self) -> int:
        """Tokens now in the cache (at most the window)."""
        return self._s.n_tokens

    @property
    def tokens(self) -> np.ndarray:
        """The tokens now in the cache, oldest first (after sliding: the first keep_first, then the newest)."""
        return self._s.tokens()

    def reset(self) -> None:
        """Forget every token (the cache memory is kept for reuse)."""
        self._s.reset()

    def set_attention(self, attention: Literal["flash", "standard"]) -> None:
        self._s.set_attn(_attn(attention, "flash"))

    def set_interventions(self, interventions) -> None:
        """Apply interventions (llmc.Steer, AblateHeads, AblateNeurons, Patch) in every later append; [] or None
        removes them. Positions are absolute positions in the session, so an intervention on positions 3..5 changes
        exactly those tokens' activations when they are appended (and, through attention, what comes after)."""
        from .hooks import _intervention_hooks

        self._s.set_hooks(_intervention_hooks(self.model, interventions))

    def copy_from(self, other: "Session") -> None:
        """Take over other's cached tokens and keys/values (same model and capacity): how beam search forks beams
        without recomputing them."""
        self._s.copy_from(other._s)


class Model:
    """A transformer in the C core. Create with Model.load(path) or Model.init(config)."""

    def __init__(self, core, config: dict, attention: str = "flash", path: Path | None = None):
        self._m = core
        self._config = dict(config)
        self._attention = attention
        _attn(attention, "flash")
        self.path = path
        self.tokenizer = None
        info = core.config()
        self.arch: str = info["arch"]
        self.n_layers: int = info["n_layers"]
        self.d_model: int = info["d_model"]
        self.n_heads: int = info["n_heads"]
        self.n_kv_heads: int = info["n_kv_heads"]
        self.head_dim: int = info["head_dim"]
        self.vocab_size: int = info["vocab_size"]
        self.context_length: int = info["context_length"]
        self.info = info

    @property
    def config(self) -> dict:
        """The config.json contents (a copy)."""
        return dict(self._config)

    def generate(self, prompt: str | Sequence[int], max_new_tokens: int = 64, *, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, repetition_penalty: float = 1.0,
                 no_repeat_ngram_size: int = 0, do_sample: bool | None = None, num_beams: int = 1,
                 length_penalty: float = 1.0, early_stopping: bool | str = False, num_return_sequences: int = 1,
                 stop: str | Sequence[str] | None = None, seed: int | None = None, stream: bool = False,
                 return_logprobs: bool = False, overflow: Literal["stop", "slide", "error"] = "stop",
                 keep_first: int = 0, eos_token_id: int | Sequence[int] | None = None, interventions=None,
                 batch_size: int | None = None):
        """Continue a prompt (str, encoded with model.tokenizer, or a list of token ids) with KV-cached decoding.

        A list of prompts ([p1, p2, ...], strs or id lists of different lengths) decodes them together: each step
        is one batched call for all running sequences (one matrix product per weight), at most batch_size at once
        (default: all, up to 64), a finished sequence's slot going to the next prompt (continuous batching). Each
        keeps its own stop conditions; the result is a list, one entry per prompt, each what generate(prompt)
        returns (sampling: prompt i uses seed + i). Beam search also runs its beams as one batch (docs/batching.md).

        temperature: 0 = greedy; top_k / top_p / min_p: filters (0 / 1.0 / 0.0 = off); repetition_penalty (1.0 =
        off) and no_repeat_ngram_size (0 = off) act on the prompt and the generated tokens. do_sample: None
        samples when a sampling knob or a seed is given and decodes greedily otherwise. num_beams > 1: beam search
        with length_penalty, early_stopping (False, True or "never") and num_return_sequences, as transformers.
        stop: str or list of str; the text is cut before the first one. seed: the sampler's seed (None: from the
        OS). stream=True: an iterator of text pieces. return_logprobs: also the chosen tokens' log-probabilities
        (the hypothesis score for beam search). eos_token_id: overrides the config's.
        overflow: what happens when prompt + generated tokens would exceed the context window:
        "stop" (default) stops there with a llmc.ContextWindowWarning and returns what was generated; "slide"
        drops the oldest tokens after the first keep_first and continues; "error" raises ValueError before any
        work. interventions: llmc.Steer, AblateHeads, AblateNeurons, Patch applied in C at every step (positions
        count from the prompt's first token). The sampler chain and beam search follow transformers' semantics (see
        llmc.generate, llmc.beam).
        Returns text for a str prompt, ids for an id prompt (without the prompt; with the EOS token when
        generation stopped on it), a list when num_return_sequences > 1."""
        from .generate import generate

        return generate(self, prompt, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                        min_p=min_p, repetition_penalty=repetition_penalty,
                        no_repeat_ngram_size=no_repeat_ngram_size, do_sample=do_sample, num_beams=num_beams,
                        length_penalty=length_penalty, early_stopping=early_stopping,
                        num_return_sequences=num_return_sequences, stop=stop, seed=seed, stream=stream,
                        return_logprobs=return_logprobs, overflow=overflow, keep_first=keep_first,
                        eos_token_id=eos_token_id, interventions=interventions, batch_size=batch_size)

    # ------------------------------------------------------------ creation
    @classmethod
    def load(cls, path: str | os.PathLike, attention: Literal["flash", "standard"] = "flash",
             dtype: str | None = None, progress=None) -> "Model":
        """Load a checkpoint folder: config.json, model.safetensors or the shards listed in
        model.safetensors.index.json, and tokenizer.json when present (attached as model.tokenizer if llmc has a
        tokenizer). A missing or unsupported config field raises an error naming the field and the file.

        dtype=None keeps the weights as the checkpoint stores them (F32, F16 or BF16; those bytes are used straight
        from the mapped file, so the resident memory is about the file size). A dtype ("f32", "bf16", "f16",
        "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k" = "q4_k_m", "q4_k_s", "q5_k" = "q5_k_m", "q5_k_s", "q6_k")
        converts tensor by tensor while loading, never holding the whole model in float32; which tensors keep
        more bits follows llama.cpp's rules (docs/quantization.md). A tensor whose rows fit no block of its type
        raises ValueError naming it, its row length and the block size. progress(done, total) is called after
        each tensor."""
        p = Path(path).expanduser()
        if p.is_file() and p.suffix.lower() == ".gguf":  # llama.cpp's single-file format: llmc/gguf_model.py
            from .gguf_model import load as _load_gguf

            return _load_gguf(cls, p, attention, dtype, progress)
        dt = _dtype(dtype)
        if _seq2seq_folder(p):  # T5 / BART: encoder-decoder models live in llmc/seq2seq.py
            from .seq2seq import Seq2SeqModel

            return Seq2SeqModel.load(p, attention, dt)
        if not p.is_dir():
            if p.exists():
                raise NotADirectoryError(f"{_files.display(p)}: a checkpoint is a folder (config.json + *.safetensors)")
            raise FileNotFoundError(f"{_files.display(p)}: no such checkpoint folder")
        for attempt in range(2):
            # every file is read through one handle on the folder: a save that swaps a new checkpoint in meanwhile
            # cannot give this load the config of one set and the weights of the other (llmc/_files.py)
            with _files.stable_dir(p) as d:
                try:
                    core = _core.model_load(d, dt, progress)
                    # kept verbatim for save(); C parsed and validated it already
                    config = json.loads(_files.read_regular(os.path.join(d, "config.json")))
                    tokenizer = _load_tokenizer(Path(d) / "tokenizer.json")
                    break
                except FileNotFoundError as e:
                    if attempt or not p.is_dir():
                        raise _files.name_in_errors(e, d, p)
                    # else: the old set was deleted under us after a swap; load the new one
                except Exception as e:
                    raise _files.name_in_errors(e, d, p)
        model = cls(core, config, attention, p)
        model.tokenizer = tokenizer
        return model

    @classmethod
    def init(cls, config: dict, seed: int = 0, attention: Literal["flash", "standard"] = "flash") -> "Model":
        """A model with random weights (normal(0, 0.02) matrices and embeddings, norm weights 1, biases 0) for the
        architecture of `config` (a config.json as a dict: model_type and the usual size fields)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        from .seq2seq import Seq2SeqModel, is_seq2seq_config

        if is_seq2seq_config(config):
            return Seq2SeqModel.init(config, seed, attention)
        core = _core.model_init(json.dumps(config), seed)
        return cls(core, config, attention)

    # ------------------------------------------------------------ running
    def logits(self, ids: Sequence[int], attention: str | None = None, interventions=None) -> np.ndarray:
        """Next-token logits at every position: (T, vocab) float32. interventions: llmc.Steer, AblateHeads,
        AblateNeurons, Patch (or a list of them) applied in C during the pass (see llmc.hooks)."""
        if interventions:
            from .hooks import logits_with

            return logits_with(self, ids, interventions, attention)
        return self._m.forward(_ids(ids), None, _attn(attention, self._attention), True, False, False)[0]

    # ------------------------------------------------------------ mixture of experts (llmc/experts.py)
    def routing(self, ids: Sequence[int]):
        """Per MoE layer: llmc.experts.Routing(layer, router_logits (T, E), experts (T, k) int32, weights (T, k)) for
        the token ids, as the forward pass routed them. llmc.UnsupportedError for a dense model."""
        from .experts import routing

        return routing(self, ids)

    def expert_usage(self, ids_or_texts):
        """How often each expert was chosen over a corpus (one or more token-id sequences or texts):
        llmc.experts.ExpertUsage with counts (MoE layers, E) and fractions."""
        from .experts import expert_usage

        return expert_usage(self, ids_or_texts)

    # ------------------------------------------------------------ latent space (llmc/hooks.py)
    def run_with_cache(self, ids, names=None, interventions=None, token_type_ids=None,
                       attention: str | None = None):
        r"""One forward pass that keeps activations by name: returns (logits (T, vocab) or None for bert, cache)
        with cache = {name: float32 array}. names: None (every activation), a regular expression (full match,
        e.g. r"blocks\.\d+\.resid_post"), or a list of names; only those are kept. interventions apply first, so
        the cache shows their effect. Names and shapes: model.activation_names(); the table is in llmc/hooks.py
        and docs/latent.md. ids may be a str (encoded with model.tokenizer)."""
        from .hooks import run_with_cache

        return run_with_cache(self, ids, names, interventions, token_type_ids, attention)

    def activation_names(self, T: int | None = None) -> dict:
        """{name: shape} of every activation run_with_cache can keep, in forward order (T as "T" unless given)."""
        from .hooks import activation_names

        return activation_names(self, T)

    def logit_lens(self, ids, k: int = 5, attention: str | None = None):
        """The logit lens: each layer's residual stream (after the embedding and after each block) read through the
        final norm and the unembedding; top-k tokens and probabilities per layer and position (llmc.hooks.LogitLens).
        The last layer's logits equal model.logits(ids)."""
        from .hooks import logit_lens

        return logit_lens(self, ids, k, attention)

    def direct_logit_attribution(self, ids, token: int, position: int = -1, attention: str | None = None):
        """What the embedding and each block's attention and MLP outputs contribute to the logit of `token` at
        `position` (read through the final norm with its scale frozen; they sum to the logit)."""
        from .hooks import direct_logit_attribution

        return direct_logit_attribution(self, ids, token, position, attention)

    def logits_batch(self, batch: Iterable[Sequence[int]], attention: str | None = None) -> np.ndarray:
        """Logits of several sequences of different lengths: (N, T_max, vocab), zero past each sequence's end.
        Each sequence sees only its own tokens (the padding is masked), so row i equals logits(batch[i])."""
        seqs = [_ids(s) for s in batch]
        if not seqs:
            raise ValueError("logits_batch needs at least one sequence")
        if self.arch == "bert":
            raise _core.UnsupportedError("this model (bert) has no language-model head")
        # packed prefill (csrc/batch.c): all sequences' tokens go through each weight together, attention per
        # sequence; sequence i's rows land at row i * T_max of the padded output
        T = max(len(s) for s in seqs)
        lengths = np.array([len(s) for s in seqs], np.int64)
        rows = np.arange(len(seqs), dtype=np.int64) * T
        out, _ = self._m.forward_batch(np.concatenate(seqs), None, lengths, _attn(attention, self._attention), True,
                                       False, rows, len(seqs) * T)
        return out.reshape(len(seqs), T, self.vocab_size)

    def append_batch(self, sessions: Sequence[Session], ids) -> np.ndarray:
        """Append ids[i] (a token or a sequence of tokens) to sessions[i] for every i in one batched call: every
        weight is read once for all of them (one matrix product per weight), attention runs per session over its
        own cache. Returns the next-token logits (B, vocab), row i equal to sessions[i].append(ids[i]) up to float
        rounding. Sessions of different lengths and positions mix freely; they must be distinct sessions of this
        model without interventions. On error no session changes (see docs/batching.md)."""
        from .batch import append_batch

        return append_batch(self, sessions, ids)

    def hidden_states(self, ids: Sequence[int], token_type_ids=None, attention: str | None = None) -> np.ndarray:
        """(n_layers + 1, T, d_model), as transformers' output_hidden_states reports them: the embedding output,
        then each block's output; for decoders the last entry is after the final norm (the state lm_head reads)."""
        tt = None if token_type_ids is None else _ids(token_type_ids)
        return self._m.forward(_ids(ids), tt, _attn(attention, self._attention), False, True, False)[1]

    def attention_weights(self, ids: Sequence[int], layer: int, token_type_ids=None) -> np.ndarray:
        """The softmax attention weights of one layer, (n_heads, T, T) (row: query, column: key; 0 where masked),
        from the standard attention implementation. For heat maps."""
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        layer = int(layer)
        if layer < 0:
            layer += self.n_layers
        tt = None if token_type_ids is None else _ids(token_type_ids)
        return self._m.attention_weights(_ids(ids), tt, layer)

    def embed(self, texts_or_ids, pooling: Literal["mean", "cls", "last"] = "mean", normalize: bool = True,
              token_type_ids=None, attention: str | None = None) -> np.ndarray:
        """Sentence embeddings (N, d_model) of strings (needs model.tokenizer; special tokens are added as the
        tokenizer file says) or token-id sequences.

        pooling: "mean" over each sequence's tokens (sentence-transformers' default), "cls" (the first token) or
        "last" (the last token, for decoders). The pooled state is the final hidden state (after the final norm for
        decoders). normalize: L2-normalise each row. Sequences of different lengths are padded and masked."""
        if pooling not in _POOL:
            raise ValueError(f'pooling must be "mean", "cls" or "last", got {pooling!r}')
        items = [texts_or_ids] if isinstance(texts_or_ids, str) else list(texts_or_ids)
        if not items:
            raise ValueError("embed needs at least one text or sequence")
        texts = [it for it in items if isinstance(it, str)]
        if texts and self.tokenizer is None:
            raise ValueError("embedding text needs model.tokenizer (no tokenizer.json was loaded); pass ids")
        # texts get the file's special tokens (BERT's [CLS] ... [SEP]), as transformers' tokenizers add them
        encoded = iter(self.tokenizer.encode_batch(texts, add_special_tokens=True) if texts else [])
        seqs = [_ids(next(encoded)) if isinstance(it, str) else _ids(it) for it in items]
        T = max(len(s) for s in seqs)
        ids = np.zeros((len(seqs), max(T, 1)), dtype=np.int64)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = s
        tt = None
        if token_type_ids is not None:
            tt = np.zeros_like(ids)
            for i, t in enumerate(token_type_ids):
                t = _ids(t)
                tt[i, : len(t)] = t
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        return self._m.embed(ids, tt, lengths, _POOL[pooling], bool(normalize), _attn(attention, self._attention))

    def session(self, overflow: Literal["error", "slide"] = "error", keep_first: int = 0,
                capacity: int | None = None, attention: str | None = None, interventions=None) -> Session:
        """A KV-cached decoding state holding up to `capacity` tokens (default: the context length).

        overflow="error": append raises ValueError when the window is full. overflow="slide": the oldest tokens
        after the first `keep_first` are dropped first-in-first-out. RoPE models shift the cached keys by
        re-rotating them (cheap; deeper layers keep what the dropped tokens contributed: an approximation);
        learned-position models (gpt2) re-encode the kept window (exact, costs one forward over the window).
        interventions: see Session.set_interventions."""
        if overflow not in ("error", "slide"):
            raise ValueError(f'overflow must be "error" or "slide", got {overflow!r}')
        cap = 0 if capacity is None else int(capacity)
        if capacity is not None and cap < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        core = self._m.session(cap, 0 if overflow == "error" else 1, int(keep_first), _attn(attention, self._attention))
        s = Session(core, self)
        if interventions:
            s.set_interventions(interventions)
        return s

    def hidden_states_batch(self, batch, attention: str | None = None) -> np.ndarray:
        """hidden_states of several texts (encoded with model.tokenizer, special tokens added as the tokenizer file
        says) or id sequences: (N, n_layers + 1, T_max, d_model), zero past each sequence's end. Each sequence sees
        only its own tokens, so entry i equals hidden_states(batch[i])."""
        items = [batch] if isinstance(batch, str) else list(batch)
        if not items:
            raise ValueError("hidden_states_batch needs at least one text or sequence")
        seqs = [self._encode(it) for it in items]
        out = np.zeros((len(seqs), self.n_layers + 1, max(len(s) for s in seqs), self.d_model), dtype=np.float32)
        for i, s in enumerate(seqs):
            out[i, :, : len(s)] = self.hidden_states(s, attention=attention)
        return out

    def _encode(self, text_or_ids) -> np.ndarray:
        """A str through model.tokenizer (with the file's special tokens), else the ids as int64."""
        if isinstance(text_or_ids, str):
            if self.tokenizer is None:
                raise ValueError("text input needs model.tokenizer (no tokenizer.json was loaded); pass token ids")
            return _ids(self.tokenizer.encode(text_or_ids, add_special_tokens=True))
        return _ids(text_or_ids)

    @property
    def token_embeddings(self) -> np.ndarray:
        """The input token-embedding matrix (vocab_size, d_model) as a read-only float32 view, whatever the
        checkpoint calls it (wte, embed_tokens, word_embeddings). Row i is token i's vector."""
        suffix = {"gpt2": "wte.weight", "bert": "word_embeddings.weight"}.get(self.arch, "embed_tokens.weight")
        return _read_only(self._tensor(suffix))

    @property
    def unembedding(self) -> np.ndarray | None:
        """The output matrix (vocab_size, d_model) that turns the final (normed) hidden state into logits
        (logits = h @ unembedding.T), read-only: lm_head.weight, or the token embeddings when they are tied.
        None for models without a language-model head (bert)."""
        if self.arch == "bert":
            return None
        for name, *_ in self._m.tensors():
            if name == "lm_head.weight":
                return _read_only(self._tensor("lm_head.weight"))
        return self.token_embeddings

    def _tensor(self, suffix: str) -> np.ndarray:
        """A float32 array of the tensor (a view when it is F32, else its dequantized values)."""
        for name, t, ty, shape, transposed in self._m.tensors():
            if name == suffix or name.endswith("." + suffix):
                return t if ty == "f32" else self.state_dict(dequantize=True)[name]
        raise KeyError(f"{self.arch} model has no tensor named *{suffix}")

    # ------------------------------------------------------------ weights and types
    @property
    def dtype(self) -> str:
        """What the weights are: the dtype recipe of the last load(dtype=...) / quantize(), else the type holding
        most of the matrix weights as the checkpoint stores them ("f32", "bf16" or "f16")."""
        recipe = self._m.dtype()
        if recipe:
            return recipe
        size: dict[str, int] = {}
        for _, view, ty, shape, _ in self._m.tensors():
            if len(shape) == 2:
                size[ty] = size.get(ty, 0) + int(np.prod(shape))
        return max(size, key=size.get) if size else "f32"

    def weight_types(self) -> dict[str, str]:
        """{checkpoint tensor name: type name} ("f32", "bf16", "q8_0", "q6_k", ...) of every weight as stored."""
        return {name: ty for name, _, ty, _, _ in self._m.tensors()}

    def weight_bytes(self) -> int:
        """Bytes of all weights as stored (what decoding reads once per token, plus the embedding table)."""
        return sum(view.nbytes for _, view, _, _, _ in self._m.tensors())

    def quantize(self, dtype: str, progress=None) -> "Model":
        """Convert this model's weights in place to a dtype recipe (see load) and return the model. An already
        quantized tensor is dequantized and requantized (its errors add up). Sessions created before keep working
        (their cached keys and values came from the old weights)."""
        d = _dtype(dtype)
        if d is None:
            raise TypeError("quantize needs a dtype such as 'q8_0'")
        self._m.convert(d, progress)
        return self

    def state_dict(self, writable: bool = False, dequantize: bool = False) -> dict[str, np.ndarray]:
        """{checkpoint tensor name: array}: zero-copy views of the model's weights. Tied weights appear once, under
        the embedding's name.

        F32 tensors are float32 views of the checkpoint's shape. The views are read-only by default, so an
        in-place NumPy operation cannot change the model by accident (it raises ValueError: assignment
        destination is read-only). writable=True returns writable views: writing to them changes the model (what
        training and load_state_dict do). Copy (np.array(v)) to get arrays of your own.

        Tensors of any other type (bf16, f16, q8_0, ...: see weight_types()) are read-only uint8 views of their
        bytes as stored, (rows, bytes per row), in ggml's block layout; GPT-2's Conv1D weights are stored
        transposed, (out, in). llmc.dequantize(view, type, (rows, cols)) decodes one. dequantize=True returns
        float32 copies of those in the checkpoint's shape instead (F32 tensors stay views)."""
        out = {}
        for name, view, ty, shape, transposed in self._m.tensors(bool(writable)):
            if ty != "f32" and dequantize:
                stored = (shape[1], shape[0]) if transposed else tuple(shape)
                if len(shape) == 1:
                    stored = (1, shape[0])
                from .quant import dequantize as _deq

                x = _deq(view, ty, stored)
                view = np.ascontiguousarray(x.T) if transposed else x.reshape(shape)
            out[name] = view
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the weights of the same names (shapes must match). strict: every weight must be given
        and no unknown name may appear."""
        self._need_f32("load_state_dict")
        own = self.state_dict(writable=True)
        unknown = sorted(set(state) - set(own))
        missing = sorted(set(own) - set(state))
        if strict and (unknown or missing):
            raise KeyError(f"load_state_dict: unknown names {unknown[:5]}, missing names {missing[:5]}")
        for name, value in state.items():
            if name not in own:
                continue
            v = np.asarray(value, dtype=np.float32)
            if v.shape != own[name].shape:
                raise ValueError(f"load_state_dict: '{name}' has shape {v.shape}, the model's is {own[name].shape}")
            own[name][...] = v

    def loss_and_grads(self, input_ids, target_ids, *, precision: str = "fp32") -> tuple[float, dict[str, np.ndarray]]:
        """The mean next-token cross-entropy of a batch and its gradient with respect to every weight.

        input_ids, target_ids: integer arrays of shape (B, T) (or (T,)); target_ids[b, t] is the token expected
        after input_ids[b, :t + 1] (usually input_ids shifted by one). Returns (loss, grads): grads maps each
        checkpoint tensor name (as in state_dict(); tied weights once) to a float32 array of that weight's shape.
        The weights are not changed. Runs the C trainer (csrc/train.c; gpt2, llama, mistral, qwen2, qwen3), so it
        needs float32 weights; precision='bf16' uses bf16 matmul operands. Same as llmc.loss_and_grads(model, ...)."""
        from .training import loss_and_grads

        return loss_and_grads(self, input_ids, target_ids, precision=precision)

    def _need_f32(self, what: str) -> None:
        bad = sorted({ty for ty in self.weight_types().values() if ty != "f32"})
        if bad:
            raise _core.UnsupportedError(
                f"{what} needs float32 weights; this model's are {', '.join(bad)} (dtype {self.dtype!r}). Load it "
                "with dtype='f32' (or dtype=None from an F32 checkpoint) to train or edit weights.")

    def save(self, path: str | os.PathLike, format: Literal["hf", "gguf"] = "hf", dtype: str | None = None) -> None:
        """Write a checkpoint folder (config.json + model.safetensors) that transformers and Model.load read. Each
        tensor keeps its type when it is F32, BF16 or F16 (safetensors has no block formats): a quantized model
        raises llmc.UnsupportedError (GGUF is the format for those) before anything is written. Atomic: the new
        set is written into a sibling folder, fsynced and swapped in at once, so a save that is killed or runs out
        of disk leaves the old checkpoint loadable (other files in the folder are kept).

        format="gguf": one GGUF v3 file (llama.cpp's format) holding every weight in its type under llama.cpp's
        names, the {arch}.* hyperparameters and the tokenizer (from the GGUF the model came from, or its
        tokenizer.json), so llama.cpp loads it; dtype (a recipe, see load) writes a converted copy, leaving this
        model as it is. See docs/gguf.md."""
        if format == "gguf":
            from .gguf_model import save as _save_gguf

            return _save_gguf(self, path, dtype)
        if format != "hf":
            raise ValueError(f'format must be "hf" or "gguf", got {format!r}')
        if dtype is not None:
            raise ValueError("dtype= is for format='gguf'; quantize the model first to save another float type")
        tensors = self._hf_tensors()
        with _files.atomic_dir(path) as tmp:
            self._write_files(tmp, tensors)

    def _hf_tensors(self) -> dict:
        """name -> (safetensors dtype, shape, array in the checkpoint's layout); UnsupportedError when quantized."""
        tensors = {}
        for name, view, ty, shape, transposed in self._m.tensors():
            if ty not in _HF_DTYPES:
                raise _core.UnsupportedError(
                    f"save: tensor {name!r} is {ty}; a Hugging Face folder (safetensors) holds F32, BF16 and F16 "
                    f"only, so a quantized model (dtype {self.dtype!r}) cannot be saved as one. Save the float "
                    "model, or write GGUF once llmc can (the gguf work).")
            tensors[name] = _hf_bytes(view, ty, tuple(shape), transposed)
        return tensors

    def _write_files(self, folder: Path, tensors: dict | None = None) -> None:
        """config.json and model.safetensors into folder (each fsynced; the caller makes the set atomic)."""
        tensors = self._hf_tensors() if tensors is None else tensors
        config = dict(self._config)
        config.setdefault("model_type", self.arch)
        config.setdefault("architectures", [_ARCHITECTURES[self.arch]])
        config["dtype"] = _HF_DTYPES.get(self.dtype, _HF_DTYPES["f32"])[1]
        config.pop("torch_dtype", None)
        _files.write_chunks(folder / "config.json", [json.dumps(config, indent=2, sort_keys=True).encode()])
        _write_safetensors(folder / "model.safetensors", tensors)

    def __repr__(self) -> str:
        return (f"llmc.Model({self.arch}, layers={self.n_layers}, d_model={self.d_model}, heads={self.n_heads}/"
                f"{self.n_kv_heads}, vocab={self.vocab_size}, context={self.context_length})")


def _read_only(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _hf_bytes(view: np.ndarray, ty: str, shape: tuple, transposed: bool) -> tuple[str, tuple, np.ndarray]:
    """(safetensors dtype, shape, contiguous array in the checkpoint's layout) of one F32/BF16/F16 tensor."""
    if ty == "f32":
        return "F32", shape, np.ascontiguousarray(view, dtype="<f4")
    a = view.view("<u2")  # the raw 16-bit values, (rows, cols) as stored
    if transposed:  # GPT-2 Conv1D weights are stored (out, in); the checkpoint holds (in, out)
        a = a.T
    return _HF_DTYPES[ty][0], shape, np.ascontiguousarray(a).reshape(shape)


def _write_safetensors(path: Path, tensors: dict) -> None:
    """The safetensors format: u64 header length, JSON header, then the tensors back to back. tensors: name ->
    float32 array, or (dtype, shape, array) with array holding the bytes in that dtype."""
    tensors = {n: v if isinstance(v, tuple) else ("F32", v.shape, np.ascontiguousarray(v, dtype="<f4"))
               for n, v in tensors.items()}
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    names = sorted(tensors)
    for n in names:
        dt, shape, arr = tensors[n]
        nbytes = arr.nbytes
        header[n] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # pad so the data starts 8-byte aligned
    def chunks():  # one tensor at a time: the file is never built in memory
        yield struct.pack("<Q", len(h)) + h
        for n in names:
            yield tensors[n][2].tobytes()

    _files.write_chunks(path, chunks())


def _seq2seq_folder(p: Path) -> bool:
    """True when p/config.json names an encoder-decoder model_type (t5, bart); errors are left to the loaders."""
    try:
        from .seq2seq import is_seq2seq_config

        return is_seq2seq_config(json.loads(_files.read_regular(p / "config.json")))
    except (OSError, ValueError):
        return False


def _load_tokenizer(path: Path):
    """llmc.Tokenizer.from_file(tokenizer.json) when the file exists, else None. A tokenizer kind llmc does not
    implement leaves None with a warning: the model itself still works on token ids."""
    if not os.path.lexists(path):
        return None  # (a FIFO or other non-regular file is refused by from_file with an OSError)
    from .tokenizer import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except _core.UnsupportedError as e:
        error = e
    # Files saved for batched inference carry padding/truncation settings (all-MiniLM pads everything to 128):
    # those are batching policy, not tokenization, and llmc pads and masks batches itself, so drop them and retry.
    try:
        spec = json.loads(_files.read_regular(path))
        if isinstance(spec, dict) and (spec.get("padding") is not None or spec.get("truncation") is not None):
            spec["padding"] = spec["truncation"] = None
            return Tokenizer.from_json_bytes(json.dumps(spec).encode(), name=str(path))
    except (ValueError, _core.UnsupportedError) as e:  # incl. JSON errors
        error = e
    warnings.warn(f"model.tokenizer is None: {error}", stacklevel=3)
    return None
