"""model.generate against transformers.generate on small random models of every decoder architecture: greedy and
beam search token-identical (10 prompts each); sampling checked step by step against transformers' own warpers
(every sampled token must survive them); streaming equals the non-streamed text, whole characters only."""
import numpy as np
import pytest

import llmc

from conftest import lazy_import
from hf_models import hf_generate, model_pairs

torch = lazy_import("torch")
transformers = lazy_import("transformers")

V = 97
EOS = 5
BASE = dict(vocab_size=V, hidden_size=48, intermediate_size=80, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, eos_token_id=EOS, bos_token_id=1,
            pad_token_id=EOS, initializer_range=0.2)
CONFIGS = {
    "llama": dict(model_type="llama", **BASE),
    "mistral": dict(model_type="mistral", **BASE, sliding_window=6),
    "qwen2": dict(model_type="qwen2", **BASE),
    "qwen3": dict(model_type="qwen3", **BASE, head_dim=16),
    "gpt2": dict(model_type="gpt2", vocab_size=V, n_embd=48, n_layer=2, n_head=4, n_positions=64, bos_token_id=1,
                 eos_token_id=EOS, pad_token_id=EOS, initializer_range=0.2),
}
PROMPTS = [[7, 8, 9], [10], [20, 21, 22, 23], [30, 31], [40, 41, 42, 43, 44, 45], [50, 9], [60, 61, 62], [70],
           [80, 81, 82, 83], [90, 91]]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """arch -> (transformers model, llmc model); EOS made likely enough that some sequences end on it"""
    return model_pairs(tmp_path_factory, CONFIGS, eos=EOS)


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_greedy_matches_transformers(pair, arch):
    m, lm = pair(arch)
    eos_seen = 0
    for p in PROMPTS:
        ref = hf_generate(m, p, EOS, max_new_tokens=20)[0]
        assert lm.generate(p, 20) == ref, p
        assert lm.generate(p, 20, temperature=0) == ref
        eos_seen += EOS in ref
    ref = hf_generate(m, PROMPTS[0], EOS, max_new_tokens=15, repetition_penalty=1.3, no_repeat_ngram_size=2)[0]
    assert lm.generate(PROMPTS[0], 15, repetition_penalty=1.3, no_repeat_ngram_size=2) == ref


@pytest.mark.parametrize("arch", list(CONFIGS))
@pytest.mark.parametrize("nb,lp,es,nret", [(2, 1.0, False, 1), (4, 0.5, True, 3), (4, 2.0, "never", 2)])
def test_beam_search_matches_transformers(pair, arch, nb, lp, es, nret):
    m, lm = pair(arch)
    for p in PROMPTS:
        ref = hf_generate(m, p, EOS, max_new_tokens=12, num_beams=nb, length_penalty=lp, early_stopping=es,
                          num_return_sequences=nret)
        ours = lm.generate(p, 12, num_beams=nb, length_penalty=lp, early_stopping=es, num_return_sequences=nret)
        assert (ours if nret > 1 else [ours]) == ref, p


@pytest.mark.parametrize("kw", [dict(temperature=0.7, top_k=5), dict(top_p=0.6), dict(min_p=0.2, temperature=1.3)])
def test_sampled_tokens_survive_transformers_warpers(pair, kw):
    lp = pytest.importorskip("transformers.generation.logits_process", reason="transformers is not installed")

    m, lm = pair("llama")
    warpers = []
    if "temperature" in kw:
        warpers.append(lp.TemperatureLogitsWarper(kw["temperature"]))
    if "top_k" in kw:
        warpers.append(lp.TopKLogitsWarper(kw["top_k"]))
    if "top_p" in kw:
        warpers.append(lp.TopPLogitsWarper(kw["top_p"]))
    if "min_p" in kw:
        warpers.append(lp.MinPLogitsWarper(kw["min_p"]))
    for seed in range(4):
        prompt = PROMPTS[seed]
        out = lm.generate(prompt, 15, seed=seed, **kw)
        assert out == lm.generate(prompt, 15, seed=seed, **kw)  # a seed reproduces
        seq = list(prompt)
        for t in out:
            with torch.no_grad():
                scores = m(torch.tensor([seq])).logits[:, -1, :]
            for w in warpers:
                scores = w(torch.tensor([seq]), scores)
            assert torch.isfinite(scores[0, t]), (seq, t)
            seq.append(t)


def test_logprobs_and_multiple_sequences(pair):
    m, lm = pair("gpt2")
    ids, lps = lm.generate(PROMPTS[2], 6, return_logprobs=True)
    seq = list(PROMPTS[2])
    for t, l in zip(ids, lps):
        with torch.no_grad():
            ref = torch.log_softmax(m(torch.tensor([seq])).logits[0, -1].double(), -1)[t].item()
        assert l == pytest.approx(ref, abs=1e-4)
        seq.append(t)
    outs = lm.generate(PROMPTS[0], 8, num_return_sequences=3, temperature=1.0, do_sample=True, seed=3)
    assert len(outs) == 3 and len({tuple(o) for o in outs}) > 1


