"""Typed weights in llmc.Model: Model.load(dtype=...), model.quantize, the llama.cpp type recipes, and every
feature on quantized weights.

Oracles:
- transformers run on llmc's own dequantized weights (state_dict(dequantize=True)): what llmc computes with a
  quantized weight must equal fp32 arithmetic on the values that weight holds. Prefill (many tokens: dequantized
  tiles + sgemm) within 1e-4 like fp32; decode (one token: the activation row quantized to Q8 and integer dot
  products, as ggml does) within a tolerance the activation rounding implies (stated at each test).
- gguf-py (gguf.quants.quantize) for the bytes of a converted tensor, incl. GPT-2's transposed Conv1D weights.
- transformers on the original fp32 weights for the error each type implies (stated per type).
- the held-out KJV perplexity of the default model in fp32 (Q8_0 within 0.5%, Q4_K within 5%).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import lazy_import
from hf_models import checkpoints, hf_model

torch = lazy_import("torch")  # tests that touch torch/transformers skip without them (.[test-light])
transformers = lazy_import("transformers")

import llmc

V = 1003
# sizes that are whole numbers of 256-value super-blocks, so the k-quants run without fallbacks
BASE = dict(vocab_size=V, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)


CONFIGS = {
    "llama": dict(model_type="llama", **BASE, rope_theta=5000.0),
    "mistral": dict(model_type="mistral", **BASE, sliding_window=5),
    "qwen2": dict(model_type="qwen2", **BASE, tie_word_embeddings=False),
    "qwen3": dict(model_type="qwen3", **BASE, head_dim=64, tie_word_embeddings=True),
    "gpt2": dict(model_type="gpt2", vocab_size=V, n_embd=256, n_layer=2, n_head=4, n_positions=64, bos_token_id=0,
                 eos_token_id=0),
    "bert": dict(model_type="bert", vocab_size=V, hidden_size=256, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=512, max_position_embeddings=64, type_vocab_size=2),
}


ARCHS = ["llama", "mistral", "qwen2", "qwen3", "gpt2", "bert"]


def _hf(name, seed=0):
    """every parameter perturbed, so biases, norm weights and all blocks matter"""
    return hf_model(CONFIGS[name], seed=seed, perturb=0.05)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """name -> (transformers model, folder)"""
    return checkpoints(tmp_path_factory, CONFIGS, perturb=0.05)


def _ids(n, seed=1):
    return np.random.default_rng(seed).integers(0, V, n)


def _hf_on(name, state):
    """A fresh transformers model of `name` holding `state` (llmc's checkpoint names and layouts)."""
    hf = _hf(name)
    own = hf.state_dict()
    missing = set(own) - set(state)  # buffers, and lm_head.weight when it is tied to the embedding
    unused = ("position_ids", "masked_bias", "attn.bias", "lm_head.weight")  # + bert's pooler (llmc has none)
    assert not [k for k in missing if not k.endswith(unused) and not k.startswith("pooler.")], missing
    hf.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, strict=False)
    if "lm_head.weight" in missing:
        assert hf.config.tie_word_embeddings
        hf.tie_weights()
    return hf


def _out(hf, ids):
    with torch.no_grad():
        o = hf(torch.tensor(ids)[None])
    return (o.logits if hasattr(o, "logits") else o.last_hidden_state)[0].numpy()


def _llmc_out(model, ids):
    return model.logits(ids) if model.arch != "bert" else model.embed([ids], pooling="cls", normalize=False)


# ------------------------------------------------------------------------------------------------ the oracle
@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("dtype", ["q8_0", "q4_k", "q4_0", "bf16"])
def test_quantized_equals_fp32_math_on_dequantized_weights(ckpt, name, dtype):
    """Prefill on typed weights == transformers (fp32) on the values those weights hold: max abs 1e-4."""
    _, d = ckpt(name)
    model = llmc.Model.load(d, dtype=dtype)
    assert model.dtype == dtype
    hf = _hf_on(name, model.state_dict(dequantize=True))
    ids = _ids(23)
    if name == "bert":
        with torch.no_grad():
            ref = hf(torch.tensor(ids)[None]).last_hidden_state[0].numpy()
        np.testing.assert_allclose(model.hidden_states(ids)[-1], ref, atol=1e-4, rtol=0)
    else:
        np.testing.assert_allclose(model.logits(ids), _out(hf, ids), atol=1e-4, rtol=0)


