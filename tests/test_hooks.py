"""Activations by name, interventions, logit lens and direct logit attribution against transformers.

Oracle: the transformers model with forward hooks (and its eager attention function wrapped to record q, k, v and
the softmax weights). Tolerance: max abs 1e-4 on every activation and on logits (fp32 on both sides)."""
import importlib

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (the 'test' extra)")
transformers = pytest.importorskip("transformers", reason="transformers is not installed (the 'test' extra)")
from hf_models import model_pairs  # noqa: E402

import llmc  # noqa: E402

TOL = 1e-4
V = 1003
T = 13

BASE = dict(vocab_size=V, hidden_size=72, intermediate_size=100, num_hidden_layers=3, num_attention_heads=6,
            num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5)
CONFIGS = {
    "llama": dict(model_type="llama", **BASE, rope_theta=5000.0),
    "qwen3": dict(model_type="qwen3", **BASE, head_dim=16, tie_word_embeddings=True),
    "gpt2": dict(model_type="gpt2", vocab_size=V, n_embd=72, n_layer=3, n_head=6, n_positions=64),
    "bert": dict(model_type="bert", vocab_size=V, hidden_size=72, num_hidden_layers=3, num_attention_heads=6,
                 intermediate_size=100, max_position_embeddings=64),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """name -> (transformers model, llmc model); every parameter perturbed, so biases, norm weights and all blocks
    matter"""
    return model_pairs(tmp_path_factory, CONFIGS, perturb=0.05)


def _ids(n=T, seed=1):
    return np.random.default_rng(seed).integers(0, V, n)


def _parts(hf, name):
    """(layers, per-layer module getters, final norm or None) of a transformers model."""
    if name == "gpt2":
        return hf.transformer.h, dict(o="attn.c_proj", mid="ln_2", pre="mlp.c_fc", down="mlp.c_proj", mlp="mlp"), \
            hf.transformer.ln_f
    if name == "bert":
        return hf.encoder.layer, dict(o="attention.output.dense", mid_out="attention.output", pre="intermediate.dense",
                                      post_out="intermediate", mlp="output.dense"), None
    return hf.model.layers, dict(o="self_attn.o_proj", mid="post_attention_layernorm", pre="mlp.gate_proj",
                                 down="mlp.down_proj", mlp="mlp"), hf.model.norm


def _first(x):
    return x[0] if isinstance(x, tuple) else x


def _hf_cache(hf, name, ids, monkeypatch):
    """Every activation of one transformers forward, under llmc's names (batch dimension dropped)."""
    layers, mods, ln_f = _parts(hf, name)
    got, handles = {}, []
    H = hf.config.num_attention_heads if name != "gpt2" else hf.config.n_head

    def put(key, t):
        got[key] = t.detach()[0].numpy().copy()

    for l, layer in enumerate(layers):
        m = lambda path: layer.get_submodule(path)  # noqa: E731
        handles.append(layer.register_forward_pre_hook(
            lambda mod, a, kw, l=l: put(f"blocks.{l}.resid_pre", a[0] if a else kw["hidden_states"]), with_kwargs=True))
        handles.append(layer.register_forward_hook(lambda mod, a, out, l=l: put(f"blocks.{l}.resid_post", _first(out))))
        handles.append(m(mods["o"]).register_forward_hook(lambda mod, a, out, l=l: put(f"blocks.{l}.attn_out", out)))

        def z_hook(mod, a, l=l):
            z = a[0][0]  # (T, H * hd)
            got[f"blocks.{l}.attn.z"] = z.reshape(z.shape[0], H, -1).transpose(0, 1).detach().numpy().copy()
        handles.append(m(mods["o"]).register_forward_pre_hook(z_hook))
        if "mid" in mods:
            handles.append(m(mods["mid"]).register_forward_pre_hook(lambda mod, a, l=l: put(f"blocks.{l}.resid_mid", a[0])))
        else:
            handles.append(m(mods["mid_out"]).register_forward_hook(
                lambda mod, a, out, l=l: put(f"blocks.{l}.resid_mid", out)))
        handles.append(m(mods["pre"]).register_forward_hook(lambda mod, a, out, l=l: put(f"blocks.{l}.mlp.pre_act", out)))
        if "down" in mods:
            handles.append(m(mods["down"]).register_forward_pre_hook(
                lambda mod, a, l=l: put(f"blocks.{l}.mlp.post_act", a[0])))
        else:
            handles.append(m(mods["post_out"]).register_forward_hook(
                lambda mod, a, out, l=l: put(f"blocks.{l}.mlp.post_act", out)))
        handles.append(m(mods["mlp"]).register_forward_hook(lambda mod, a, out, l=l: put(f"blocks.{l}.mlp_out", out)))
    if ln_f is not None:
        handles.append(ln_f.register_forward_hook(lambda mod, a, out: put("ln_final", out)))

    # q, k, v as attention reads them, and the softmax weights: wrap the model file's eager attention
    mod = importlib.import_module(type(hf).__module__)
    eager = mod.eager_attention_forward
    calls = []

    def recording(module, query, key, value, attention_mask, *args, **kwargs):
        out, w = eager(module, query, key, value, attention_mask, *args, **kwargs)
        calls.append((query, key, value, w))
        return out, w

    monkeypatch.setattr(mod, "eager_attention_forward", recording)
    try:
        with torch.no_grad():
            out = hf(torch.tensor(ids)[None], output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
        monkeypatch.setattr(mod, "eager_attention_forward", eager)
    assert len(calls) == len(layers)
    for l, (q, k, v, w) in enumerate(calls):
        for key, t in (("q", q), ("k", k), ("v", v), ("pattern", w)):
            put(f"blocks.{l}.attn.{key}", t)
    got["embed"] = out.hidden_states[0][0].numpy()
    return got, (out.logits[0].numpy() if hasattr(out, "logits") else None)


# ------------------------------------------------------------ the cache
@pytest.mark.parametrize("name", ["gpt2", "llama", "qwen3", "bert"])
def test_every_activation_matches_transformers(pair, name, monkeypatch):
    hf, model = pair(name)
    ids = _ids()
    ref, ref_logits = _hf_cache(hf, name, ids, monkeypatch)
    logits, cache = model.run_with_cache(ids)
    names = model.activation_names(T)
    assert list(cache) == list(names)
    assert set(cache) == set(ref), set(cache) ^ set(ref)
    for n, a in cache.items():
        assert a.shape == names[n] == ref[n].shape, n
        np.testing.assert_allclose(a, ref[n], atol=TOL, rtol=0, err_msg=n)
    if ref_logits is None:
        assert logits is None
    else:
        np.testing.assert_allclose(logits, ref_logits, atol=TOL, rtol=0)
        # capturing changes nothing (up to rounding: patterns come from the standard attention, not flash)
        np.testing.assert_allclose(logits, model.logits(ids), atol=1e-5, rtol=0)


def test_names_select_and_shapes(pair):
    _, model = pair("llama")
    names = model.activation_names()
    assert names["blocks.0.attn.q"] == (6, "T", 12) and names["blocks.0.attn.k"] == (2, "T", 12)
    assert names["blocks.2.attn.pattern"] == (6, "T", "T") and names["blocks.1.mlp.post_act"] == ("T", 100)
    assert list(names)[0] == "embed" and list(names)[-1] == "ln_final" and len(names) == 2 + 3 * 12
    ids = _ids()
    _, c = model.run_with_cache(ids, names=r"blocks\.\d+\.resid_post")
    assert list(c) == [f"blocks.{l}.resid_post" for l in range(3)]
    hs = model.hidden_states(ids)
    np.testing.assert_array_equal(c["blocks.0.resid_post"], hs[1])
    logits, c = model.run_with_cache(ids, names=[])
    assert c == {} and np.array_equal(logits, model.logits(ids))  # nothing hooked: the very same computation
    _, c = model.run_with_cache(ids, names=["blocks.1.attn.pattern", "embed"])
    assert set(c) == {"blocks.1.attn.pattern", "embed"}
    np.testing.assert_allclose(c["blocks.1.attn.pattern"], model.attention_weights(ids, 1), atol=1e-6)


def test_bad_names(pair):
    _, model = pair("llama")
    ids = _ids()
    with pytest.raises(ValueError, match="unknown activation name 'resid'"):
        model.run_with_cache(ids, names=["resid"])
    with pytest.raises(ValueError, match="unknown activation 'attn.w' in 'blocks.0.attn.w'"):
        model.run_with_cache(ids, names=["blocks.0.attn.w"])
    with pytest.raises(ValueError, match="layer 3 out of range in 'blocks.3.resid_pre': the model has 3 layers"):
        model.run_with_cache(ids, names=["blocks.3.resid_pre"])
    with pytest.raises(ValueError, match="matches no activation"):
        model.run_with_cache(ids, names=r"blocks\.9\..*")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        model.run_with_cache(ids, names="blocks.(")
    with pytest.raises(llmc.UnsupportedError, match="mixture-of-experts"):
        model.run_with_cache(ids, names=["blocks.0.moe.router_logits"])
    with pytest.raises(TypeError):
        model.run_with_cache(ids, names=[3])
    _, bert = pair("bert")
    with pytest.raises(llmc.UnsupportedError, match="bert has no final norm"):
        bert.run_with_cache(ids, names=["ln_final"])


# ------------------------------------------------------------ interventions against torch hooks
def _hf_logits(hf, ids, hooks):
    """transformers logits with (module, kind, fn) hooks installed: kind "pre" (fn(args) -> args) or "out"."""
    handles = []
    for module, kind, fn in hooks:
        if kind == "pre":
            def pre(mod, a, kw, fn=fn):
                if a:
                    return (fn(a[0].clone()),) + tuple(a[1:]), kw
                kw = dict(kw)
                kw["hidden_states"] = fn(kw["hidden_states"].clone())
                return a, kw
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        else:
            def post(mod, a, out, fn=fn):
                if isinstance(out, tuple):
                    return (fn(out[0].clone()),) + tuple(out[1:])
                return fn(out.clone())
            handles.append(module.register_forward_hook(post))
    try:
        with torch.no_grad():
            return hf(torch.tensor(ids)[None]).logits[0].numpy()
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("name", ["llama", "gpt2", "qwen3"])
def test_interventions_match_torch_hooks(pair, name):
    hf, model = pair(name)
    layers, mods, _ = _parts(hf, name)
    ids, other = _ids(), _ids(seed=7)
    rng = np.random.default_rng(3)
    v = rng.standard_normal(72).astype(np.float32)
    H, hd, F = model.n_heads, model.head_dim, model.info["d_ff"]
    o = lambda l: layers[l].get_submodule(mods["o"])  # noqa: E731
    down = lambda l: layers[l].get_submodule(mods["down"])  # noqa: E731

    def steer(x, a=2, b=5, s=2.5):
        x[:, a:b] += s * torch.tensor(v)
        return x

    def zero_heads(x, heads=(0, 4)):
        x = x.view(1, T, H, hd)
        x[:, :, list(heads)] = 0
        return x.view(1, T, H * hd)

    def mean_heads(x, heads=(1,)):
        x = x.view(1, T, H, hd)
        x[:, :, list(heads)] = x[:, :, list(heads)].mean(1, keepdim=True)
        return x.view(1, T, H * hd)

    def zero_neurons(x, nn=(3, 17, 50)):
        x[:, :, list(nn)] = 0
        return x

    values = rng.standard_normal(F).astype(np.float32)

    def set_neurons(x, nn=(5, 6)):
        x[:, :, list(nn)] = torch.tensor(values[list(nn)])
        return x

    # patching: block 1's output at positions 4.. from a run on other ids
    _, oc = model.run_with_cache(other, names=["blocks.1.resid_post", "blocks.0.attn.z"])
    with torch.no_grad():
        other_h = hf(torch.tensor(other)[None], output_hidden_states=True).hidden_states[2]

    def patch(x):
        x[:, 4:] = other_h[:, 4:]
        return x

    cases = [
        ([llmc.Steer(1, v, 2.5, positions=slice(2, 5))], [(layers[1], "pre", steer)]),
        ([llmc.Steer(2, v, -1.5, at="resid_post")], [(layers[2], "out", lambda x: steer(x, 0, T, -1.5))]),
        ([llmc.Steer(0, v, 1.0, positions=[1, 2, 3, 4])], [(layers[0], "pre", lambda x: steer(x, 1, 5, 1.0))]),
        ([llmc.AblateHeads(1, [0, 4])], [(o(1), "pre", zero_heads)]),
        ([llmc.AblateHeads(2, 1, mode="mean")], [(o(2), "pre", mean_heads)]),
        ([llmc.AblateNeurons(0, [3, 17, 50])], [(down(0), "pre", zero_neurons)]),
        ([llmc.AblateNeurons(2, [5, 6], mode="mean", values=values)], [(down(2), "pre", set_neurons)]),
        ([llmc.Patch("blocks.1.resid_post", oc["blocks.1.resid_post"], positions=slice(4, None))],
         [(layers[1], "out", patch)]),
        ([llmc.Steer(1, v, 2.5, positions=slice(2, 5)), llmc.AblateHeads(1, [0, 4]), llmc.AblateNeurons(0, [3, 17, 50])],
         [(layers[1], "pre", steer), (o(1), "pre", zero_heads), (down(0), "pre", zero_neurons)]),
    ]
    plain = model.logits(ids)
    for ivs, hooks in cases:
        got = model.logits(ids, interventions=ivs)
        ref = _hf_logits(hf, ids, hooks)
        np.testing.assert_allclose(got, ref, atol=TOL, rtol=0, err_msg=str(ivs)[:200])
        assert np.abs(got - plain).max() > 1e-3, f"{ivs} changed nothing"
    # patching a whole activation with a run's own values changes nothing
    _, own = model.run_with_cache(ids, names=["blocks.0.attn.z"])
    np.testing.assert_allclose(model.logits(ids, interventions=[llmc.Patch("blocks.0.attn.z", own["blocks.0.attn.z"])]),
                               plain, atol=1e-5)


def test_cache_sees_interventions(pair):
    _, model = pair("llama")
    ids = _ids()
    v = np.ones(72, np.float32)
    _, plain = model.run_with_cache(ids, names=["blocks.1.resid_pre", "blocks.1.attn.z"])
    _, c = model.run_with_cache(ids, names=["blocks.1.resid_pre", "blocks.1.attn.z"],
                                interventions=[llmc.Steer(1, v, 3.0, positions=2), llmc.AblateHeads(1, [2])])
    d = c["blocks.1.resid_pre"] - plain["blocks.1.resid_pre"]
    np.testing.assert_allclose(d[2], 3.0, atol=1e-5)
    assert not np.delete(d, 2, axis=0).any()
    assert not c["blocks.1.attn.z"][2].any() and c["blocks.1.attn.z"][1].any()


def test_session_interventions_touch_only_their_tokens(pair):
    hf, model = pair("llama")
    ids = _ids(20)
    v = np.random.default_rng(4).standard_normal(72).astype(np.float32)
    iv = [llmc.Steer(1, v, 3.0, positions=slice(10, 14)), llmc.AblateNeurons(2, [7], positions=[12])]
    full = model.logits(ids, interventions=iv)
    plain = model.logits(ids)
    np.testing.assert_allclose(full[:10], plain[:10], atol=1e-5)  # earlier tokens: untouched
    s = model.session(interventions=iv)
    got = [s.append(ids[:6]), s.append(ids[6:11]), s.append(ids[11:12])]
    got += [s.append([t]) for t in ids[12:]]
    np.testing.assert_allclose(got[0], plain[5], atol=TOL)
    np.testing.assert_allclose(got[1], full[10], atol=TOL)
    np.testing.assert_allclose(np.stack(got[2:]), full[11:], atol=TOL)
    s.set_interventions(None)  # detached: later tokens run plain (over the steered cache)
    s.reset()
    np.testing.assert_allclose(s.append(ids), plain[-1], atol=TOL)


def test_generate_with_steering_matches_transformers(pair):
    hf, model = pair("llama")
    ids = _ids(6)
    v = np.random.default_rng(5).standard_normal(72).astype(np.float32)
    iv = [llmc.Steer(1, v, 4.0)]
    got = model.generate(list(ids), 8, interventions=iv)

    def steer(x):
        return x + 4.0 * torch.tensor(v)

    h = hf.model.layers[1].register_forward_pre_hook(
        lambda mod, a, kw: ((steer(a[0]),) + a[1:], kw) if a else (a, {**kw, "hidden_states": steer(kw["hidden_states"])}),
        with_kwargs=True)
    try:
        with torch.no_grad():
            ref = hf.generate(torch.tensor(ids)[None], max_new_tokens=8, do_sample=False, pad_token_id=0,
                              eos_token_id=None)[0, 6:].tolist()
    finally:
        h.remove()
    assert got == ref
    assert got != model.generate(list(ids), 8)  # the steering changed the text


def test_intervention_errors(pair):
    _, model = pair("llama")
    ids = _ids()
    cases = [
        (llmc.Steer(1, np.ones(10)), ValueError, r"Steer vector must have shape \(72,\), got \(10,\)"),
        (llmc.Steer(3, np.ones(72)), ValueError, "Steer: layer 3 out of range: the model has 3 layers"),
        (llmc.Steer(1, np.ones(72), at="mlp"), ValueError, "at must be"),
        (llmc.Steer(1, np.full(72, np.nan)), ValueError, "NaN"),
        (llmc.Steer(1, np.ones(72), positions=-1), ValueError, "positions must be >= 0"),
        (llmc.AblateHeads(0, [6]), ValueError, r"heads: 6 is out of range \[0, 6\)"),
        (llmc.AblateHeads(0, [1], mode="max"), ValueError, "mode must be"),
        (llmc.AblateHeads(0, [1.5]), TypeError, "integers"),
        (llmc.AblateNeurons(0, [100]), ValueError, r"neurons: 100 is out of range \[0, 100\)"),
        (llmc.AblateNeurons(0, [1], mode="mean", values=np.ones(5)), ValueError, r"shape \(100,\)"),
        (llmc.Patch("blocks.0.resid_pre", np.ones((T, 5))), ValueError, r"must have shape \(13, 72\)"),
        (llmc.Patch("blocks.0.attn.z", np.ones((T, 72))), ValueError, r"must have shape \(6, 'T', 12\)"),
        (llmc.Patch("blocks.0.attn.pattern", np.ones((6, T, T))), ValueError, "captured, not patched"),
        (llmc.Patch("blocks.7.resid_pre", np.ones((T, 72))), ValueError, "layer 7 out of range"),
        ("steer", TypeError, "interventions are llmc.Steer"),
    ]
    for iv, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            model.logits(ids, interventions=[iv])
    with pytest.raises(ValueError, match="Steer vector"):
        model.generate(list(ids), 3, interventions=[llmc.Steer(1, np.ones(3))])
    with pytest.raises(ValueError, match="Steer vector"):
        model.session(interventions=[llmc.Steer(1, np.ones(3))])


# ------------------------------------------------------------ logit lens and direct logit attribution
@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_logit_lens(pair, name):
    hf, model = pair(name)
    ids = _ids()
    lens = model.logit_lens(ids, k=4)
    assert lens.layers == ["embed", "blocks.0", "blocks.1", "blocks.2"]
    assert lens.top_ids.shape == (4, T, 4) and lens.logits.shape == (4, T, V)
    np.testing.assert_allclose(lens.logits[-1], model.logits(ids), atol=TOL, rtol=0)
    # a middle layer through transformers' own final norm and lm_head
    with torch.no_grad():
        hs = hf(torch.tensor(ids)[None], output_hidden_states=True).hidden_states
        norm = hf.transformer.ln_f if name == "gpt2" else hf.model.norm
        ref = hf.lm_head(norm(hs[1]))[0].numpy()
    np.testing.assert_allclose(lens.logits[1], ref, atol=TOL, rtol=0)
    p = llmc.softmax(lens.logits, axis=-1)
    np.testing.assert_array_equal(lens.top_ids[..., 0], p.argmax(-1))
    np.testing.assert_allclose(lens.top_probs, np.take_along_axis(p, lens.top_ids, -1), atol=1e-6)
    assert (np.diff(lens.top_probs, axis=-1) <= 0).all() and lens.top_tokens is None  # no tokenizer here
    with pytest.raises(ValueError, match="k must be"):
        model.logit_lens(ids, k=0)


def test_logit_lens_default_model_tokens():
    model = llmc.load_default()
    ids = model.tokenizer.encode("And God said, Let there be light")
    lens = model.logit_lens(ids, k=2)
    assert lens.top_tokens[-1][-1][0] == model.tokenizer.id_to_token(int(model.logits(ids)[-1].argmax()))


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_direct_logit_attribution(pair, name):
    hf, model = pair(name)
    ids = _ids()
    tok = int(model.logits(ids)[-1].argmax())
    dla = model.direct_logit_attribution(ids, tok)
    assert dla.attn.shape == dla.mlp.shape == (3,) and dla.position == T - 1
    np.testing.assert_allclose(dla.embed + dla.attn.sum() + dla.mlp.sum() + dla.bias, dla.logit, atol=TOL)
    np.testing.assert_allclose(dla.logit, model.logits(ids)[-1, tok], atol=1e-6)
    # against torch: component @ d(final norm with frozen scale) @ W_U, from transformers' own intermediates
    layers, mods, ln_f = _parts(hf, name)
    outs = {}
    hs = [layers[l].get_submodule(mods["mlp"]).register_forward_hook(
        lambda m, a, o, l=l: outs.__setitem__(l, _first(o)[0, -1].double())) for l in range(3)]
    try:
        with torch.no_grad():
            hf(torch.tensor(ids)[None])
    finally:
        for x in hs:
            x.remove()
    w_u = hf.lm_head.weight[tok].detach().double()
    # the final norm's input (the last block's output), from transformers
    resid = torch.zeros(72, dtype=torch.float64)
    def grab(mod, a):
        resid.copy_(a[0][0, -1].double())

    hook = ln_f.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            hf(torch.tensor(ids)[None])
    finally:
        hook.remove()
    if name == "gpt2":
        scale = torch.sqrt(resid.var(unbiased=False) + ln_f.eps)
        ref = [float(((outs[l] - outs[l].mean()) / scale * ln_f.weight.detach().double()) @ w_u) for l in range(3)]
    else:
        scale = torch.sqrt((resid * resid).mean() + ln_f.variance_epsilon)
        ref = [float((outs[l] / scale * ln_f.weight.detach().double()) @ w_u) for l in range(3)]
    np.testing.assert_allclose(dla.mlp, ref, atol=TOL)
    with pytest.raises(ValueError, match="position 13 is outside"):
        model.direct_logit_attribution(ids, tok, position=13)
    with pytest.raises(ValueError, match="token must be an id"):
        model.direct_logit_attribution(ids, V)


def test_bert_has_no_lens(pair):
    _, bert = pair("bert")
    with pytest.raises(llmc.UnsupportedError, match="language-model head"):
        bert.logit_lens(_ids())
    with pytest.raises(llmc.UnsupportedError):
        bert.direct_logit_attribution(_ids(), 3)
