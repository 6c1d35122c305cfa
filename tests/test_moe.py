"""Mixture of experts (csrc/moe.c, csrc/moe_train.c, llmc/experts.py): the llmc.moe op against a NumPy reference
(ties, k = E, k = 1), mixtral / qwen2_moe / qwen3_moe / olmoe models against transformers on tiny random configs,
and training (loss, gradients of every parameter incl. the routers, the load-balancing loss) against torch.autograd.

Tolerances: logits and hidden states max abs 1e-4 (fp32), router logits max abs 1e-5; the chosen experts equal the
top-k of transformers' own router logits (output_router_logits) exactly; greedy and beam search token-identical;
training loss within 1e-5 relative and every gradient within 1e-4 of its tensor's largest entry."""
import json
import shutil

import numpy as np
import pytest
from conftest import lazy_import
from hf_models import hf_generate

import llmc

torch = lazy_import("torch")
transformers = lazy_import("transformers")

TOL = 1e-4
V = 89
EOS = 5


# ------------------------------------------------------------------ the op against NumPy
def _silu(x):
    return x / (1.0 + np.exp(-x))


def np_moe(x, router, wg, wu, wd, k, normalize):
    """float64 reference: softmax, top-k (stable: the lowest index first among equals), optional renormalisation."""
    x = x.astype(np.float64)
    z = x @ router.T.astype(np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    idx = np.argsort(-p, axis=-1, kind="stable")[:, :k]
    w = np.take_along_axis(p, idx, -1)
    if normalize:
        w = w / w.sum(-1, keepdims=True)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(k):
            e = idx[t, j]
            h = _silu(x[t] @ wg[e].T) * (x[t] @ wu[e].T)
            out[t] += w[t, j] * (h @ wd[e].T)
    return out, idx, w


def _weights(E=6, D=24, F=20, seed=0):
    r = np.random.default_rng(seed)
    return (r.normal(size=(E, D)).astype(np.float32), (r.normal(size=(E, F, D)) / 4).astype(np.float32),
            (r.normal(size=(E, F, D)) / 4).astype(np.float32), (r.normal(size=(E, D, F)) / 4).astype(np.float32))


@pytest.mark.parametrize("k", [1, 2, 3, 6])
@pytest.mark.parametrize("normalize", [True, False])
def test_moe_op_matches_numpy(k, normalize):
    router, wg, wu, wd = _weights()
    x = np.random.default_rng(1).normal(size=(37, 24)).astype(np.float32)
    out, ex, w = llmc.moe(x, router, wg, wu, wd, k, normalize=normalize, return_routing=True)
    ref, ridx, rw = np_moe(x, router, wg, wu, wd, k, normalize)
    assert out.shape == (37, 24) and out.dtype == np.float32 and ex.dtype == np.int32 and ex.shape == (37, k)
    np.testing.assert_array_equal(ex, ridx)
    np.testing.assert_allclose(w, rw, atol=1e-6, rtol=0)
    np.testing.assert_allclose(out, ref, atol=TOL, rtol=0)
    # the routing matches torch.topk on the softmax as transformers computes it
    p = torch.softmax(torch.tensor(x) @ torch.tensor(router).T, dim=-1)
    np.testing.assert_array_equal(ex, torch.topk(p, k, dim=-1).indices.numpy())


def test_moe_op_k_equals_e_is_the_dense_weighted_sum():
    router, wg, wu, wd = _weights(E=4)
    x = np.random.default_rng(2).normal(size=(9, 24)).astype(np.float32)
    out = llmc.moe(x, router, wg, wu, wd, 4)
    z = x.astype(np.float64) @ router.T
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    dense = sum(p[:, e:e + 1] * ((_silu(x @ wg[e].T) * (x @ wu[e].T)) @ wd[e].T) for e in range(4))
    np.testing.assert_allclose(out, dense, atol=TOL, rtol=0)


def test_moe_op_k1_is_switch_routing():
    router, wg, wu, wd = _weights(E=5)
    x = np.random.default_rng(3).normal(size=(11, 24)).astype(np.float32)
    out, ex, w = llmc.moe(x, router, wg, wu, wd, 1, normalize=True, return_routing=True)
    np.testing.assert_array_equal(ex[:, 0], np.argmax(x @ router.T, axis=-1))
    np.testing.assert_array_equal(w, np.ones_like(w))  # one expert, renormalised: weight 1
    for t in range(11):
        e = ex[t, 0]
        np.testing.assert_allclose(out[t], (_silu(x[t] @ wg[e].T) * (x[t] @ wu[e].T)) @ wd[e].T, atol=TOL, rtol=0)


def test_moe_op_ties_go_to_the_lowest_index():
    router, wg, wu, wd = _weights(E=6)
    router[3] = router[1]  # experts 1 and 3 always tie; so do 0, 2, 5 below
    router[2] = router[0]
    router[5] = router[0]
    x = np.random.default_rng(4).normal(size=(16, 24)).astype(np.float32)
    _, ex, w = llmc.moe(x, router, wg, wu, wd, 4, return_routing=True)
    _, ridx, rw = np_moe(x, router, wg, wu, wd, 4, True)
    np.testing.assert_array_equal(ex, ridx)
    np.testing.assert_allclose(w, rw, atol=1e-6, rtol=0)
    # torch.topk picks the same values, but which of several equal ones it returns is implementation-defined (on
    # CPU topk([.1, .3, .1, .3, .05, .1], 4) gives [1, 3, 0, 5]); llmc fixes it: the lowest index first
    # all-equal logits: experts 0 .. k-1 in order
    _, ex0, w0 = llmc.moe(x, np.zeros_like(router), wg, wu, wd, 3, normalize=False, return_routing=True)
    np.testing.assert_array_equal(ex0, np.tile([0, 1, 2], (16, 1)))
    np.testing.assert_allclose(w0, 1 / 6, rtol=1e-6)


def test_moe_op_single_token_and_errors():
    router, wg, wu, wd = _weights(E=3)
    x = np.random.default_rng(5).normal(size=24).astype(np.float32)
    out = llmc.moe(x, router, wg, wu, wd, 2)
    np.testing.assert_allclose(out, llmc.moe(x[None], router, wg, wu, wd, 2)[0], atol=0, rtol=0)
    with pytest.raises(ValueError, match=r"top_k must be in \[1, 3\].*got 4"):
        llmc.moe(x, router, wg, wu, wd, 4)
    with pytest.raises(ValueError, match="got 0"):
        llmc.moe(x, router, wg, wu, wd, 0)
    with pytest.raises(ValueError, match="at least one expert"):
        llmc.moe(x, router[:0], wg[:0], wu[:0], wd[:0], 1)
    with pytest.raises(ValueError, match="shapes do not match"):
        llmc.moe(x, router, wg, wu[:, :, :5], wd, 2)
    with pytest.raises(TypeError):
        llmc.moe(x, router, wg, wu, wd, 1.5)
    with pytest.raises(TypeError):
        llmc.moe(["a"] * 24, router, wg, wu, wd, 1)


# ------------------------------------------------------------------ models against transformers
BASE = dict(vocab_size=V, hidden_size=64, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
            rms_norm_eps=1e-5, eos_token_id=EOS, bos_token_id=1, pad_token_id=EOS, initializer_range=0.2)


def _configs():
    return {
        "mixtral": transformers.MixtralConfig(**BASE, intermediate_size=32, num_hidden_layers=2, num_local_experts=5,
                                              num_experts_per_tok=2, sliding_window=7, router_aux_loss_coef=0.05),
        "qwen2_moe": transformers.Qwen2MoeConfig(**BASE, intermediate_size=96, moe_intermediate_size=32,
                                                 shared_expert_intermediate_size=64, num_hidden_layers=4,
                                                 num_experts=6, num_experts_per_tok=3, decoder_sparse_step=2,
                                                 mlp_only_layers=[3], norm_topk_prob=False,
                                                 router_aux_loss_coef=0.05),
        "qwen3_moe": transformers.Qwen3MoeConfig(**BASE, intermediate_size=56, moe_intermediate_size=20,
                                                 num_hidden_layers=3, num_experts=7, num_experts_per_tok=2,
                                                 head_dim=16, mlp_only_layers=[1], norm_topk_prob=True),
        "olmoe": transformers.OlmoeConfig(**BASE, intermediate_size=28, num_hidden_layers=2, num_experts=4,
                                          num_experts_per_tok=3, clip_qkv=2.5),
    }


ARCHS = ["mixtral", "qwen2_moe", "qwen3_moe", "olmoe"]
MOE_LAYERS = {"mixtral": [0, 1], "qwen2_moe": [1], "qwen3_moe": [0, 2], "olmoe": [0, 1]}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """arch -> (transformers model, folder, llmc model)"""
    cache = {}

    def get(arch):
        if arch not in cache:
            torch.manual_seed(0)
            cfg = _configs()[arch]
            cfg._attn_implementation = "eager"
            m = transformers.AutoModelForCausalLM.from_config(cfg).eval()
            with torch.no_grad():  # routers start at zero in some inits: give every weight something to say
                for p in m.parameters():
                    p.add_(torch.randn_like(p) * 0.05)
                m.get_output_embeddings().weight[EOS] *= 2.0  # make EOS likely enough that some sequences end on it
            d = tmp_path_factory.mktemp(arch)
            m.save_pretrained(d)
            cache[arch] = (m, d, llmc.Model.load(d))
        return cache[arch]

    return get


def _ids(n, seed=1):
    return np.random.default_rng(seed).integers(0, V, n)


def _ref(m, ids):
    with torch.no_grad():
        return m(torch.tensor(ids)[None], output_hidden_states=True, output_router_logits=True)


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_hidden_and_routing_match_transformers(pair, arch):
    m, d, lm = pair(arch)
    assert lm.arch == arch and lm.info["moe_layers"] == MOE_LAYERS[arch]
    ids = _ids(23)
    out = _ref(m, ids)
    np.testing.assert_allclose(lm.logits(ids), out.logits[0].numpy(), atol=TOL, rtol=0)
    hs = np.stack([h[0].numpy() for h in out.hidden_states])
    np.testing.assert_allclose(lm.hidden_states(ids), hs, atol=TOL, rtol=0)
    routing = lm.routing(ids)
    assert [r.layer for r in routing] == MOE_LAYERS[arch] and len(out.router_logits) == len(routing)
    k = lm.info["n_experts_used"]
    for r, ref in zip(routing, out.router_logits):
        ref = ref.reshape(len(ids), -1)
        np.testing.assert_allclose(r.router_logits, ref.numpy(), atol=1e-5, rtol=0)
        top = torch.topk(torch.softmax(ref, dim=-1, dtype=torch.float), k, dim=-1)
        np.testing.assert_array_equal(r.experts, top.indices.numpy())
        w = top.values / top.values.sum(-1, keepdim=True) if lm.info["norm_topk_prob"] else top.values
        np.testing.assert_allclose(r.weights, w.numpy(), atol=1e-5, rtol=0)
        assert len(np.unique(r.experts)) > 1  # the test routes tokens to different experts


@pytest.mark.parametrize("arch", ARCHS)
def test_session_incremental_equals_full(pair, arch):
    _, _, lm = pair(arch)
    ids = _ids(19, seed=3)
    full = lm.logits(ids)
    s = lm.session()
    got = [s.append(ids[:6])]
    for t in range(6, 19):
        got.append(s.append([ids[t]]))
    np.testing.assert_allclose(np.stack([got[0]] + got[1:]), full[5:], atol=TOL, rtol=0)


PROMPTS = [[7, 8, 9], [10], [20, 21, 22, 23], [40, 41, 42, 43, 44, 45], [60, 61, 62], [80, 81, 82, 83]]


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_and_beam_match_transformers(pair, arch):
    m, _, lm = pair(arch)
    for p in PROMPTS:
        assert lm.generate(p, 16) == hf_generate(m, p, EOS, max_new_tokens=16)[0], p
    for p in PROMPTS[:3]:
        ref = hf_generate(m, p, EOS, max_new_tokens=10, num_beams=3, num_return_sequences=2)
        assert lm.generate(p, 10, num_beams=3, num_return_sequences=2) == ref, p


def test_perplexity_matches_transformers(pair):
    m, _, lm = pair("qwen2_moe")
    ids = _ids(30, seed=7)
    with torch.no_grad():
        loss = m(torch.tensor(ids)[None], labels=torch.tensor(ids)[None]).loss.item()
    res = llmc.perplexity(lm, ids)
    np.testing.assert_allclose(res.mean_nll, loss, rtol=1e-5)


def test_expert_usage_counts(pair):
    _, _, lm = pair("mixtral")
    seqs = [_ids(10, seed=s) for s in range(3)]
    u = lm.expert_usage(seqs)
    assert u.layers == [0, 1] and u.counts.shape == (2, 5) and u.tokens == 30
    np.testing.assert_array_equal(u.counts.sum(1), [30 * 2, 30 * 2])
    np.testing.assert_allclose(u.fractions.sum(1), 1.0)
    manual = np.zeros((2, 5), np.int64)
    for s in seqs:
        for i, r in enumerate(lm.routing(s)):
            manual[i] += np.bincount(r.experts.ravel(), minlength=5)
    np.testing.assert_array_equal(u.counts, manual)
    np.testing.assert_array_equal(lm.expert_usage(seqs[0]).counts.sum(1), [20, 20])


def test_dense_model_has_no_routing():
    dense = llmc.Model.init(dict(model_type="llama", vocab_size=V, hidden_size=16, intermediate_size=24,
                                 num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=16))
    with pytest.raises(llmc.UnsupportedError, match="no mixture-of-experts"):
        dense.routing([1, 2])
    with pytest.raises(llmc.UnsupportedError):
        dense.expert_usage([[1, 2]])


@pytest.mark.parametrize("arch", ARCHS)
def test_init_save_state_dict_round_trip(tmp_path, arch):
    cfg = _configs()[arch].to_dict()
    model = llmc.Model.init(cfg, seed=2)
    sd = model.state_dict()
    blk = "block_sparse_moe" if arch == "mixtral" else "mlp"
    l0 = MOE_LAYERS[arch][0]
    assert sd[f"model.layers.{l0}.{blk}.gate.weight"].shape == (model.info["n_experts"], 64)
    model.save(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids = _ids(13)
    np.testing.assert_allclose(model.logits(ids), _ref(hf, ids).logits[0].numpy(), atol=TOL, rtol=0)
    back = llmc.Model.load(tmp_path)
    np.testing.assert_array_equal(back.logits(ids), model.logits(ids))
    # writable state_dict views change the model
    w = model.state_dict(writable=True)[f"model.layers.{l0}.{blk}.gate.weight"]
    w[:] = 0
    r = model.routing(ids)[0]
    np.testing.assert_array_equal(r.router_logits, 0)
    np.testing.assert_array_equal(r.experts, np.tile(np.arange(model.info["n_experts_used"]), (13, 1)))


def _hf_on(d, state, tmp_path):
    """transformers on the given weights (checkpoint names, as llmc's state_dict gives them)"""
    from safetensors.numpy import save_file

    shutil.copy(d / "config.json", tmp_path / "config.json")
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    return transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_minimal_config_defaults_match_transformers(tmp_path, arch):
    """A config with only the sizes: every other field takes transformers' default (Mixtral's rope_theta is 1e6,
    the others' 10000; norm_topk_prob, decoder_sparse_step, ...). llmc's init + save loads into transformers."""
    cfg = dict(model_type=arch, vocab_size=V, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, num_experts_per_tok=2,
               moe_intermediate_size=16, shared_expert_intermediate_size=24)
    cfg["num_local_experts" if arch == "mixtral" else "num_experts"] = 4
    model = llmc.Model.init(cfg, seed=3)
    model.save(tmp_path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids = _ids(40)  # long enough for the RoPE base to matter
    np.testing.assert_allclose(model.logits(ids), _ref(hf, ids).logits[0].numpy(), atol=TOL, rtol=0)
    if arch != "olmoe":  # the trainer reads the same defaults
        x, y = ids[None, :-1], ids[None, 1:]
        with torch.no_grad():
            ref = _hf_loss(hf, x, y).item()
        np.testing.assert_allclose(model.loss_and_grads(x, y)[0], ref, rtol=1e-5)


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe"])
@pytest.mark.parametrize("dtype", ["bf16", "q8_0"])
def test_typed_experts_against_fp32_math_on_their_values(pair, arch, dtype, tmp_path):
    """Typed experts (rows of 32 and 64 values: whole q8_0 blocks). Oracle: transformers on the values the typed
    weights hold (state_dict(dequantize=True)). bf16: fp32 arithmetic on exact weights, within 1e-4. q8_0: an
    expert with at most 8 tokens (every one at decode, most at a short prefill) rounds its activation rows to
    Q8_0 for integer dot products, as ggml does: within 5% of the largest logit (measured ~1-2%)."""
    m, d, lm = pair(arch)
    q = llmc.Model.load(d, dtype=dtype)
    types = q.weight_types()
    blk = "block_sparse_moe" if arch == "mixtral" else "mlp"
    l0 = MOE_LAYERS[arch][0]
    assert types[f"model.layers.{l0}.{blk}.gate.weight"] == "f32"  # the router keeps full precision (llama.cpp)
    assert types[f"model.layers.{l0}.{blk}.experts.0.{'w1' if arch == 'mixtral' else 'gate_proj'}.weight"] == dtype
    hf = _hf_on(d, q.state_dict(dequantize=True), tmp_path)
    ids = _ids(20, seed=5)
    ref = _ref(hf, ids).logits[0].numpy()
    s = q.session()
    steps = np.stack([s.append([int(t)]) for t in ids])
    if dtype == "bf16":
        np.testing.assert_allclose(q.logits(ids), ref, atol=TOL, rtol=0)
        np.testing.assert_allclose(steps, ref, atol=TOL, rtol=0)
    else:
        assert np.abs(q.logits(ids) - ref).max() <= 0.05 * np.abs(ref).max()
        assert np.abs(steps - ref).max() <= 0.05 * np.abs(ref).max()


def _write_cfg(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (d / "config.json").write_text(json.dumps(cfg))


def test_bad_configs_and_missing_experts(pair, tmp_path):
    _, d, _ = pair("mixtral")
    bad = tmp_path / "m"
    shutil.copytree(d, bad)
    _write_cfg(bad, num_experts_per_tok=6)
    with pytest.raises(ValueError, match=r"num_experts_per_tok' = 6 must be in \[1, num_local_experts = 5\]"):
        llmc.Model.load(bad)
    _write_cfg(bad, num_experts_per_tok=2, num_local_experts=0)
    with pytest.raises(ValueError, match="num_local_experts' = 0"):
        llmc.Model.load(bad)
    _write_cfg(bad, num_local_experts=6)  # the checkpoint holds 5 experts
    with pytest.raises(ValueError, match=r"'model\.layers\.0\.block_sparse_moe\.gate\.weight' has shape \(5, 64\), "
                                         r"the config implies \(6, 64\)"):
        llmc.Model.load(bad)
    _write_cfg(bad, num_local_experts=5)
    from safetensors.numpy import load_file, save_file

    w = load_file(str(bad / "model.safetensors"))
    del w["model.layers.1.block_sparse_moe.experts.3.w2.weight"]
    save_file(w, str(bad / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing tensor 'model\.layers\.1\.block_sparse_moe\.experts\.3\.w2\.weight' "
                                         r"\(needed by this mixture-of-experts config\)"):
        llmc.Model.load(bad)
    with pytest.raises(ValueError, match="num_experts_per_tok"):
        llmc.Model.init(dict(_configs()["olmoe"].to_dict(), num_experts_per_tok=0))
    with pytest.raises(ValueError, match="mlp_only_layers"):
        llmc.Model.init(dict(_configs()["qwen3_moe"].to_dict(), mlp_only_layers="1"))
    with pytest.raises(llmc.UnsupportedError, match="use_sliding_window"):
        llmc.Model.init(dict(_configs()["qwen2_moe"].to_dict(), use_sliding_window=True))


def test_hooks_on_moe_layers(pair):
    """blocks.{l}.moe.router_logits is captured and patched in C (the routing follows the patched logits);
    mlp_out is the whole MoE block's output, equal to transformers' block output (a torch forward hook)."""
    m, _, lm = pair("mixtral")
    ids = _ids(9)
    names = lm.activation_names()
    assert names["blocks.0.moe.router_logits"] == ("T", 5)
    assert "blocks.0.mlp.pre_act" not in names and "blocks.0.mlp.post_act" not in names
    _, cache = lm.run_with_cache(ids)
    np.testing.assert_array_equal(cache["blocks.0.moe.router_logits"], lm.routing(ids)[0].router_logits)
    seen = {}
    hook = m.model.layers[1].mlp.register_forward_hook(lambda mod, i, o: seen.__setitem__("out", o))
    _ref(m, ids)
    hook.remove()
    np.testing.assert_allclose(cache["blocks.1.mlp_out"], seen["out"][0].numpy(), atol=TOL, rtol=0)
    # force experts 4 then 2 on every token; NumPy recomputes the block from its input
    P = np.zeros((9, 5), np.float32)
    P[:, 4], P[:, 2] = 3.0, 2.5
    _, c2 = lm.run_with_cache(ids, names=["blocks.0.mlp_out", "blocks.0.resid_mid"],
                              interventions=[llmc.Patch("blocks.0.moe.router_logits", P)])
    sd = lm.state_dict()
    x = c2["blocks.0.resid_mid"].astype(np.float64)
    h = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * sd["model.layers.0.post_attention_layernorm.weight"]
    p = np.exp(P[0] - P[0].max())
    p /= p.sum()
    w4, w2 = p[4] / (p[4] + p[2]), p[2] / (p[4] + p[2])

    def ffn(e):
        pre = f"model.layers.0.block_sparse_moe.experts.{e}."
        return (_silu(h @ sd[pre + "w1.weight"].T) * (h @ sd[pre + "w3.weight"].T)) @ sd[pre + "w2.weight"].T

    np.testing.assert_allclose(c2["blocks.0.mlp_out"], w4 * ffn(4) + w2 * ffn(2), atol=TOL, rtol=0)
    with pytest.raises(llmc.UnsupportedError, match="mixture of experts"):
        lm.run_with_cache(ids, names=["blocks.0.mlp.pre_act"])
    _, _, q3 = pair("qwen3_moe")
    with pytest.raises(llmc.UnsupportedError, match="layer 1 has no mixture-of-experts router"):
        q3.run_with_cache(ids, names=["blocks.1.moe.router_logits"])
    assert "blocks.1.mlp.pre_act" in q3.activation_names()  # qwen3_moe's mlp_only_layers stay dense


# ------------------------------------------------------------------ training against torch.autograd
def _hf_grads(m, arch):
    """transformers 5 keeps the experts fused ((E, 2F, D) gate_up_proj, (E, D, F) down_proj): split the gradients
    back into the checkpoint's per-expert names"""
    out = {}
    for n, p in m.named_parameters():
        g = p.grad.numpy()
        if arch == "mixtral":
            n = n.replace(".mlp.", ".block_sparse_moe.")
        names = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        if n.endswith("experts.gate_up_proj"):
            F = g.shape[1] // 2
            for e in range(g.shape[0]):
                out[n.replace("gate_up_proj", f"{e}.{names[0]}.weight")] = g[e, :F]
                out[n.replace("gate_up_proj", f"{e}.{names[1]}.weight")] = g[e, F:]
        elif n.endswith("experts.down_proj"):
            for e in range(g.shape[0]):
                out[n.replace("down_proj", f"{e}.{names[2]}.weight")] = g[e]
        else:
            out[n] = g
    return out


def _hf_loss(m, x, y):
    """transformers' training objective: mean cross-entropy + router_aux_loss_coef * load-balancing loss"""
    out = m(torch.tensor(x), output_router_logits=True)
    ce = torch.nn.functional.cross_entropy(out.logits.reshape(-1, V), torch.tensor(y).reshape(-1))
    return ce + m.config.router_aux_loss_coef * out.aux_loss


@pytest.mark.parametrize("arch", ["mixtral", "qwen2_moe", "qwen3_moe"])
def test_gradients_match_torch_autograd(pair, arch):
    m, _, lm = pair(arch)
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, V, (2, 11)), rng.integers(0, V, (2, 11))
    loss, grads = lm.loss_and_grads(x, y)
    m.zero_grad()
    ref_loss = _hf_loss(m, x, y)
    ref_loss.backward()
    np.testing.assert_allclose(loss, ref_loss.item(), rtol=1e-5)
    ref = _hf_grads(m, arch)
    assert set(ref) == set(grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref[name], rtol=0, atol=1e-4 * float(np.abs(ref[name]).max()), err_msg=name)
    m.zero_grad()


def test_three_adamw_steps_match_torch(tmp_path):
    """llmc.train against torch AdamW on the same batches (aux loss included): losses within 1e-4 relative."""
    torch.manual_seed(1)
    cfg = transformers.MixtralConfig(vocab_size=V, hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     num_local_experts=4, num_experts_per_tok=2, router_aux_loss_coef=0.02,
                                     initializer_range=0.2)
    cfg._attn_implementation = "eager"
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    m.save_pretrained(tmp_path)
    lm = llmc.Model.load(tmp_path)
    rng = np.random.default_rng(1)
    xs = [rng.integers(0, V, (2, 12)) for _ in range(3)]
    batches = [(x, np.roll(x, -1, axis=1)) for x in xs]
    hist = llmc.train(lm, batches=batches, steps=3, lr=1e-3, warmup=1, grad_clip=1.0, weight_decay=0.0,
                      progress=False)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    losses = []
    for step, (x, y) in enumerate(batches):
        for g in opt.param_groups:
            g["lr"] = llmc.training.lr_at(step, lr=1e-3, warmup=1, steps=3)
        opt.zero_grad()
        loss = _hf_loss(m, x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    np.testing.assert_allclose(hist.train_loss, losses, rtol=1e-4)
    np.testing.assert_allclose(lm.logits(xs[0][0]), m(torch.tensor(xs[0][:1])).logits[0].detach().numpy(),
                               atol=TOL, rtol=0)


def test_training_refusals(pair):
    _, _, olmoe = pair("olmoe")
    with pytest.raises(llmc.UnsupportedError, match="olmoe"):
        olmoe.loss_and_grads([[1, 2, 3]], [[2, 3, 4]])
    _, _, mx = pair("mixtral")
    with pytest.raises(llmc.UnsupportedError, match="bf16"):
        mx.loss_and_grads([[1, 2, 3]], [[2, 3, 4]], precision="bf16")