# error of each type against the original fp32 model, max |logit error| / max |logit| (bert: last hidden state):
# about 1.5x the worst of the six random models (whose perturbed norms make them sensitive; the trained default
# model's perplexity below is the meaningful measure). The order is the point: bits buy accuracy.
TYPE_TOL = {"bf16": 0.012, "f16": 0.002, "q8_0": 0.04, "q6_k": 0.13, "q5_k": 0.21, "q5_1": 0.31, "q5_0": 0.3,
            "q4_k": 0.4, "q4_1": 0.48, "q4_0": 0.5}


@pytest.mark.parametrize("name", ARCHS)
def test_every_type_close_to_fp32(ckpt, name):
    hf, d = ckpt(name)
    ids = _ids(17)
    ref = _out(hf, ids)
    for dtype, tol in TYPE_TOL.items():
        got = llmc.Model.load(d, dtype=dtype).hidden_states(ids)[-1] if name == "bert" else \
            llmc.Model.load(d, dtype=dtype).logits(ids)
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err < tol, f"{name} {dtype}: relative logit error {err:.4f} >= {tol}"


@pytest.mark.parametrize("name", ["llama", "gpt2", "qwen3"])
@pytest.mark.parametrize("dtype", ["q8_0", "q4_k"])
def test_decode_path_matches_oracle(ckpt, name, dtype):
    """One token at a time (the integer-dot decode path: each activation row is rounded to Q8_0 / Q8_K blocks, as
    ggml does) against transformers on the dequantized weights. The activation rounding alone costs about as much
    as Q8_0 weights do (measured 1.6-2.2% of the largest logit for q8_0, 2.0-3.5% for q4_k's Q8_K rows): the bound
    is 3.5% / 5%."""
    _, d = ckpt(name)
    model = llmc.Model.load(d, dtype=dtype)
    ref = _out(_hf_on(name, model.state_dict(dequantize=True)), _ids(12))
    s = model.session()
    steps = np.stack([s.append([int(t)]) for t in _ids(12)])
    assert np.abs(steps - ref).max() <= {"q8_0": 0.035, "q4_k": 0.05}[dtype] * np.abs(ref).max()


def test_gguf_bytes_of_converted_tensors(ckpt):
    """The converted bytes are ggml's: gguf-py quantizes the same (out, in) rows to the same bytes (GPT-2's Conv1D
    weights are transposed first; llama's are rows already)."""
    gq = pytest.importorskip("gguf.quants")
    from gguf import GGMLQuantizationType as Q

    for name, tensor in [("gpt2", "transformer.h.0.attn.c_attn.weight"), ("llama", "model.layers.1.mlp.down_proj.weight")]:
        hf, d = ckpt(name)
        w = hf.state_dict()[tensor].numpy()
        rows = w.T if name == "gpt2" else w  # ggml rows hold `in` values
        model = llmc.Model.load(d, dtype="q8_0")
        got = model.state_dict()[tensor]
        assert got.dtype == np.uint8 and not got.flags.writeable
        np.testing.assert_array_equal(got, gq.quantize(np.ascontiguousarray(rows, np.float32), Q.Q8_0))


