"""Exercise the C core under valgrind's memcheck to find reads of uninitialised memory (run once by hand; too slow
for CI). Every llmc entry point runs at least once on small inputs: ops under each SIMD level, attention, sampling,
model load/forward/session/generate for each architecture, training steps, tokenizer train/encode/decode, config
and file errors.

    PYTHONMALLOC=malloc valgrind --leak-check=no --error-exitcode=0 --suppressions=scripts/valgrind-python.supp \
        python scripts/valgrind_check.py 2>&1 | tee valgrind.log

(run from the repository root after an in-place build; errors whose stack has no frame in llmc's _core are
CPython's and are suppressed or ignored.)"""
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import numpy as np  # noqa: E402

import llmc  # noqa: E402
from llmc import _core  # noqa: E402

llmc.set_num_threads(1)
rng = np.random.default_rng(0)
x = rng.normal(size=(6, 37)).astype(np.float32)
w = rng.normal(size=37).astype(np.float32)
best = {"scalar": 0, "avx2": 1, "avx512": 2}[llmc.simd_info()["best"]]
for level in range(best + 1):
    _core.set_simd_level(level)
    for f in (llmc.softmax, llmc.log_softmax, llmc.hardmax, llmc.gelu, llmc.silu):
        f(x)
    llmc.softmax(x, axis=0)
    llmc.layer_norm(x, w, w)
    llmc.rms_norm(x, w)
    llmc.cross_entropy(x, np.arange(6))
    q = rng.normal(size=(1, 4, 9, 8)).astype(np.float32)
    kv = rng.normal(size=(1, 2, 9, 8)).astype(np.float32)
    for impl in ("standard", "flash"):
        llmc.attention(q, kv, kv, causal=True, impl=impl)
        llmc.attention(q, kv, kv, causal=False, impl=impl)
    llmc.sample(x[0], temperature=0.8, top_k=5, top_p=0.9, min_p=0.01, seed=1, history=[1, 2, 3],
                repetition_penalty=1.2, no_repeat_ngram_size=2)
_core.set_simd_level(best)
llmc.apply_rope(rng.normal(size=(2, 5, 8)), np.arange(5))
llmc.matmul(x, x.T)
llmc.embedding(x, [0, 5])
llmc.sinusoidal_positions(7, 6)

text = "In the beginning God created the heaven and the earth. 12 ünï 中文\n" * 30
tok = llmc.Tokenizer.train(text, 300, special_tokens=["<|endoftext|>"], progress=False)
ids = tok.encode(text + "<|endoftext|>")
tok.decode(ids)
tok.encode_batch([text, text[::-1]])
d = Path(tempfile.mkdtemp())
tok.save(d / "tok.json")
tok.save(d / "tok.tiktoken")
llmc.Tokenizer.from_file(d / "tok.json").encode(text)
llmc.Tokenizer.from_tiktoken(d / "tok.tiktoken", pattern="cl100k").encode(text)

CFGS = [
    dict(model_type="llama", vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64),
    dict(model_type="gpt2", vocab_size=300, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    dict(model_type="qwen3", vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64),
    dict(model_type="mistral", vocab_size=300, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
         num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=64, sliding_window=4),
    dict(model_type="bert", vocab_size=300, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
         intermediate_size=48, max_position_embeddings=64),
]
for cfg in CFGS:
    m = llmc.Model.init(cfg, seed=1)
    m.save(d / cfg["model_type"])
    m = llmc.Model.load(d / cfg["model_type"])
    if cfg["model_type"] == "bert":
        m.hidden_states([1, 2, 3])
        m.embed([[1, 2, 3], [4, 5]])
        continue
    m.logits(ids[:20])
    m.attention_weights(ids[:10], layer=0)
    s = m.session()
    s.append(ids[:5])
    s.append([7])
    m.generate(ids[:4], 6, temperature=0.9, top_k=10, seed=0)
    m.generate(ids[:4], 4, num_beams=2)
    llmc.perplexity(m, ids[:40], context_length=16, stride=8, progress=False)
    if cfg["model_type"] in ("llama", "gpt2"):
        llmc.train(m, np.array(ids * 3), steps=2, batch_size=2, seq_len=8, progress=False)

for bad in [dict(CFGS[0], rope_theta=1e-300), dict(CFGS[0], hidden_size=3), dict(CFGS[0], rms_norm_eps=-1)]:
    (d / "bad").mkdir(exist_ok=True)
    (d / "bad" / "config.json").write_text(json.dumps(bad))
    try:
        llmc.Model.load(d / "bad")
    except ValueError:
        pass
for junk in [b"", b"{", b'{"a": [1, 2', b"\xff\xfe", b'{"model": {"type": "BPE", "vocab": {"a": 100000000}}}']:
    try:
        llmc.Tokenizer.from_json_bytes(junk)
    except (ValueError, llmc.UnsupportedError):
        pass
print("valgrind_check: done")
