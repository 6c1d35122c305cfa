"""Batched inference (issue 18, csrc/batch.c, llmc/batch.py): B sessions advanced together with one matrix product per
weight. Oracles: transformers (logits of each sequence alone, generate per prompt) and llmc's unbatched sessions
(logits within 1e-5 in fp32, identical tokens for greedy and beam search)."""
import math
import warnings

import numpy as np
import pytest

import llmc

from conftest import lazy_import
from hf_models import hf_generate, model_pairs

torch = lazy_import("torch")
transformers = lazy_import("transformers")

V = 61
EOS = 5
TINY = dict(model_type="llama", vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
            eos_token_id=EOS)
HF_BASE = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, eos_token_id=EOS,
               bos_token_id=1, pad_token_id=EOS, initializer_range=0.2)
HF_CONFIGS = {
    "llama": dict(model_type="llama", **HF_BASE),
    "mistral": dict(model_type="mistral", **HF_BASE, sliding_window=5),
    "qwen2": dict(model_type="qwen2", **HF_BASE),
    "qwen3": dict(model_type="qwen3", **HF_BASE, head_dim=16),
    "gpt2": dict(model_type="gpt2", vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=1,
                 eos_token_id=EOS, pad_token_id=EOS, initializer_range=0.2),
}
PROMPTS = [[7, 8, 9], [10], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30], [30, 31], [40, 41, 42, 43, 44, 45],
           [50, 9], [12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """arch -> (transformers model, llmc model); EOS made likely enough that some sequences end on it"""
    return model_pairs(tmp_path_factory, HF_CONFIGS, eos=EOS)


def hf_logits(m, ids):
    with torch.no_grad():
        return m(torch.tensor([ids])).logits[0].float().numpy()


# ---------------------------------------------------------------------------------------------------- C core
@pytest.mark.parametrize("arch", list(HF_CONFIGS))
def test_batched_appends_equal_transformers_and_unbatched(pair, arch):
    """Sessions of different lengths: a batched prefill of prompts of different lengths, then batched steps of one
    token each (and one step that appends several tokens to some sessions) against transformers on each whole
    sequence and against unbatched appends."""
    hf, m = pair(arch)
    rng = np.random.default_rng(1)
    prompts = PROMPTS[:5]
    sessions = [m.session() for _ in prompts]
    singles = [m.session() for _ in prompts]
    seqs = [list(p) for p in prompts]
    got = m.append_batch(sessions, prompts)
    want = np.stack([s.append(p) for s, p in zip(singles, prompts)])
    for step in range(6):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        for i, x in enumerate(seqs):
            np.testing.assert_allclose(got[i], hf_logits(hf, x)[-1], atol=1e-4, rtol=0)
        ks = [1 + i % 3 if step == 2 else 1 for i in range(len(seqs))]  # one step appends 1-3 tokens per session
        new = [[int(v) for v in rng.integers(0, V, size=k)] for k in ks]
        for x, t in zip(seqs, new):
            x.extend(t)
        got = m.append_batch(sessions, new)
        want = np.stack([s.append(t) for s, t in zip(singles, new)])
    assert [list(s.tokens) for s in sessions] == seqs


@pytest.mark.parametrize("dtype", ["q8_0", "q4_k", "f16"])
def test_batched_appends_equal_unbatched_for_typed_weights(dtype):
    """Quantized weights: short appends take the integer-dot path, long ones the dequantized tiles, batched or not."""
    cfg = dict(TINY, hidden_size=256, intermediate_size=256, num_attention_heads=4, num_key_value_heads=2)
    m = llmc.Model.init(cfg, seed=2).quantize(dtype)
    rng = np.random.default_rng(2)
    prompts = [list(rng.integers(0, V, size=k)) for k in (3, 12, 1, 9)]
    sessions, singles = [m.session() for _ in prompts], [m.session() for _ in prompts]
    got = m.append_batch(sessions, prompts)
    want = np.stack([s.append(p) for s, p in zip(singles, prompts)])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    for _ in range(3):
        toks = [int(t) for t in rng.integers(0, V, size=len(prompts))]
        got = m.append_batch(sessions, toks)
        want = np.stack([s.append([t]) for s, t in zip(singles, toks)])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_long_prompts_span_passes_and_slide():
    """Prompts longer than one pass (256 rows) continue in the next; overflow="slide" sessions slide per session."""
    m = llmc.Model.init(dict(TINY, max_position_embeddings=400), seed=4)
    rng = np.random.default_rng(3)
    prompts = [list(rng.integers(0, V, size=k)) for k in (300, 5, 180)]
    sessions = [m.session() for _ in prompts]
    got = m.append_batch(sessions, prompts)
    for i, p in enumerate(prompts):
        np.testing.assert_allclose(got[i], m.logits(p)[-1], atol=1e-5, rtol=0)
    gpt = llmc.Model.init(dict(model_type="gpt2", vocab_size=V, n_embd=32, n_layer=2, n_head=4, n_positions=64), seed=1)
    for model in (m, gpt):
        a = [model.session(overflow="slide", keep_first=2, capacity=8) for _ in range(2)]
        b = [model.session(overflow="slide", keep_first=2, capacity=8) for _ in range(2)]
        for step in range(12):
            toks = [[int(rng.integers(0, V))] for _ in a]
            got = model.append_batch(a, toks)
            want = np.stack([s.append(t) for s, t in zip(b, toks)])
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        assert [list(s.tokens) for s in a] == [list(s.tokens) for s in b]


def test_batch_errors_leave_every_session_unchanged():
    m = llmc.Model.init(TINY, seed=1)
    other = llmc.Model.init(TINY, seed=2)
    s = [m.session(capacity=8) for _ in range(3)]
    m.append_batch(s, [[1, 2], [3], [4, 5, 6]])
    before = [list(x.tokens) for x in s]
    with pytest.raises(ValueError, match=r"session 2 of the batch: token id 99"):
        m.append_batch(s, [[1], [2], [99]])
    with pytest.raises(ValueError, match=r"session 1 of the batch: context window full"):
        m.append_batch(s, [[1], [2] * 8, [3]])
    with pytest.raises(ValueError, match="appears twice"):
        m.append_batch([s[0], s[1], s[0]], [[1], [2], [3]])
    with pytest.raises(ValueError, match="another model"):
        m.append_batch([s[0], other.session()], [[1], [2]])
    with pytest.raises(ValueError, match="non-empty"):
        m.append_batch(s, [[1], [], [3]])
    with pytest.raises(TypeError, match="integer"):
        m.append_batch(s, [[1.5], [2], [3]])
    with pytest.raises(ValueError, match="3 sessions and 2"):
        m.append_batch(s, [[1], [2]])
    hooked = m.session(interventions=[llmc.AblateHeads(layer=0, heads=[1])])
    with pytest.raises(llmc.UnsupportedError, match="interventions"):
        m.append_batch([s[0], hooked], [[1], [2]])
    assert [list(x.tokens) for x in s] == before
    assert m.append_batch([], []).shape == (0, V)


# ---------------------------------------------------------------------------------------------------- generate
@pytest.mark.parametrize("arch", ["llama", "gpt2", "mistral"])
def test_generate_list_of_prompts_greedy_matches_transformers(pair, arch):
    hf, m = pair(arch)
    want = [hf_generate(hf, p, EOS, max_new_tokens=12)[0] for p in PROMPTS]
    assert any(w[-1] == EOS and len(w) < 12 for w in want)  # some stop early: their slots refill
    for bs in (None, 3):
        got = m.generate(PROMPTS, max_new_tokens=12, batch_size=bs)
        assert got == want
    assert got == [m.generate(p, max_new_tokens=12) for p in PROMPTS]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_generate_beams_batched_match_transformers(pair, arch):
    hf, m = pair(arch)
    for kw in (dict(num_beams=4, num_return_sequences=2), dict(num_beams=3, length_penalty=0.5, early_stopping=True)):
        want = [hf_generate(hf, p, EOS, max_new_tokens=8, **kw) for p in PROMPTS[:4]]
        got = m.generate(PROMPTS[:4], max_new_tokens=8, batch_size=8, **kw)
        got = [g if isinstance(g, list) and g and isinstance(g[0], list) else [g] for g in got]
        assert got == want
        one = m.generate(PROMPTS[0], max_new_tokens=8, **kw)  # one prompt: its beams are the batch
        assert (one if kw.get("num_return_sequences", 1) > 1 else [one]) == want[0]


def test_generate_list_sampling_stops_and_texts():
    m = llmc.Model.init(TINY, seed=3)
    prompts = [[7, 8, 9], [10], [20, 21, 22, 23]]
    got = m.generate(prompts, max_new_tokens=10, temperature=0.8, top_k=20, seed=11, batch_size=2)
    assert got == [m.generate(p, max_new_tokens=10, temperature=0.8, top_k=20, seed=11 + i)
                   for i, p in enumerate(prompts)]
    lp = m.generate(prompts, max_new_tokens=4, return_logprobs=True)
    assert [len(x[0]) for x in lp] == [len(x[1]) for x in lp]
    # per-prompt stop conditions: a custom EOS ends each sequence on its own
    greedy = [m.generate(p, max_new_tokens=10) for p in prompts]
    eos = greedy[0][3]
    got = m.generate(prompts, max_new_tokens=10, eos_token_id=eos)
    for g, full in zip(got, greedy):
        assert g == (full[: full.index(eos) + 1] if eos in full else full)
    assert m.generate(prompts, max_new_tokens=0) == [[], [], []]
    with pytest.raises(ValueError, match="empty"):  # [] is an empty prompt, not an empty batch
        m.generate([], max_new_tokens=3)
    with pytest.raises(ValueError, match="empty"):
        m.generate([[1, 2], []], max_new_tokens=2)
    with pytest.raises(ValueError, match="stream"):
        m.generate(prompts, max_new_tokens=2, stream=True)
    with pytest.raises(ValueError, match="batch_size"):
        m.generate(prompts, max_new_tokens=2, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.generate([1, 2, 3], max_new_tokens=2, batch_size=2)
    with pytest.raises(ValueError, match="flat list"):
        m.generate([[[1, 2]], [3]], max_new_tokens=2)
    with warnings.catch_warnings():  # the window: each prompt stops at it on its own
        warnings.simplefilter("ignore", llmc.ContextWindowWarning)
        long = [list(range(1, 60)), [3]]
        got = m.generate(long, max_new_tokens=10)
        assert [len(g) for g in got] == [len(m.generate(p, max_new_tokens=10)) for p in long]


def test_nested_list_is_never_one_prompt():
    m = llmc.Model.init(TINY, seed=1)
    got = m.generate([[5, 6, 7], [8, 9, 10]], max_new_tokens=2)
    assert got == [m.generate([5, 6, 7], max_new_tokens=2), m.generate([8, 9, 10], max_new_tokens=2)]
    assert m.generate(np.array([[5, 6], [7, 8]]), max_new_tokens=2) == [m.generate([5, 6], max_new_tokens=2),
                                                                        m.generate([7, 8], max_new_tokens=2)]
    assert len(m.generate([5, 6, 7], max_new_tokens=2)) == 2  # a flat list is one prompt


# ---------------------------------------------------------------------------------------------------- prefill
@pytest.mark.parametrize("arch", ["llama", "gpt2", "qwen2"])
def test_logits_batch_matches_transformers(pair, arch):
    hf, m = pair(arch)
    got = m.logits_batch(PROMPTS)
    T = max(len(p) for p in PROMPTS)
    assert got.shape == (len(PROMPTS), T, V)
    for i, p in enumerate(PROMPTS):
        np.testing.assert_allclose(got[i, : len(p)], hf_logits(hf, p), atol=1e-4, rtol=0)
        np.testing.assert_allclose(got[i, : len(p)], m.logits(p), atol=1e-5, rtol=0)
        assert not got[i, len(p):].any()
    with pytest.raises(ValueError, match="sequence 1 is empty"):
        m.logits_batch([[1, 2], []])
    with pytest.raises(ValueError, match="sequence 0: token id 99"):
        m.logits_batch([[1, 99]])


def test_embed_batched_equals_each_sequence_alone(tmp_path):
    cfg = transformers.BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    hf = transformers.BertModel(cfg).eval()
    hf.save_pretrained(tmp_path)
    m = llmc.Model.load(tmp_path)
    seqs = PROMPTS * 3
    types = [[i % 2] * len(s) for i, s in enumerate(seqs)]
    got = m.embed(seqs, token_type_ids=types, normalize=False)
    for i, s in enumerate(seqs):
        with torch.no_grad():
            h = hf(torch.tensor([s]), token_type_ids=torch.tensor([types[i]])).last_hidden_state[0].numpy()
        np.testing.assert_allclose(got[i], h.mean(0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ["olmoe", "qwen2_moe"])
def test_batched_appends_with_moe_layers(arch):
    """Mixture-of-experts layers route every stacked row on its own: batched equals unbatched."""
    base = dict(vocab_size=V, hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
                max_position_embeddings=64, rms_norm_eps=1e-5, initializer_range=0.2)
    cfg = (transformers.OlmoeConfig(**base, intermediate_size=28, num_hidden_layers=2, num_experts=4,
                                    num_experts_per_tok=3, clip_qkv=2.5) if arch == "olmoe" else
           transformers.Qwen2MoeConfig(**base, intermediate_size=96, moe_intermediate_size=32,
                                       shared_expert_intermediate_size=64, num_hidden_layers=2, num_experts=6,
                                       num_experts_per_tok=3, decoder_sparse_step=2, norm_topk_prob=False))
    m = llmc.Model.init(cfg.to_dict(), seed=5)
    rng = np.random.default_rng(5)
    prompts = [[int(t) for t in rng.integers(0, V, size=k)] for k in (4, 1, 9)]
    sessions, singles = [m.session() for _ in prompts], [m.session() for _ in prompts]
    got = m.append_batch(sessions, prompts)
    want = np.stack([s.append(p) for s, p in zip(singles, prompts)])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    for _ in range(3):
        toks = [int(t) for t in rng.integers(0, V, size=len(prompts))]
        np.testing.assert_allclose(m.append_batch(sessions, toks), np.stack([s.append([t]) for s, t in
                                                                            zip(singles, toks)]), atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------------- perplexity
def test_perplexity_of_texts_is_batched_and_equals_each_text_alone(pair):
    """texts=[...]: each text windowed on its own, windows of all texts batched; every text's NLLs equal the
    single-text run (llmc's unbatched logits) and transformers' loss on the same windows."""
    hf, m = pair("llama")
    rng = np.random.default_rng(7)
    docs = [[int(t) for t in rng.integers(0, V, size=k)] for k in (40, 1, 9, 70, 2)]
    for method, ctx in (("sliding", 16), ("chunks", 8)):
        res = llmc.perplexity(m, texts=docs, context_length=ctx, method=method, progress=False)
        assert res.n_texts == len(docs)
        nll_sum, n = 0.0, 0
        for d, ids in enumerate(docs):
            mine = res.nll[res.text_index == d]
            if len(ids) < 2 or (method == "chunks" and len(ids) < ctx):
                assert len(mine) == 0 and np.isnan(res.text_ppl[d])  # too short: scored nothing
                continue
            alone = llmc.perplexity(m, ids, context_length=ctx, method=method, progress=False)
            np.testing.assert_allclose(mine, alone.nll, atol=1e-5, rtol=0)
            np.testing.assert_array_equal(res.positions[res.text_index == d], alone.positions)
            assert res.text_ppl[d] == pytest.approx(alone.ppl, rel=1e-5)
            # transformers on the same windows: logits of each window, the same scored rows
            for b, e, first in (llmc.perplexity.__globals__["_windows_sliding"](len(ids), ctx, ctx // 2)
                                if method == "sliding" else llmc.perplexity.__globals__["_windows_chunks"](len(ids), ctx)):
                lg = torch.log_softmax(torch.tensor(hf_logits(hf, ids[b:e])).double(), -1).numpy()
                rows = np.arange(first - 1 - b, e - 1 - b)
                nll_sum += -lg[rows, np.asarray(ids)[b + rows + 1]].sum()
                n += len(rows)
                if e == len(ids):
                    break
        assert res.n_tokens == n
        assert res.ppl == pytest.approx(math.exp(nll_sum / n), rel=1e-5)
    with pytest.raises(TypeError, match="not both"):
        llmc.perplexity(m, docs[0], texts=docs)
    with pytest.raises(TypeError, match="list of texts"):
        llmc.perplexity(m, texts="abc")
    with pytest.raises(ValueError, match="empty"):
        llmc.perplexity(m, texts=[])
    with pytest.raises(ValueError, match="at least 2 tokens"):
        llmc.perplexity(m, texts=[[1], [2]])


@pytest.mark.parametrize("level", ["scalar", "avx2"])
@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("B", [2, 5, 13, 17, 70])
def test_streaming_kernel_odd_sizes(kind, B, level):
    """Decode steps of 2..64 rows take the few-row F32 kernels (llmc_matmul_typed's rows_dot; GPT-2's Conv1D
    weights rows_in_out for 2..16 rows; more: BLAS), at each SIMD level, against unbatched appends (BLAS sgemv /
    sgemm): widths that are no multiple of 8 or 24, an odd number of weight rows, two threads."""
    levels = {"scalar": 0, "avx2": 1, "avx512": 2}
    best = llmc.simd_info()["best"]
    if levels[level] > levels[best]:
        pytest.skip(f"CPU lacks {level}")
    before = levels[llmc.simd_info()["active"]]
    llmc._core.set_simd_level(levels[level])
    try:
        _streaming_kernel_odd_sizes(kind, B)
    finally:
        llmc._core.set_simd_level(before)


def _streaming_kernel_odd_sizes(kind, B):
    cfg = (dict(TINY, hidden_size=36, intermediate_size=44, num_attention_heads=2, num_key_value_heads=1)
           if kind == "llama" else dict(model_type="gpt2", vocab_size=V, n_embd=36, n_layer=2, n_head=2, n_positions=64))
    m = llmc.Model.init(cfg, seed=6)
    rng = np.random.default_rng(B)
    n = llmc.get_num_threads()
    llmc.set_num_threads(2)
    try:
        prompts = [[int(t) for t in rng.integers(0, V, size=int(k))] for k in rng.integers(1, 6, size=B)]
        sessions, singles = [m.session() for _ in prompts], [m.session() for _ in prompts]
        m.append_batch(sessions, prompts)
        for s, p in zip(singles, prompts):
            s.append(p)
        for _ in range(2):
            toks = [int(t) for t in rng.integers(0, V, size=B)]
            np.testing.assert_allclose(m.append_batch(sessions, toks),
                                       np.stack([s.append([t]) for s, t in zip(singles, toks)]), atol=1e-5, rtol=0)
    finally:
        llmc.set_num_threads(n)