# ------------------------------------------------------------------------------------------------ recipes
def test_llama_cpp_recipe_q4_k_m():
    """q4_k (= llama.cpp's Q4_K_M) on an 8-layer llama: attn_v and ffn_down get Q6_K in the layers llama.cpp's
    use_more_bits picks (0, 3, 6, 7 of 8), the untied output Q6_K, everything else Q4_K, norms F32."""
    cfg = dict(model_type="llama", vocab_size=300, hidden_size=256, intermediate_size=256, num_hidden_layers=8,
               num_attention_heads=4, max_position_embeddings=32, tie_word_embeddings=False)
    m = llmc.Model.init(cfg).quantize("q4_k")
    t = m.weight_types()
    more = {0, 3, 6, 7}
    for i in range(8):
        for w in ("self_attn.v_proj", "mlp.down_proj"):
            assert t[f"model.layers.{i}.{w}.weight"] == ("q6_k" if i in more else "q4_k"), (i, w)
        for w in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj"):
            assert t[f"model.layers.{i}.{w}.weight"] == "q4_k"
        assert t[f"model.layers.{i}.input_layernorm.weight"] == "f32"
    assert t["lm_head.weight"] == "q6_k" and t["model.embed_tokens.weight"] == "q4_k"
    # q8_0 keeps the output at q8_0; q4_0 gives it q6_k; tied embeddings take the output's type
    m = llmc.Model.init(cfg).quantize("q8_0")
    assert m.weight_types()["lm_head.weight"] == "q8_0"
    tied = llmc.Model.init({**cfg, "tie_word_embeddings": True}).quantize("q4_0").weight_types()
    assert tied["model.embed_tokens.weight"] == "q6_k" and tied["model.layers.0.mlp.down_proj.weight"] == "q4_0"
    s = llmc.Model.init(cfg).quantize("q4_k_s").weight_types()
    assert s["model.layers.0.self_attn.v_proj.weight"] == "q5_k" and s["model.layers.5.self_attn.v_proj.weight"] == "q4_k"
    assert s["model.layers.0.mlp.down_proj.weight"] == "q5_k" and s["model.layers.1.mlp.down_proj.weight"] == "q4_k"


def test_gpt2_recipe_and_fallbacks():
    cfg = dict(model_type="gpt2", vocab_size=300, n_embd=96, n_layer=2, n_head=4, n_positions=32)
    t = llmc.Model.init(cfg).quantize("q4_k").weight_types()
    # rows of 96: Q4_K (256) does not fit -> llama.cpp's fallback Q5_0 (32); the fused qkv gets Q5_K -> Q5_1;
    # the tied output Q8_0 (96 is not a whole number of the recipe's 256-blocks); positions stay F32
    assert t["transformer.h.0.mlp.c_fc.weight"] == "q5_0"
    assert t["transformer.h.0.attn.c_attn.weight"] == "q5_1"
    assert t["transformer.wte.weight"] == "q8_0" and t["transformer.wpe.weight"] == "f32"
    assert t["transformer.h.0.ln_1.bias"] == "f32"


def test_rows_not_whole_blocks_raise():
    cfg = dict(model_type="llama", vocab_size=100, hidden_size=72, intermediate_size=100, num_hidden_layers=1,
               num_attention_heads=6, max_position_embeddings=16)
    m = llmc.Model.init(cfg)
    with pytest.raises(ValueError, match=r"'model\.embed_tokens\.weight'.*72 values.*q8_0 blocks of 32"):
        m.quantize("q8_0")
    assert m.dtype == "f32"  # untouched
    # llama.cpp gives an output whose rows are not whole 256-blocks Q8_0, and Q8_0 has no fallback
    with pytest.raises(ValueError, match=r"'lm_head\.weight'.*72 values.*q8_0 blocks of 32"):
        m.quantize("q4_k")
    # k-quants fall back as llama.cpp does: Q4_K -> Q5_0 -> F16 when even 32 does not divide the rows
    t = llmc.Model.init({**cfg, "hidden_size": 256, "num_attention_heads": 4}).quantize("q4_k").weight_types()
    assert t["model.layers.0.mlp.down_proj.weight"] == "f16"  # rows of 100
    assert t["model.layers.0.mlp.up_proj.weight"] == "q4_k" and t["lm_head.weight"] == "q6_k"
    with pytest.raises(ValueError, match="unknown dtype 'q3'"):
        llmc.Model.init(cfg).quantize("q3")
    with pytest.raises(TypeError):
        llmc.Model.init(cfg).quantize(8)