def test_generate_errors(pair):
    _, lm = pair("llama")
    with pytest.raises(ValueError, match="tokenizer"):
        lm.generate("text prompt")
    with pytest.raises(ValueError, match="empty"):
        lm.generate([])
    with pytest.raises(ValueError, match="num_return_sequences"):
        lm.generate([1, 2], 5, num_beams=2, num_return_sequences=3)
    with pytest.raises(ValueError, match="stream"):
        lm.generate([1, 2], 5, num_beams=2, stream=True)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        lm.generate([1, 2, 500], 5)
    with pytest.raises(ValueError, match="exceeds the context window of 64"):
        lm.generate([7] * 60, 10, overflow="error")  # 60 + 10 > 64: fails before any work
    with pytest.warns(llmc.ContextWindowWarning):
        assert len(lm.generate([7] * 60, 10, eos_token_id=[])) == 4  # the default, "stop": what fits
    assert len(lm.generate([7] * 60, 10, overflow="slide", keep_first=1, eos_token_id=[])) == 10


def test_text_stream_and_stop(tmp_path):
    """A checkpoint with a tokenizer.json: text in, text out; streamed pieces are whole characters and join to the
    same text; stop strings cut the text."""
    tokenizers = pytest.importorskip("tokenizers")
    tk = tokenizers.Tokenizer(tokenizers.models.BPE())
    tk.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(["héllo wörld ünïcödé ✓ 你好世界 " * 20, "the quick brown fox jumps"] * 10, trainer)
    n = tk.get_vocab_size()
    torch.manual_seed(1)
    cfg = transformers.LlamaConfig(vocab_size=n, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                   eos_token_id=n + 5)  # an EOS that never comes: generation runs to the limit
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    tk.save(str(tmp_path / "tokenizer.json"))
    lm = llmc.Model.load(tmp_path)
    assert lm.tokenizer is not None
    text = lm.generate("héllo", 40, temperature=1.5, seed=4)
    pieces = list(lm.generate("héllo", 40, temperature=1.5, seed=4, stream=True))
    assert "".join(pieces) == text
    assert all("\ufffd" not in p for p in pieces) or "\ufffd" in text
    ids = lm.generate(tk.encode("héllo").ids, 40, temperature=1.5, seed=4)
    assert tk.decode(ids) == text
    if len(text) > 3:
        stop = text[2:4]
        cut = lm.generate("héllo", 40, temperature=1.5, seed=4, stop=stop)
        assert cut == text[: text.find(stop)]
        assert "".join(lm.generate("héllo", 40, temperature=1.5, seed=4, stop=stop, stream=True)) == cut


def test_threaded_decode_matches_full_forward():
    """A model wide enough that decoding's matrix-vector products are split over threads: every incremental
    step's logits equal the full forward's (1e-4)."""
    m = llmc.Model.init(dict(model_type="llama", vocab_size=3001, hidden_size=256, intermediate_size=512,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=64), seed=0)
    old = llmc.get_num_threads()
    llmc.set_num_threads(3)
    try:
        ids = np.random.default_rng(0).integers(0, 3001, 12)
        full = m.logits(ids)
        s = m.session()
        s.append(ids[:4])
        for i in range(4, 12):
            np.testing.assert_allclose(s.append([ids[i]]), full[i], rtol=0, atol=1e-4)
    finally:
        llmc.set_num_threads(old)


def test_context_window_overflow_policies():
    """Past the window: "stop" (default) warns and returns what fits, token-identical to the start of a sliding
    run; "error" fails before any work; "slide" goes on. The same for streams and beam search."""
    import warnings

    model = llmc.load_default()  # context window 256
    ctx = model.context_length
    prompt = [int(i) for i in (np.arange(ctx - 4) * 37) % model.vocab_size]
    with pytest.warns(llmc.ContextWindowWarning, match=f"context window \\({ctx} tokens: {ctx - 4} of prompt"):
        out = model.generate(prompt, 10, eos_token_id=[])
    assert len(out) == 4
    slid = model.generate(prompt, 10, overflow="slide", eos_token_id=[])
    assert len(slid) == 10 and slid[:4] == out
    with pytest.raises(ValueError, match="max_new_tokens \\(10\\) exceeds the context window of 256"):
        model.generate(prompt, 10, overflow="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exactly filling the window is not an overflow
        assert len(model.generate(prompt, 4, eos_token_id=[])) == 4
        assert len(model.generate(prompt, 4, overflow="error", eos_token_id=[])) == 4
    with pytest.raises(ValueError, match="more than the context window"):
        model.generate(prompt * 2, 3)
    with pytest.warns(llmc.ContextWindowWarning):
        beams = model.generate(prompt, 10, num_beams=2, eos_token_id=[])
    assert len(beams) == 4
    text = "And God said, Let there be light: and there was light. " * 30
    with pytest.warns(llmc.ContextWindowWarning):
        streamed = "".join(model.generate(text[:900], 300, stream=True, eos_token_id=[]))
    with pytest.warns(llmc.ContextWindowWarning):
        assert streamed and streamed == model.generate(text[:900], 300, eos_token_id=[])
    with pytest.raises(ValueError, match="overflow must be"):
        model.generate(prompt, 1, overflow="wrap")


def test_generate_signature_lists_every_keyword():
    """Model.generate spells out its keyword arguments (IDEs, help()) and they are generate()'s, same defaults."""
    import inspect

    from llmc.generate import generate

    mine = inspect.signature(llmc.Model.generate).parameters
    ref = inspect.signature(generate).parameters
    assert not any(p.kind is p.VAR_KEYWORD for p in mine.values())
    assert list(mine)[1:] == list(ref)[1:]
    assert all(mine[k].default == ref[k].default for k in list(ref)[1:])
