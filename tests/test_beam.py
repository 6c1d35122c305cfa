"""Beam search (llmc/beam.py) token-identical to transformers' generate(num_beams=...) on small random models.

The model side of the search is a transformers model recomputing every beam from scratch, so this test checks the
search itself (scoring, length penalty, early stopping, EOS handling, returned sequences); the KV-cached llmc
sessions are tested with it in tests/test_generate.py."""
import numpy as np
import pytest

import llmc
from llmc.beam import beam_search

from conftest import lazy_import

torch = lazy_import("torch")
transformers = lazy_import("transformers")

EOS = 3


def tiny_model(kind):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=40, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                      initializer_range=0.3, eos_token_id=EOS, bos_token_id=EOS)
        m = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                       initializer_range=0.3, eos_token_id=EOS, bos_token_id=1, pad_token_id=0)
        m = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():  # make EOS likely enough that beams finish on it (random weights rarely pick it)
        m.lm_head.weight[EOS] *= 2.5
    return m.eval()


def recompute_step(model, prompt, num_beams):
    """A step() for beam_search that reruns the model on every beam's whole sequence."""
    seqs = [list(prompt) for _ in range(num_beams)]

    def step(parents, tokens):
        nonlocal seqs
        if parents is not None:
            seqs = [seqs[p] + [t] for p, t in zip(parents, tokens)]
        with torch.no_grad():
            out = model(torch.tensor(seqs)).logits[:, -1, :]
        return out.float().numpy()

    return step


def hf_beams(model, prompt, **kw):
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), do_sample=False, pad_token_id=EOS, eos_token_id=EOS, **kw)
    res = []
    for row in out[:, len(prompt):].tolist():
        if EOS in row:
            row = row[: row.index(EOS) + 1]
        res.append(row)
    return res


PROMPTS = [[5, 9, 11], [7], [20, 21, 22, 23, 24], [1, 2], [30, 8, 8, 8], [12, 13], [39, 0, 6], [4, 4], [17], [25, 26]]


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
@pytest.mark.parametrize("num_beams,length_penalty,early_stopping,nret", [
    (2, 1.0, False, 1), (4, 1.0, False, 3), (4, 0.5, True, 2), (4, 2.0, "never", 3), (2, 2.0, False, 2),
    (4, 0.5, "never", 1), (4, 1.0, True, 4),
])
def test_beam_search_matches_transformers(kind, num_beams, length_penalty, early_stopping, nret):
    model = tiny_model(kind)
    kw = dict(num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
              num_return_sequences=nret, max_new_tokens=12)
    n_eos_hits = 0
    for prompt in PROMPTS:
        ref = hf_beams(model, prompt, **kw)
        hyps = beam_search(recompute_step(model, prompt, num_beams), prompt, eos_token_ids=[EOS], **kw)
        assert [h.ids for h in hyps] == ref, f"prompt {prompt}"
        n_eos_hits += sum(h.finished for h in hyps)
    assert n_eos_hits > 0  # the EOS path was exercised


def test_beam_search_with_processors_matches_transformers():
    model = tiny_model("llama")
    s = llmc.Sampler(40, repetition_penalty=1.5, no_repeat_ngram_size=2, do_sample=False)
    for prompt in PROMPTS[:5]:
        ref = hf_beams(model, prompt, num_beams=3, max_new_tokens=10, repetition_penalty=1.5, no_repeat_ngram_size=2)
        hyps = beam_search(recompute_step(model, prompt, 3), prompt, num_beams=3, max_new_tokens=10,
                           eos_token_ids=[EOS], process=lambda lp, hist: s.process(lp, hist))
        assert [h.ids for h in hyps] == ref


def test_beam_search_argument_errors():
    step = lambda p, t: np.zeros((2, 5), np.float32)  # noqa: E731
    with pytest.raises(ValueError, match="num_return_sequences"):
        beam_search(step, [1], num_beams=2, max_new_tokens=3, num_return_sequences=3)
    with pytest.raises(ValueError, match="early_stopping"):
        beam_search(step, [1], num_beams=2, max_new_tokens=3, early_stopping="sometimes")
    with pytest.raises(ValueError, match="shape"):
        beam_search(lambda p, t: np.zeros((3, 5)), [1], num_beams=2, max_new_tokens=3)