# ------------------------------------------------------------------------------------------------ features
def test_features_on_quantized_weights(ckpt):
    _, d = ckpt("llama")
    m = llmc.Model.load(d, dtype="q8_0")
    ids = list(_ids(10))
    full = m.logits(ids)
    s = m.session()
    s.append(ids[:6])
    last = [s.append([t]) for t in ids[6:]]
    # decode (Q8 activations) vs prefill (exact fp32 on dequantized tiles): the activation rounding only
    assert np.abs(np.stack(last) - full[6:]).max() < 0.02 * np.abs(full).max()
    assert m.attention_weights(ids, 1).shape == (4, 10, 10)
    np.testing.assert_allclose(m.attention_weights(ids, 1).sum(-1), 1, atol=1e-5)
    out = m.generate(ids, max_new_tokens=5)
    assert len(out) == 5
    beams = m.generate(ids, max_new_tokens=4, num_beams=3)
    assert len(beams) == 4
    r = llmc.perplexity(m, _ids(40), context_length=16, progress=False)
    assert np.isfinite(r.ppl)
    e = m.embed([ids, ids[:4]], pooling="last")
    assert e.shape == (2, 256)
    _, db = ckpt("bert")
    b = llmc.Model.load(db, dtype="q4_k")
    assert b.embed([ids]).shape == (1, 256)


def test_quantize_in_place_equals_load_with_dtype(ckpt):
    _, d = ckpt("gpt2")
    a = llmc.Model.load(d, dtype="q4_k")
    b = llmc.Model.load(d).quantize("q4_k")
    assert a.weight_types() == b.weight_types()
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    np.testing.assert_array_equal(a.logits(_ids(9)), b.logits(_ids(9)))
    # back to f32: the dequantized values, GPT-2's Conv1D weights in the checkpoint's (in, out) layout again
    c = llmc.Model.load(d, dtype="q4_k").quantize("f32")
    sc, deq = c.state_dict(), a.state_dict(dequantize=True)
    assert c.dtype == "f32" and sc["transformer.h.1.mlp.c_proj.weight"].shape == (1024, 256)
    for k in deq:
        np.testing.assert_array_equal(sc[k], deq[k], err_msg=k)


