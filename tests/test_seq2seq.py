"""Encoder-decoder models (T5 v1.0, T5 v1.1 gated with an untied head, BART) against transformers.

Oracles: tiny random transformers models saved to a folder and loaded by llmc; encoder states, decoder logits and
attention weights within 1e-4 (fp32), greedy and beam search token-identical to transformers.generate, T5's bucket
function equal to transformers' for every distance tried.
"""
import json

import numpy as np
import pytest

import llmc
from conftest import lazy_import
from llmc.seq2seq import t5_relative_position_bucket

torch = lazy_import("torch")
transformers = lazy_import("transformers")

TOL = 1e-4
SCALE = {"t5": 4.0, "t5_gated": 1.5, "bart": 1.5}
REL_STD = 3.0
SRC = [5, 17, 9, 33, 41, 8, 60, 12, 25, 3, 77, 50, 14, 29, 2]  # 15 tokens: distances reach T5's log buckets
TGT = [4, 9, 33, 50, 7, 61, 8, 19, 10, 3, 44, 5]


def _build(kind):
    torch.manual_seed({"t5": 1, "t5_gated": 2, "bart": 3}[kind])
    if kind == "t5":  # v1.0: ReLU, tied head (scaled by d_model^-0.5), more decoder than encoder layers
        c = transformers.T5Config(vocab_size=96, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=3,
                                  num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                                  decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
        m = transformers.T5ForConditionalGeneration(c)
    elif kind == "t5_gated":  # v1.1 / flan: gated-GELU, untied lm_head, no output rescale
        c = transformers.T5Config(vocab_size=96, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                                  feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                                  relative_attention_num_buckets=16, relative_attention_max_distance=32,
                                  decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
        m = transformers.T5ForConditionalGeneration(c)
        m.lm_head.weight = torch.nn.Parameter(torch.randn(96, 32) * 0.5)
    else:  # BART: scale_embedding, different encoder/decoder heads and widths, final_logits_bias, forced BOS
        c = transformers.BartConfig(vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2,
                                    encoder_attention_heads=4, decoder_attention_heads=2, encoder_ffn_dim=48,
                                    decoder_ffn_dim=40, max_position_embeddings=40, scale_embedding=True,
                                    tie_word_embeddings=False)
        m = transformers.BartForConditionalGeneration(c)
        m.generation_config.forced_bos_token_id = 0  # (transformers 5 keeps it in the generation config only)
        with torch.no_grad():
            m.final_logits_bias.normal_(0, 0.5)
            m.lm_head.weight.normal_(0, 0.3)
    with torch.no_grad():  # livelier than the default init, so that generation does not just repeat one token
        for name, p in m.named_parameters():
            if "relative_attention_bias" in name:
                p.normal_(0, REL_STD)
            elif p.ndim == 2 and "shared" not in name:
                p.mul_(SCALE[kind])
    m.eval()
    m.set_attn_implementation("eager")
    return m


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for kind in ("t5", "t5_gated", "bart"):
        m = _build(kind)
        d = tmp_path_factory.mktemp(kind)
        m.save_pretrained(d)
        out[kind] = (m, llmc.Model.load(d), d)
    return out


def _hf(m, src, dec):
    with torch.no_grad():
        return m(input_ids=torch.tensor([src]), decoder_input_ids=torch.tensor([dec]), output_attentions=True)


def _dec_ids(kind):
    return [0 if kind != "bart" else 2] + TGT


KINDS = ["t5", "t5_gated", "bart"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_gives_seq2seq_model(models, kind):
    m, ours, _ = models[kind]
    assert isinstance(ours, llmc.Seq2SeqModel)
    assert ours.arch == ("bart" if kind == "bart" else "t5")
    assert ours.info["untied_head"] == (kind != "t5")
    assert ours.info["gated"] == (kind == "t5_gated")


@pytest.mark.parametrize("attention", ["flash", "standard"])
@pytest.mark.parametrize("kind", KINDS)
def test_encoder_and_decoder_match_transformers(models, kind, attention):
    m, ours, _ = models[kind]
    dec = _dec_ids(kind)
    ref = _hf(m, SRC, dec)
    enc = ours.encode(SRC, attention=attention)
    assert enc.shape == (len(SRC), 32)
    np.testing.assert_allclose(enc, ref.encoder_last_hidden_state[0].numpy(), atol=TOL, rtol=0)
    lg = ours.logits(SRC, dec, attention=attention)
    assert lg.shape == (len(dec), 96)
    np.testing.assert_allclose(lg, ref.logits[0].numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_incremental_decoding_equals_full_pass(models, kind):
    m, ours, _ = models[kind]
    dec = _dec_ids(kind)
    full = ours.logits(SRC, dec)
    d = ours.decoder(SRC, capacity=len(dec))
    steps = [d.append([t])[0] for t in dec[:5]]  # one token at a time ...
    steps += list(d.append(dec[5:], all_logits=True)[0])  # ... then a chunk on top of the cache
    assert d.n_tokens == len(dec)
    np.testing.assert_allclose(np.stack(steps), full, atol=TOL, rtol=0)
    np.testing.assert_allclose(np.stack(steps), _hf(m, SRC, dec).logits[0].numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_weights_match_transformers(models, kind):
    m, ours, _ = models[kind]
    dec = _dec_ids(kind)
    ref = _hf(m, SRC, dec)
    for layer in range(ours.decoder_layers):
        w = ours.cross_attention_weights(SRC, dec, layer)
        assert w.shape == (ours.decoder_heads, len(dec), len(SRC))
        np.testing.assert_allclose(w, ref.cross_attentions[layer][0].numpy(), atol=TOL, rtol=0)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    for layer in range(ours.encoder_layers):
        np.testing.assert_allclose(ours.encoder_attention_weights(SRC, layer),
                                   ref.encoder_attentions[layer][0].numpy(), atol=TOL, rtol=0)


def test_t5_buckets_match_transformers():
    T5Attention = pytest.importorskip("transformers.models.t5.modeling_t5").T5Attention

    rel = torch.arange(-700, 700)
    for nb, md in [(32, 128), (8, 20), (16, 32), (64, 256), (6, 9)]:
        for bidirectional in (True, False):
            ref = T5Attention._relative_position_bucket(rel, bidirectional=bidirectional, num_buckets=nb,
                                                        max_distance=md).numpy()
            ours = [t5_relative_position_bucket(int(r), bidirectional, nb, md) for r in rel]
            np.testing.assert_array_equal(ours, ref, err_msg=f"num_buckets={nb} max_distance={md} bi={bidirectional}")


def _hf_generate(m, src, n, **kw):
    if getattr(m.config, "num_decoder_layers", None) not in (None, getattr(m.config, "num_layers", None)):
        kw["use_cache"] = False  # transformers 5 sizes T5's cache by num_layers: asymmetric stacks need no cache
    with torch.no_grad():
        out = m.generate(torch.tensor([src]), max_new_tokens=n, do_sample=False, **kw)
    return [[int(t) for t in row[1:]] for row in out]  # without the decoder start token


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_matches_transformers(models, kind):
    m, ours, _ = models[kind]
    for src in (SRC, SRC[:4], [7]):
        ref = _hf_generate(m, src, 12)[0]
        got = ours.generate(src, max_new_tokens=12)
        assert got == ref
    assert len(set(got)) > 2  # the tiny model does not just repeat one token
    # processors on the decoder history: repetition penalty and no-repeat n-grams, min_new_tokens
    ref = _hf_generate(m, SRC, 10, repetition_penalty=1.5, no_repeat_ngram_size=2, min_new_tokens=4)[0]
    got = ours.generate(SRC, max_new_tokens=10, repetition_penalty=1.5, no_repeat_ngram_size=2, min_new_tokens=4)
    assert got == ref


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("num_beams,length_penalty,early_stopping,nret", [(3, 1.0, False, 1), (4, 0.5, True, 2),
                                                                          (2, 2.0, "never", 2)])
def test_beam_search_matches_transformers(models, kind, num_beams, length_penalty, early_stopping, nret):
    m, ours, _ = models[kind]
    ref = _hf_generate(m, SRC, 10, num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                       num_return_sequences=nret)
    got = ours.generate(SRC, max_new_tokens=10, num_beams=num_beams, length_penalty=length_penalty,
                        early_stopping=early_stopping, num_return_sequences=nret)
    got = got if nret > 1 else [got]
    # transformers pads finished hypotheses to the longest: compare up to each one's EOS
    eos = ours.generation_config["eos_token_id"]
    trim = lambda r: r[: r.index(eos) + 1] if eos in r else r  # noqa: E731
    assert [trim(r) for r in got] == [trim(r) for r in ref]


def test_forced_bos_and_eos_bart(models):
    m, ours, _ = models["bart"]
    out = ours.generate(SRC, max_new_tokens=6)
    assert out[0] == 0  # forced_bos_token_id
    assert out[-1] == 2  # forced_eos_token_id at the length limit (or a real EOS)
    assert ours.generate(SRC, max_new_tokens=6, forced_bos_token_id=5)[0] == 5


@pytest.mark.parametrize("kind", KINDS)
def test_encoder_runs_once_per_generate(models, kind):
    _, ours, _ = models[kind]
    for kw in ({}, {"num_beams": 4}, {"num_beams": 3, "num_return_sequences": 2},
               {"do_sample": True, "seed": 3, "num_return_sequences": 3}):
        before = ours.encoder_runs
        ours.generate(SRC, max_new_tokens=8, **kw)
        assert ours.encoder_runs - before == 1, kw


def test_sampling_is_seeded_and_top_k_1_is_greedy(models):
    _, ours, _ = models["t5"]
    a = ours.generate(SRC, max_new_tokens=10, do_sample=True, seed=7, temperature=1.5)
    assert a == ours.generate(SRC, max_new_tokens=10, do_sample=True, seed=7, temperature=1.5)
    assert ours.generate(SRC, max_new_tokens=10, do_sample=True, top_k=1, seed=1) == ours.generate(SRC, 10)
    out, lps = ours.generate(SRC, max_new_tokens=5, do_sample=True, seed=2, return_logprobs=True)
    assert len(lps) == len(out) and all(lp <= 0 for lp in lps)


@pytest.mark.parametrize("kind", KINDS)
def test_perplexity_matches_transformers(models, kind):
    m, ours, _ = models[kind]
    with torch.no_grad():
        loss = m(input_ids=torch.tensor([SRC]), labels=torch.tensor([TGT])).loss.item()
    assert ours.perplexity(SRC, TGT) == pytest.approx(np.exp(loss), rel=1e-4)
    lp = ours.log_likelihood(SRC, TGT)
    assert lp.shape == (len(TGT),) and lp.mean() == pytest.approx(-loss, abs=1e-4)


# random-weight models from configs alone: the tests below run without torch (CI's torch-free pass)
T5_CFG = {"model_type": "t5", "vocab_size": 96, "d_model": 32, "d_kv": 8, "d_ff": 48, "num_layers": 2,
          "num_heads": 4, "relative_attention_num_buckets": 8, "relative_attention_max_distance": 20,
          "decoder_start_token_id": 0, "eos_token_id": 1}
BART_CFG = {"model_type": "bart", "vocab_size": 96, "d_model": 32, "encoder_layers": 2, "decoder_layers": 2,
            "encoder_attention_heads": 4, "decoder_attention_heads": 2, "encoder_ffn_dim": 48, "decoder_ffn_dim": 40,
            "max_position_embeddings": 40, "decoder_start_token_id": 2, "eos_token_id": 2, "forced_eos_token_id": 2}


def test_init_models_without_torch():
    for cfg in (T5_CFG, BART_CFG):
        m = llmc.Model.init(cfg, seed=1)
        assert isinstance(m, llmc.Seq2SeqModel) and m.arch == cfg["model_type"]
        before = m.encoder_runs
        out = m.generate(SRC, max_new_tokens=6, num_beams=3)
        assert m.encoder_runs - before == 1 and 1 <= len(out) <= 6
        lg = m.logits(SRC, [cfg["decoder_start_token_id"]] + TGT)
        assert lg.shape == (len(TGT) + 1, 96) and np.isfinite(lg).all()
        assert m.encode(SRC).shape == (len(SRC), 32)
    assert np.array_equal(llmc.Model.init(T5_CFG, seed=3).encode(SRC), llmc.Model.init(T5_CFG, seed=3).encode(SRC))


def test_bad_inputs(tmp_path):
    t5, bart = llmc.Model.init(T5_CFG), llmc.Model.init(BART_CFG)
    for model in (t5, bart):
        with pytest.raises(ValueError, match="source is empty"):
            model.encode([])
        with pytest.raises(ValueError, match="source is empty"):
            model.generate([], max_new_tokens=3)
        with pytest.raises(ValueError, match="outside the vocabulary"):
            model.encode([1, 96])
        with pytest.raises(ValueError, match="outside the vocabulary"):
            model.logits(SRC, [0, -1])
        with pytest.raises(ValueError, match="layer out of range"):
            model.cross_attention_weights(SRC, [0, 4], 9)
        with pytest.raises(TypeError):
            model.encode([1.5, 2.0])
    with pytest.raises(ValueError, match="more than BART's 40 positions"):
        bart.encode(list(range(3, 44)))
    with pytest.raises(ValueError, match="40 decoder positions"):
        bart.generate(SRC, max_new_tokens=40)
    with pytest.raises(ValueError, match="decoder capacity exceeded"):
        d = t5.decoder(SRC, capacity=2)
        d.append([0, 4, 5])
    # a config without decoder_start_token_id (nor bos_token_id)
    cfg = {"model_type": "t5", "vocab_size": 50, "d_model": 16, "d_kv": 4, "d_ff": 32, "num_layers": 1,
           "num_heads": 2, "eos_token_id": 1}
    nostart = llmc.Model.init(cfg)
    with pytest.raises(ValueError, match="decoder_start_token_id"):
        nostart.generate([3, 4], max_new_tokens=2)
    assert len(nostart.generate([3, 4], max_new_tokens=2, decoder_start_token_id=0)) == 2
    with pytest.raises(llmc.UnsupportedError, match="feed_forward_proj"):
        llmc.Model.init(dict(cfg, feed_forward_proj="gated-tanh"))
    with pytest.raises(ValueError, match="feed_forward_proj"):
        llmc.Model.init(dict(cfg, feed_forward_proj="double-gated-gelu"))
    with pytest.raises(ValueError, match="d_model"):
        llmc.Model.init({"model_type": "bart", "d_model": 30, "encoder_attention_heads": 4, "vocab_size": 10})


def test_checkpoint_errors(models, tmp_path):
    _, _, folder = models["bart"]
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(folder / "model.safetensors"))
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    del tensors["model.decoder.layers.1.fc2.weight"]
    save_file(tensors, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="missing tensor 'model.decoder.layers.1.fc2.weight'"):
        llmc.Model.load(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["d_model"] = 64
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="has shape"):
        llmc.Model.load(tmp_path)
    with pytest.raises(ValueError, match="whole number of q8_0 blocks"):
        llmc.Model.load(folder, dtype="q8_0")  # d_ffn 40 is not a multiple of 32
    with pytest.raises(ValueError, match="q4_k_m"):
        llmc.Model.load(folder, dtype="q4_k_m")  # llama.cpp's mixed recipes are for decoders


@pytest.mark.parametrize("dtype", ["q8_0", "q4_0", "f16"])
def test_converted_weights(tmp_path, dtype):
    """Model.load(dtype=...) converts every matrix; the oracle is transformers running the same weights after
    llmc's quantize -> dequantize round trip (so only the arithmetic differs, not the weights)."""
    torch.manual_seed(9)
    c = transformers.T5Config(vocab_size=96, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                              feed_forward_proj="gated-gelu", decoder_start_token_id=0, eos_token_id=1)
    m = transformers.T5ForConditionalGeneration(c).eval()
    m.save_pretrained(tmp_path)
    ours = llmc.Model.load(tmp_path, dtype=dtype)
    types = ours.weight_types()
    assert types["shared.weight"] == dtype and types["encoder.final_layer_norm.weight"] == "f32"
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 2 and "relative_attention_bias" not in name:
                w = p.detach().numpy()
                p.copy_(torch.from_numpy(llmc.dequantize(llmc.quantize(w, dtype), dtype, w.shape)))
    dec = [0] + TGT
    ref = _hf(m, SRC, dec)
    np.testing.assert_allclose(ours.encode(SRC), ref.encoder_last_hidden_state[0].numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.logits(SRC, dec), ref.logits[0].numpy(), atol=TOL, rtol=0)
    # one token at a time: block types multiply by activations rounded to Q8 blocks (ggml's integer dot products),
    # so the steps are within that rounding: max |error| / max |logit| < 0.04 (q8_0's bound in test_model_quant)
    d = ours.decoder(SRC, capacity=len(dec))
    steps, want = np.stack([d.append([t])[0] for t in dec]), ref.logits[0].numpy()
    if dtype == "f16":
        np.testing.assert_allclose(steps, want, atol=TOL, rtol=0)
    else:
        assert np.abs(steps - want).max() / np.abs(want).max() < 0.04


@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_beams_decode_like_one_sequence(models, kind):
    """B beams fed the same tokens give B copies of the single-sequence logits, on every SIMD level (2-8 beams
    take llmc_matmul_typed's few-row path, its AVX2 kernel and its portable one); reorder moves caches."""
    _, ours, _ = models[kind]
    dec = _dec_ids(kind)[:6]
    ref = ours.logits(SRC, dec)
    levels = [0] + ([1] if llmc.simd_info()["best"] in ("avx2", "avx512") else [])
    before = {"scalar": 0, "avx2": 1, "avx512": 2}[llmc.simd_info()["active"]]
    try:
        for level in levels:
            llmc._core.set_simd_level(level)
            for B in (2, 3, 5, 8):
                d = ours.decoder(SRC, num_beams=B, capacity=len(dec))
                rows = [d.append(np.full((B, 1), t))[:, None] for t in dec[:3]]
                rows.append(d.append(np.tile(dec[3:], (B, 1)), all_logits=True))
                got = np.concatenate(rows, axis=1)  # (B, T, V)
                for b in range(B):
                    np.testing.assert_allclose(got[b], ref, atol=TOL, rtol=0, err_msg=f"level {level} beams {B}")
    finally:
        llmc._core.set_simd_level(before)
    # reorder: beams fed different tokens, then beam 0 takes beam 1's cache and continues like it
    d = ours.decoder(SRC, num_beams=2, capacity=4)
    d.append([[dec[0]], [dec[0]]])
    d.append([[7], [dec[1]]])
    d.reorder([1, 1])
    out = d.append([[dec[2]], [dec[2]]])
    np.testing.assert_allclose(out[0], ref[2], atol=TOL, rtol=0)
    np.testing.assert_allclose(out[1], ref[2], atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="parent 2 of beam 0"):
        d.reorder([2, 0])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_checkpoint(tmp_path, dtype):
    """F16 / BF16 checkpoints: matrices used as stored; the reference is transformers on the same weights in fp32."""
    _build("t5_gated").to(getattr(torch, dtype)).save_pretrained(tmp_path)
    ref_model = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ours = llmc.Model.load(tmp_path)
    assert set(ours.weight_types().values()) == {"f32", {"float16": "f16", "bfloat16": "bf16"}[dtype]}
    dec = _dec_ids("t5_gated")
    ref = _hf(ref_model, SRC, dec)
    np.testing.assert_allclose(ours.encode(SRC), ref.encoder_last_hidden_state[0].numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(ours.logits(SRC, dec), ref.logits[0].numpy(), atol=TOL, rtol=0)
    d = ours.decoder(SRC, capacity=len(dec))
    steps = np.stack([d.append([t])[0] for t in dec])  # one row at a time: the F16/BF16 matrix-vector kernels
    np.testing.assert_allclose(steps, ref.logits[0].numpy(), atol=TOL, rtol=0)


def test_text_in_text_out_with_a_bart_tokenizer(tmp_path):
    """A str source goes through model.tokenizer (RoBERTa-style byte-level BPE with <s> ... </s>, as BART's) and
    the result comes back as text without special tokens, as transformers' tokenizer + generate + decode give."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator(llmc.data.kjv_lines()[:400], vocab_size=300,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False)
    tok.post_processor = tokenizers.processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    torch.manual_seed(5)
    cfg = transformers.BartConfig(vocab_size=tok.get_vocab_size(), d_model=32, encoder_layers=1, decoder_layers=1,
                                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                  decoder_ffn_dim=32, max_position_embeddings=64, tie_word_embeddings=False)
    m = transformers.BartForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        m.lm_head.weight.normal_(0, 0.5)
    m.save_pretrained(tmp_path)
    tok.save(str(tmp_path / "tokenizer.json"))
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"), bos_token="<s>",
                                                  eos_token="</s>", pad_token="<pad>", unk_token="<unk>")
    ours = llmc.Model.load(tmp_path)
    text = "In the beginning God created the heaven and the earth."
    ids = hf_tok(text).input_ids
    assert ours.tokenizer.encode(text, add_special_tokens=True) == ids
    np.testing.assert_allclose(ours.encode(text), ours.encode(ids))
    with torch.no_grad():
        out = m.generate(torch.tensor([ids]), max_new_tokens=10, do_sample=False, num_beams=2)
    got = ours.generate(text, max_new_tokens=10, num_beams=2)
    assert got == hf_tok.decode(out[0], skip_special_tokens=True)
    assert isinstance(got, str) and len(got) > 3
    assert ours.perplexity(text, "And the earth was without form") > 1
