"""A tour of llmc.Model: load (or build) a transformer, look inside it, decode with a KV cache, embed sentences.

    python examples/model.py                      # a small random Llama-shaped model, no downloads
    python examples/model.py path/to/checkpoint   # any gpt2 / llama / mistral / qwen2 / qwen3 / bert folder
"""
import sys

import numpy as np

import llmc

if len(sys.argv) > 1:
    model = llmc.Model.load(sys.argv[1])
else:
    model = llmc.Model.init(dict(model_type="llama", vocab_size=1000, hidden_size=128, intermediate_size=344,
                                 num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                                 max_position_embeddings=256), seed=0)
print(model)

tok = model.tokenizer
prompt = "The quick brown fox" if tok is not None else None
ids = tok.encode(prompt) if tok is not None else [1, 17, 42, 99, 7]
print("prompt ids:", ids)

# 1. The latent space: the residual stream after the embedding and after every block.
hs = model.hidden_states(ids)  # (n_layers + 1, T, d_model)
print("hidden_states", hs.shape, "RMS per layer:", np.round(np.sqrt((hs ** 2).mean(axis=(1, 2))), 3))

# 2. Where does the last token look? Layer 0's attention weights, averaged over heads.
w = model.attention_weights(ids, layer=0)  # (heads, T, T), rows sum to 1
print("last token attends to positions:", np.round(w.mean(0)[-1], 3))

if model.arch != "bert":
    # 3. Next-token logits, then greedy decoding with a KV cache: each step runs one token through the model.
    logits = model.logits(ids)  # (T, vocab)
    s = model.session()
    out, gen = s.append(ids), []
    assert np.allclose(out, logits[-1], atol=1e-4)  # incremental == full forward
    for _ in range(10):
        gen.append(int(out.argmax()))
        out = s.append(gen[-1])
    print("greedy continuation:", gen if tok is None else repr(tok.decode(gen)), f"({s.n_tokens} tokens cached)")

    # 4. A window that slides: keep the first token (an attention sink), drop the oldest after it.
    s = model.session(overflow="slide", keep_first=1, capacity=8)
    for t in range(20):
        s.append(t % model.vocab_size)
    print("sliding window holds:", s.tokens)

# 5. Sentence embeddings (mean pooling, L2-normalised) and their cosine similarities.
e = model.embed([ids, ids[:3], ids[::-1]])
print("cosine similarities:\n", np.round(e @ e.T, 3))

# 6. Weights by their checkpoint names, zero-copy and read-only; state_dict(writable=True) to edit the model.
sd = model.state_dict()
name = next(iter(sd))
print(f"{len(sd)} tensors, e.g. {name} {sd[name].shape}")