def test_training_save_and_load_state_dict_refuse_quantized(ckpt, tmp_path):
    _, d = ckpt("llama")
    m = llmc.Model.load(d, dtype="q8_0")
    with pytest.raises(llmc.UnsupportedError, match="training needs float32 weights.*q8_0"):
        llmc.loss_and_grads(m, _ids(8)[:-1], _ids(8)[1:])
    with pytest.raises(llmc.UnsupportedError, match="load_state_dict needs float32"):
        m.load_state_dict({})
    with pytest.raises(llmc.UnsupportedError, match="GGUF"):
        m.save(tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_bf16_save_round_trip(ckpt, tmp_path):
    """A bf16 model saves BF16 tensors (GPT-2's Conv1D back in (in, out)); transformers and llmc read them back."""
    hf, d = ckpt("gpt2")
    m = llmc.Model.load(d, dtype="bf16")
    m.save(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        w = f.get_tensor("transformer.h.0.attn.c_attn.weight")
        assert w.dtype == torch.bfloat16 and tuple(w.shape) == (256, 768)
        np.testing.assert_array_equal(w.float().numpy(), hf.state_dict()["transformer.h.0.attn.c_attn.weight"]
                                      .to(torch.bfloat16).float().numpy())
    back = llmc.Model.load(tmp_path)
    assert back.dtype == "bf16"
    np.testing.assert_array_equal(back.logits(_ids(7)), m.logits(_ids(7)))


def test_greedy_agreement_q8_0_vs_fp32():
    """Greedy continuations of the default model on Q8_0 against fp32: identical 16 tokens in most prompts."""
    base = llmc.load_default()
    q = llmc.Model.load(base.path, dtype="q8_0")
    prompts = ["In the beginning", "And the LORD said unto Moses", "Blessed are the", "For God so loved",
               "The LORD is my shepherd", "And it came to pass", "Thou shalt not", "Let there be light"]
    same = sum(base.generate(p, max_new_tokens=16) == q.generate(p, max_new_tokens=16) for p in prompts)
    print(f"greedy Q8_0 == fp32 on {same}/{len(prompts)} prompts")
    assert same >= len(prompts) * 3 // 4


def test_default_model_heldout_perplexity_per_type(shared):
    """Held-out KJV (last 5% of lines; the first 4096 tokens here, the README has all of them): Q8_0 within 0.5%
    of fp32, Q4_K within 5%, every type within 10%."""
    lines = (shared / "corpora" / "kjv.txt").read_text(encoding="utf-8").splitlines()
    held = "\n".join(lines[int(len(lines) * 0.95):]) + "\n"
    base = llmc.load_default()
    ids = base.tokenizer.encode(held)[:4096]
    ppl = {}
    for dt in ["f32", "q8_0", "q4_k", "q4_0"]:
        m = base if dt == "f32" else llmc.Model.load(base.path, dtype=dt)
        ppl[dt] = llmc.perplexity(m, ids, context_length=256, method="chunks", progress=False).ppl
    print({k: round(v, 4) for k, v in ppl.items()})
    assert abs(ppl["q8_0"] / ppl["f32"] - 1) < 0.005
    assert abs(ppl["q4_k"] / ppl["f32"] - 1) < 0.05
    assert all(abs(v / ppl["f32"] - 1) < 0.10 for v in ppl.values())


def test_bf16_checkpoint_resident_memory_is_file_size(tmp_path):
    """A BF16 checkpoint loaded as stored maps the file: resident memory grows by about the file size (not twice
    it, as converting to fp32 would), and dtype='f32' costs about twice."""
    cfg = transformers.LlamaConfig(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                                   num_attention_heads=8, max_position_embeddings=64, tie_word_embeddings=False)
    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    probe = textwrap.dedent(f"""
        import sys, llmc
        def rss():
            return int(open('/proc/self/statm').read().split()[1]) * 4096
        r0 = rss()
        m = llmc.Model.load({str(tmp_path)!r}, dtype=sys.argv[1] if len(sys.argv) > 1 else None)
        m.logits([1, 2, 3])
        print(rss() - r0, m.dtype)
    """)
    # The child imports the same llmc as this test (the installed one after `pip install .`). It runs outside the
    # repository root: `python -c` puts the working directory first on sys.path, where the unbuilt source tree would
    # shadow the installed package.
    env = {**os.environ, "PYTHONPATH": str(Path(llmc.__file__).resolve().parent.parent)}
    grew = {}
    for arg in ([], ["f32"]):
        out = subprocess.run([sys.executable, "-c", probe, *arg], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        delta, dt = out.stdout.split()
        grew[dt] = int(delta)
    assert 0.8 * size < grew["bf16"] < 1.3 * size, (grew, size)
    assert grew["f32"] > 1.7 * size, (grew, size)


def test_cli_quantize(ckpt, tmp_path, capsys):
    from llmc.cli import main

    _, d = ckpt("llama")
    assert main(["quantize", str(d), str(tmp_path / "bf"), "--type", "bf16"]) == 0
    err = capsys.readouterr().err
    assert "tensors" in err and "#" in err  # the progress bar
    m = llmc.Model.load(tmp_path / "bf")
    assert m.dtype == "bf16" and json.loads((tmp_path / "bf" / "config.json").read_text())["dtype"] == "bfloat16"
    assert main(["quantize", str(d), str(tmp_path / "bf"), "--type", "bf16"]) == 2  # exists, no --force
    assert "exists" in capsys.readouterr().err
    assert main(["quantize", str(d), str(tmp_path / "q"), "--type", "q4_k"]) == 2  # a folder holds no blocks
    assert "GGUF" in capsys.readouterr().err
    assert main(["quantize", str(d), str(tmp_path / "q.gguf"), "--type", "q4_k"]) == 0
    q = llmc.Model.load(tmp_path / "q.gguf")
    assert q.dtype in ("q4_k", "q4_k_m") or "q4_k" in set(q.weight_types().values())
    assert main(["quantize", str(d), str(tmp_path / "x"), "--type", "q3"]) == 2
