"""The sampler chain against transformers' logits processors/warpers (same order, same semantics), and the
random draws against the processed distribution.

Tolerances: processed logits within 1e-5 absolute of transformers' float32 result, and the same set of -inf
(filtered) tokens; sampled frequencies within 0.015 of the probabilities over 40k draws (~5 sigma)."""
import numpy as np
import pytest

import llmc

from conftest import lazy_import

torch = lazy_import("torch")
lp = lazy_import("transformers.generation.logits_process")

rng = np.random.default_rng(5)


def hf_chain(logits, history, *, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0,
             no_repeat_ngram_size=0, do_sample=True):
    """transformers' generate() order: processors, then (when sampling) warpers."""
    ids = torch.tensor([history], dtype=torch.long) if len(history) else torch.zeros((1, 0), dtype=torch.long)
    scores = torch.from_numpy(np.array(logits, np.float32))[None].clone()
    chain = []
    if repetition_penalty != 1.0:
        chain.append(lp.RepetitionPenaltyLogitsProcessor(repetition_penalty))
    if no_repeat_ngram_size:
        chain.append(lp.NoRepeatNGramLogitsProcessor(no_repeat_ngram_size))
    if do_sample and temperature > 0:
        if temperature != 1.0:
            chain.append(lp.TemperatureLogitsWarper(temperature))
        if top_k:
            chain.append(lp.TopKLogitsWarper(top_k))
        if top_p < 1.0:
            chain.append(lp.TopPLogitsWarper(top_p))
        if min_p > 0:
            chain.append(lp.MinPLogitsWarper(min_p))
    for p in chain:
        scores = p(ids, scores)
    return scores[0].numpy()


SETTINGS = [
    dict(temperature=0.7),
    dict(top_k=1), dict(top_k=5), dict(top_k=50, temperature=1.3),
    dict(top_p=0.9), dict(top_p=0.5, temperature=0.8), dict(top_p=0.05),
    dict(min_p=0.05), dict(min_p=0.2, temperature=1.5),
    dict(top_k=40, top_p=0.95, min_p=0.02, temperature=0.9),
    dict(repetition_penalty=1.3), dict(repetition_penalty=0.8, top_k=10),
    dict(no_repeat_ngram_size=2), dict(no_repeat_ngram_size=3, repetition_penalty=1.2),
    dict(no_repeat_ngram_size=1),
    dict(repetition_penalty=1.5, no_repeat_ngram_size=2, do_sample=False),
]


@pytest.mark.parametrize("kw", SETTINGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
@pytest.mark.parametrize("V", [7, 1003])
def test_process_matches_transformers(kw, V):
    for trial in range(5):
        logits = (rng.standard_normal(V) * 3).astype(np.float32)
        # a history with repeats, so the n-gram and penalty rules have something to act on
        history = list(rng.integers(0, min(V, 12), 30)) + [3, 4, 3]
        ours = llmc.process_logits(logits, history=history, **kw)
        ref = hf_chain(logits, history, **kw)
        np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref))
        fin = np.isfinite(ref)
        np.testing.assert_allclose(ours[fin], ref[fin], rtol=0, atol=1e-5)


def test_greedy_is_argmax_with_lowest_index_on_ties():
    x = np.array([1.0, 7.0, 3.0, 7.0], np.float32)
    assert llmc.sample(x, temperature=0) == 1
    assert llmc.sample(x, do_sample=False, temperature=5.0) == 1
    tok, logprob = llmc.sample(x, temperature=0, return_logprobs=True)
    assert logprob == pytest.approx(float(torch.log_softmax(torch.from_numpy(x), -1)[1]), abs=1e-6)


def test_greedy_with_penalties_matches_transformers_argmax():
    for _ in range(20):
        x = rng.standard_normal(50).astype(np.float32)
        hist = list(rng.integers(0, 50, 20))
        ref = hf_chain(x, hist, repetition_penalty=1.4, no_repeat_ngram_size=2, do_sample=False)
        assert llmc.sample(x, history=hist, repetition_penalty=1.4, no_repeat_ngram_size=2, temperature=0) == int(
            np.argmax(ref))


# chi-square critical values at p = 0.001 by degrees of freedom (a correct sampler fails 1 run in 1000)
CHI2_999 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515}


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.5), dict(temperature=2.0), dict(top_k=3), dict(top_p=0.7),
                                dict(min_p=0.3), dict(top_k=4, top_p=0.9, temperature=0.8)])
def test_sampled_frequencies_follow_the_processed_distribution(kw):
    """50,000 draws against the analytically transformed distribution (transformers' warpers + softmax):
    Pearson chi-square over the surviving tokens below the p = 0.001 critical value."""
    logits = np.array([2.0, 1.5, 0.3, -0.2, 1.0, -3.0], np.float32)
    p = torch.softmax(torch.from_numpy(hf_chain(logits, [], **kw)).double(), -1).numpy()
    s = llmc.Sampler(6, seed=123, **kw)
    n = 50000
    toks, logprobs = s(np.tile(logits, (n, 1)))
    counts = np.bincount(toks, minlength=6)
    assert (counts[p == 0] == 0).all()  # filtered tokens are never drawn
    keep = p > 0
    chi2 = float((((counts - n * p) ** 2)[keep] / (n * p[keep])).sum())
    df = int(keep.sum()) - 1
    if df >= 1:
        assert chi2 < CHI2_999[df], (chi2, df, counts, n * p)
    np.testing.assert_allclose(logprobs, np.log(p[toks]), atol=1e-5)


def test_seeds_reproduce_and_differ():
    x = rng.standard_normal((200, 30)).astype(np.float32)
    a = llmc.sample(x, seed=42)
    assert (llmc.sample(x, seed=42) == a).all()
    assert (llmc.sample(x, seed=43) != a).any()
    s = llmc.Sampler(30, seed=42)
    first = [s(x[i])[0] for i in range(200)]
    s.seed(42)
    assert [s(x[i])[0] for i in range(200)] == first == list(a)


@pytest.mark.parametrize("kw,msg", [
    (dict(temperature=-1.0), "temperature"), (dict(top_k=-2), "top_k"), (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"), (dict(min_p=-0.1), "min_p"), (dict(repetition_penalty=0.0), "repetition_penalty"),
    (dict(no_repeat_ngram_size=-1), "no_repeat_ngram_size"), (dict(seed=-5), "seed"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(ValueError, match=msg):
        llmc.sample(np.zeros(5), **kw)


def test_bad_inputs():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llmc.sample(np.zeros(5), history=[1, 9], repetition_penalty=1.2)
    with pytest.raises(ValueError, match="filtered out"):
        llmc.sample(np.full(4, -np.inf))
    with pytest.raises(ValueError, match="shape"):
        llmc.sample(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError):
        llmc.sample(["a", "b"])
    with pytest.raises(TypeError):
        llmc.sample(np.zeros(4), top_k=2.5)
