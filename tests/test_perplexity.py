"""llmc.perplexity's windowing against Hugging Face's documented sliding-window loop (run with transformers'
own loss) and against a direct implementation of llama.cpp's chunk rule; the model is a random transformers model
behind the small `logits(ids)` interface, so this checks the evaluation logic. Tolerance: 1e-5 relative on ppl."""
import math

import numpy as np
import pytest

import llmc

from conftest import lazy_import

torch = lazy_import("torch")
transformers = lazy_import("transformers")


class TorchLM:
    """The duck-typed model interface llmc.perplexity uses, over a transformers model."""

    def __init__(self, m, ctx):
        self.m, self.context_length, self.tokenizer = m, ctx, None

    def logits(self, ids):
        with torch.no_grad():
            return self.m(torch.tensor(np.asarray(ids))[None]).logits[0].float().numpy()

    def logits_batch(self, seqs):
        return [self.logits(s) for s in seqs]


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=101, n_positions=64, n_embd=32, n_layer=2, n_head=4)
    return TorchLM(transformers.GPT2LMHeadModel(cfg).eval(), 64)


def hf_sliding(model, ids, max_length, stride):
    """Hugging Face docs, "Perplexity of fixed-length models": the published loop, with one correction: a window's
    mean loss is weighted by the number of labels transformers actually scores after its internal shift
    (labels[1:] != -100). The published `num_valid - batch_size` is one short for every window after the first."""
    seq_len = len(ids)
    nll_sum, n_tokens, prev_end_loc = 0.0, 0, 0
    for begin_loc in range(0, seq_len, stride):
        end_loc = min(begin_loc + max_length, seq_len)
        trg_len = end_loc - prev_end_loc
        input_ids = torch.tensor(ids[begin_loc:end_loc])[None]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        num_loss_tokens = (target_ids[:, 1:] != -100).sum().item()
        nll_sum += loss.double().item() * num_loss_tokens
        n_tokens += num_loss_tokens
        prev_end_loc = end_loc
        if end_loc == seq_len:
            break
    return math.exp(nll_sum / n_tokens), n_tokens


@pytest.mark.parametrize("n,ctx,stride", [(200, 64, 32), (200, 64, 64), (65, 64, 1), (10, 64, 16), (300, 48, 17)])
def test_sliding_matches_huggingface_loop(lm, n, ctx, stride):
    ids = np.random.default_rng(n).integers(0, 101, n)
    ref, ref_n = hf_sliding(lm.m, ids, ctx, stride)
    res = llmc.perplexity(lm, ids, context_length=ctx, stride=stride, progress=False)
    assert res.n_tokens == ref_n
    assert len(set(res.positions.tolist())) == res.n_tokens  # no token scored twice
    if stride < ctx:  # overlapping windows: every token but the first is scored
        assert sorted(res.positions.tolist()) == list(range(1, n))
    assert res.ppl == pytest.approx(ref, rel=1e-5)
    assert llmc.perplexity(lm, ids, context_length=ctx, stride=stride, batch_size=3, progress=False).ppl == \
        pytest.approx(ref, rel=1e-5)


def test_chunks_scores_second_half(lm):
    ids = np.random.default_rng(1).integers(0, 101, 150)
    ctx = 64
    nll = []
    for c in range(len(ids) // ctx):  # llama.cpp: second half of each disjoint chunk
        chunk = ids[c * ctx:(c + 1) * ctx]
        with torch.no_grad():
            lp = torch.log_softmax(lm.m(torch.tensor(chunk)[None]).logits[0].double(), -1)
        nll += [-lp[j, chunk[j + 1]].item() for j in range(ctx // 2, ctx - 1)]
    res = llmc.perplexity(lm, ids, context_length=ctx, method="chunks", progress=False)
    assert res.n_tokens == len(nll) == 2 * 31
    assert res.ppl == pytest.approx(math.exp(np.mean(nll)), rel=1e-5)


def test_errors(lm):
    with pytest.raises(ValueError, match="method"):
        llmc.perplexity(lm, [1, 2, 3], method="bogus")
    with pytest.raises(ValueError, match="at least 2 tokens"):
        llmc.perplexity(lm, [1])
    with pytest.raises(ValueError, match="exceeds"):
        llmc.perplexity(lm, [1, 2, 3], context_length=1000)
    with pytest.raises(ValueError, match="stride"):
        llmc.perplexity(lm, [1, 2, 3], context_length=8, stride=9)
    with pytest.raises(ValueError, match="tokenizer"):
        llmc.perplexity(lm, "some text")
    with pytest.raises(TypeError):
        llmc.perplexity(lm, np.array([1.5, 2.5]))
    with pytest.raises(ValueError, match="chunk"):
        llmc.perplexity(lm, np.arange(10), context_length=64, method="chunks")


@pytest.fixture(scope="module")
def llmc_and_hf(tmp_path_factory):
    torch.manual_seed(3)
    cfg = transformers.LlamaConfig(vocab_size=211, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    cfg._attn_implementation = "eager"
    m = transformers.LlamaForCausalLM(cfg).eval()
    d = tmp_path_factory.mktemp("ppl_llama")
    m.save_pretrained(d)
    return llmc.Model.load(d), m


@pytest.mark.parametrize("method,ctx,stride", [("sliding", 64, 16), ("sliding", 48, 48), ("chunks", 64, None)])
def test_llmc_model_matches_direct_torch(llmc_and_hf, method, ctx, stride):
    """Both methods on an llmc.Model equal the same windows scored directly by transformers (1e-4 relative)."""
    lm, m = llmc_and_hf
    ids = np.random.default_rng(7).integers(0, 211, 300)
    res = llmc.perplexity(lm, ids, context_length=ctx, stride=stride, method=method, progress=False)
    # direct: for each window the llmc result reports, run transformers on that window and score the same tokens
    nll = []
    from llmc.perplexity import _windows_chunks, _windows_sliding

    wins = _windows_sliding(300, ctx, stride) if method == "sliding" else _windows_chunks(300, ctx)
    for b, e, first in wins:
        with torch.no_grad():
            lp = torch.log_softmax(m(torch.tensor(ids[b:e])[None]).logits[0].double(), -1)
        nll += [-lp[p - 1 - b, ids[p]].item() for p in range(first, e)]
    assert res.n_tokens == len(nll)
    assert res.ppl == pytest.approx(math.exp(np.mean(nll)), rel=1e-4)
    np.testing.assert_allclose(res.nll, nll, rtol=0, atol=1e-4)


def test_uniform_logits_have_perplexity_vocab_size(llmc_and_hf, tmp_path):
    lm, _ = llmc_and_hf
    uni = llmc.Model.init(lm.config, seed=1)
    sd = uni.state_dict(writable=True)
    head = "lm_head.weight" if "lm_head.weight" in sd else "model.embed_tokens.weight"
    sd[head][...] = 0.0  # every logit 0: a uniform next-token distribution
    ids = np.random.default_rng(1).integers(0, 211, 200)
    for method in ("sliding", "chunks"):
        r = llmc.perplexity(uni, ids, context_length=64, method=method, progress=False)
        assert r.ppl == pytest.approx(211, rel=1e-5)
