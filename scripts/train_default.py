"""Train llmc's default model: a BPE tokenizer and a small Llama-architecture model, both trained by llmc on the
King James Bible (llmc/data/kjv.txt, shipped: llmc.data.kjv_path()), written into llmc/default_model/ (shipped in the package).

    python scripts/train_default.py [--corpus PATH] [--steps N] [--out llmc/default_model]

Data split (fixed rule, llmc.data.kjv_lines("train") / ("heldout")): the last 5% of the corpus's lines (the end of
Revelation and the books before it) are held out for evaluation; the first 95% train the tokenizer and the model.

Sizing (Chinchilla in a data-constrained corner): the training split is ~1.0 M tokens with a 4096-token BPE
vocabulary. Chinchilla's compute-optimal rule (~20 tokens per parameter) would ask for ~50 k parameters for 1 M
unique tokens, too small to write fluent verse; Muennighoff et al. (2023) find that repeating data up to ~4 epochs
is nearly as good as fresh data, so the budget is ~4 epochs (~4 M tokens) and the model is sized so that this fits
the 60-minute budget on a 2-core CPU: 3.2 M parameters (1.6 M in the transformer blocks, 0.8 M tied embeddings),
i.e. ~1.3 training tokens per parameter: deliberately over-parameterised for the data, trading the missing tokens
for repetitions, with weight decay and the held-out split watching for overfitting.
Everything is seeded; llmc's RNG draws the training windows.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import llmc
import llmc.data

ROOT = Path(__file__).resolve().parent.parent

CONFIG = dict(
    model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=4096, hidden_size=192, intermediate_size=512,
    num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
    rms_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"}, tie_word_embeddings=True,
    hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=None, eos_token_id=0, pad_token_id=0,
)
SPECIALS = ["<|endoftext|>"]  # id 4095: the eos / document separator


def split_corpus(path: Path | None) -> tuple[str, str]:
    """(train, held-out) text: the shipped KJV's split, or the same rule applied to another corpus file."""
    if path is None:
        return llmc.data.kjv_text("train"), llmc.data.kjv_text("heldout")
    lines = path.read_text(encoding="utf-8").splitlines()
    cut = llmc.data.kjv_split_index(len(lines))
    return "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut:]) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=None, help="a text file to train on instead of the shipped kjv.txt")
    ap.add_argument("--out", default=str(ROOT / "llmc" / "default_model"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        llmc.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_text, eval_text = split_corpus(Path(args.corpus) if args.corpus else None)

    t0 = time.time()
    tok = llmc.Tokenizer.train(train_text.splitlines(), vocab_size=CONFIG["vocab_size"], pattern="gpt4",
                               special_tokens=SPECIALS, min_frequency=2, progress=False)
    tok.save(out / "tokenizer.json")
    tok = llmc.Tokenizer.from_file(out / "tokenizer.json")
    t_tok = time.time() - t0
    eos = tok.special_tokens[SPECIALS[0]]
    config = dict(CONFIG, vocab_size=tok.n_vocab, eos_token_id=eos, pad_token_id=eos)
    train_ids = np.asarray(tok.encode(train_text), np.int32)
    eval_ids = np.asarray(tok.encode(eval_text), np.int32)
    print(f"tokenizer: {tok.n_vocab} tokens in {t_tok:.1f}s; train {len(train_ids):,} tokens, eval {len(eval_ids):,}")

    model = llmc.Model.init(config, seed=0)
    n_params = sum(v.size for v in model.state_dict().values())
    tokens_seen = args.steps * args.batch * args.seq
    print(f"model: {n_params / 1e6:.2f} M parameters; {tokens_seen / 1e6:.2f} M training tokens = "
          f"{tokens_seen / len(train_ids):.1f} epochs, {tokens_seen / n_params:.2f} tokens/parameter")
    t1 = time.time()

    def report(step, hist):
        if (step + 1) % 25 == 0 or step + 1 == args.steps:
            ev = f" eval {hist.eval_loss[-1]:.3f}" if hist.eval_step and hist.eval_step[-1] == step else ""
            print(f"step {step + 1:5d}/{args.steps} loss {hist.train_loss[-1]:.3f}{ev} lr {hist.lr[-1]:.2e} "
                  f"{hist.tokens_per_s[-1]:.0f} tok/s  {time.time() - t1:.0f}s", flush=True)

    hist = llmc.train(model, train_ids, steps=args.steps, batch_size=args.batch, seq_len=args.seq, lr=args.lr,
                      weight_decay=0.1, warmup=max(1, args.steps // 20), grad_clip=1.0, eval_ids=eval_ids,
                      eval_every=max(1, args.steps // 20), seed=0, progress=False, callback=report)
    t_train = time.time() - t1
    model.save(out)
    ppl = llmc.perplexity(model, eval_ids, context_length=args.seq, stride=args.seq // 2, progress=False)
    summary = dict(
        corpus="kjv.txt", split="first 95% of lines train, last 5% held out", tokenizer_vocab=tok.n_vocab,
        train_tokens=int(len(train_ids)), eval_tokens=int(len(eval_ids)), parameters=int(n_params),
        steps=args.steps, batch=args.batch, seq_len=args.seq, lr=args.lr, tokens_seen=tokens_seen,
        epochs=tokens_seen / len(train_ids), tokenizer_seconds=t_tok, train_seconds=t_train,
        heldout_ppl=ppl.ppl, heldout_method=f"sliding, context {args.seq}, stride {args.seq // 2}",
        history=dict(step=hist.step, train_loss=hist.train_loss, eval_step=hist.eval_step, eval_loss=hist.eval_loss,
                     lr=hist.lr, tokens_per_s=hist.tokens_per_s),
    )
    (out / "training.json").write_text(json.dumps(summary, indent=1))
    print(f"held-out perplexity {ppl.ppl:.2f} over {ppl.n_tokens:,} tokens; trained in {t_train / 60:.1f} min")


if __name__ == "__main__":
    main()
