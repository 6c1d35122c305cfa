"""Decoding strategies side by side on the default model, and what each sampler setting keeps of the next-token
distribution.

    python examples/decoding.py ["prompt"]
"""
import sys

import numpy as np

import llmc


def main():
    prompt = sys.argv[1] if len(sys.argv) > 1 else "And the LORD said unto Moses,"
    model = llmc.load_default()
    tok = model.tokenizer
    logits = model.logits(tok.encode(prompt))[-1]
    print(f"prompt: {prompt!r}\n")
    for name, kw in [("temperature 1", {}), ("temperature 0.5", dict(temperature=0.5)), ("top-k 10", dict(top_k=10)),
                     ("top-p 0.9", dict(top_p=0.9)), ("min-p 0.1", dict(min_p=0.1))]:
        p = llmc.softmax(llmc.process_logits(logits, **kw))
        kept = np.flatnonzero(p > 0)
        best = kept[np.argsort(-p[kept])][:5]
        print(f"{name:<16} keeps {len(kept):5d} tokens; top: " +
              ", ".join(f"{tok.decode([int(i)])!r} {p[i]:.2f}" for i in best))
    print()
    for name, kw in [("greedy", {}), ("sampling t=0.8 p=0.95", dict(temperature=0.8, top_p=0.95, seed=0)),
                     ("beam search 4", dict(num_beams=4, no_repeat_ngram_size=3)),
                     ("repetition penalty 1.3", dict(repetition_penalty=1.3))]:
        print(f"{name:<24} {prompt}{model.generate(prompt, 30, **kw)!s}")


if __name__ == "__main__":
    main()
